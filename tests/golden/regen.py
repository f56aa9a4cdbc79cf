"""Show what the golden inputs produce now: `python tests/golden/regen.py [--write] [PATH...]`.

Without `--write` it prints a diff against each `.expected.lir` / `.expected.gir`; with it,
it rewrites them. Expected files are part of the review: read every change before
committing it.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from compiler.graph import parser as graph_parser  # noqa: E402
from compiler.graph.printer import print_module  # noqa: E402
from compiler.loop import parse, print_func  # noqa: E402
from tests.golden.golden_util import (  # noqa: E402
    expected_path,
    inputs,
    level_of,
    run_golden,
    run_graph_golden,
)


def produce(path: Path) -> tuple[str, str]:
    """(what the pipeline makes of `path` now, the expected file's text normalised)."""
    exp = expected_path(path)
    if level_of(path) == "graph":
        new = print_module(run_graph_golden(path).output)
        old = print_module(graph_parser.parse(exp.read_text())) if exp.exists() else ""
    else:
        new = print_func(run_golden(path)[1])
        old = print_func(parse(exp.read_text())) if exp.exists() else ""
    return new, old


def main(argv: list[str]) -> int:
    write = "--write" in argv
    paths = [Path(a) for a in argv if a != "--write"] or inputs("loop") + inputs("graph")
    for path in paths:
        new, old = produce(path)
        if new == old:
            continue
        exp = expected_path(path)
        sys.stdout.writelines(difflib.unified_diff(
            old.splitlines(True), new.splitlines(True), str(exp), "now"))
        if write:
            exp.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
