"""Fresh names, shared by every IR level: `fresh(used, "x")` is `x`, else `x_1`, `x_2`, ...,
the first one not in `used`, which it adds."""

from __future__ import annotations


def fresh(used: set[str], base: str) -> str:
    name, k = base, 0
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name
