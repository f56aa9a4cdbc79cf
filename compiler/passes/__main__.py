"""`python -m compiler.passes [--level loop|graph]`: list the registered passes, one line each
(the same text as `anvil opt --list`, see `base.format_pass_list`)."""

from __future__ import annotations

import sys

from compiler.passes.base import LEVELS, format_pass_list


def main(argv: list[str]) -> int:
    level = None
    if argv[:1] == ["--level"] and len(argv) == 2 and argv[1] in LEVELS:
        level = argv[1]
    elif argv and argv != ["--list"]:
        print(f"usage: python -m compiler.passes [--list | --level {'|'.join(LEVELS)}]",
              file=sys.stderr)
        return 2
    print(format_pass_list(level))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
