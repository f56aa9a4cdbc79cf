"""Shared by the golden test and `regen.py`: read a golden input, run its pipeline."""

from __future__ import annotations

from pathlib import Path

from compiler.loop import PrimFunc, parse
from compiler.passes import InterpretEach, PassManager

ROOT = Path(__file__).parent


def inputs(level: str = "loop") -> list[Path]:
    return sorted(p for p in (ROOT / level).glob("*/*.lir") if not p.name.endswith(".expected.lir"))


def expected_path(path: Path) -> Path:
    return path.with_name(path.name[: -len(".lir")] + ".expected.lir")


def header_pipeline(text: str, path: Path) -> str:
    for line in text.splitlines():
        if line.startswith("# pipeline:"):
            return line.split(":", 1)[1].strip()
    raise ValueError(f"{path}: no '# pipeline:' header")


def run_golden(path: Path) -> tuple[str, PrimFunc]:
    """(pipeline, output) of a golden input, interpreted after every pass."""
    text = path.read_text()
    pipeline = header_pipeline(text, path)
    out = PassManager(pipeline, instruments=[InterpretEach(seed=0)]).run(parse(text, str(path)))
    return pipeline, out
