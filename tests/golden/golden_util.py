"""Shared by the golden test and `regen.py`: read a golden input, run its pipeline.

Loop-level inputs are `loop/<pass>/<name>.lir`, graph-level ones `graph/<pass>/<name>.gir`;
each starts with a `# pipeline: ...` comment line and is expected to turn into
`<name>.expected.lir` / `<name>.expected.gir`. A graph input may add `# rtol: R` and
`# atol: A` lines for passes that reassociate float math; without them its interpreter
outputs must stay exactly equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler.graph import interp
from compiler.graph import parser as graph_parser
from compiler.graph.ir import Function, Module
from compiler.loop import PrimFunc, parse
from compiler.passes import InterpretEach, PassManager

ROOT = Path(__file__).parent
EXTENSIONS = {"loop": ".lir", "graph": ".gir"}
SYMBOL_SIZE = 3  # the size given to a symbolic or unknown dim of a graph input
SEED = 0


def inputs(level: str = "loop") -> list[Path]:
    ext = EXTENSIONS[level]
    return sorted(p for p in (ROOT / level).glob(f"*/*{ext}")
                  if not p.name.endswith(f".expected{ext}"))


def level_of(path: Path) -> str:
    return "graph" if path.suffix == ".gir" else "loop"


def expected_path(path: Path) -> Path:
    return path.with_name(f"{path.name[: -len(path.suffix)]}.expected{path.suffix}")


def header_value(text: str, key: str) -> str | None:
    prefix = f"# {key}:"
    for line in text.splitlines():
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return None


def header_pipeline(text: str, path: Path) -> str:
    value = header_value(text, "pipeline")
    if value is None:
        raise ValueError(f"{path}: no '# pipeline:' header")
    return value


def run_golden(path: Path) -> tuple[str, PrimFunc]:
    """(pipeline, output) of a loop golden input, interpreted after every pass."""
    text = path.read_text()
    pipeline = header_pipeline(text, path)
    out = PassManager(pipeline, instruments=[InterpretEach(seed=0)]).run(parse(text, str(path)))
    return pipeline, out


# ---------------------------------------------------------------------------------------
# graph level


def random_inputs(fn: Function, seed: int = SEED) -> list[np.ndarray]:
    """Inputs for `fn`'s params: floats standard normal, integers in [-4, 4], booleans
    uniform; a symbolic or unknown dim has size `SYMBOL_SIZE`."""
    rng = np.random.default_rng(seed)
    out = []
    for p in fn.params:
        t = p.type
        if t.shape is None:
            raise ValueError(f"parameter %{p.name} has unknown rank")
        shape = tuple(d if isinstance(d, int) else SYMBOL_SIZE for d in t.shape)
        if t.dtype.is_float:
            out.append(rng.standard_normal(shape).astype(t.dtype.np))
        elif t.dtype.is_int:
            out.append(rng.integers(-4, 5, shape).astype(t.dtype.np))
        else:
            out.append(rng.random(shape) < 0.5)
    return out


@dataclass
class GraphRun:
    pipeline: str
    output: Module
    before: list[np.ndarray]  # interpreter outputs of the input module
    after: list[np.ndarray]  # ... and of the output
    rtol: float
    atol: float


def run_graph_golden(path: Path) -> GraphRun:
    """Parse a graph golden input, run its pipeline (verified after every pass) and
    interpret `main` before and after on random inputs of a fixed seed."""
    text = path.read_text()
    pipeline = header_pipeline(text, path)
    module = graph_parser.parse(text)
    args = random_inputs(module.main)
    before = interp.run(module, [a.copy() for a in args])
    out = PassManager(pipeline).run(module)
    after = interp.run(out, [a.copy() for a in args])
    return GraphRun(pipeline, out, before, after, float(header_value(text, "rtol") or 0),
                    float(header_value(text, "atol") or 0))


def output_difference(before: list[np.ndarray], after: list[np.ndarray], rtol: float = 0,
                      atol: float = 0) -> str | None:
    """None if the outputs agree: exactly (NaN where NaN, the sign of zeros too) unless a
    tolerance is given, else the first difference."""
    if len(before) != len(after):
        return f"{len(after)} outputs, expected {len(before)}"
    for i, (want, have) in enumerate(zip(before, after, strict=True)):
        if want.dtype != have.dtype or want.shape != have.shape:
            return (f"output {i} is {have.dtype}{list(have.shape)}, expected "
                    f"{want.dtype}{list(want.shape)}")
        if want.dtype == object or want.dtype.kind in "biu":
            same = np.asarray(want == have)
        else:
            w, h = want.astype(np.float64), have.astype(np.float64)
            same = (np.isnan(w) & np.isnan(h)) | (w == h) & (np.signbit(w) == np.signbit(h))
            if rtol or atol:
                same |= np.isclose(w, h, rtol=rtol, atol=atol)
        if not same.all():
            at = tuple(int(k) for k in np.argwhere(~same)[0])
            return f"output {i} at {list(at)}: expected {want[at]!r}, got {have[at]!r}"
    return None
