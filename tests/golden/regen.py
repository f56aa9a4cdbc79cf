"""Show what the golden inputs produce now: `python tests/golden/regen.py [--write] [PATH...]`.

Without `--write` it prints a diff against each `.expected.lir`; with it, it rewrites them.
Expected files are part of the review: read every change before committing it.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from compiler.loop import parse, print_func  # noqa: E402
from tests.golden.golden_util import expected_path, inputs, run_golden  # noqa: E402


def main(argv: list[str]) -> int:
    write = "--write" in argv
    paths = [Path(a) for a in argv if a != "--write"] or inputs("loop")
    for path in paths:
        _, got = run_golden(path)
        new = print_func(got)
        exp = expected_path(path)
        old = print_func(parse(exp.read_text())) if exp.exists() else ""
        if new == old:
            continue
        sys.stdout.writelines(difflib.unified_diff(
            old.splitlines(True), new.splitlines(True), str(exp), "now"))
        if write:
            exp.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
