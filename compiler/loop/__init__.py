"""Loop IR: a TIR-like IR of loops over buffers, with its verifier, text form and interpreter.

- `ir`: the nodes (frozen dataclasses with structural equality) and the intrinsic table;
- `build`: small constructors (`cast`, `select`, `call`, `floordiv`, `for_`, `store`, ...);
- `traverse`: `map_children`, `walk`, `transform`, `rewrite`, `substitute`;
- `printer` / `parser`: the `.lir` text form, `parse(print_func(f)) == f`;
- `verifier`: `verify(func)` raises `VerifyError`;
- `interp`: `run(func, args)`, the semantic reference, raising `UndefinedBehavior`;
- `random_program`: `random_primfunc(rng)`, well-formed and UB-free programs for testing.
"""

from compiler.loop.build import *  # noqa: F403
from compiler.loop.ir import *  # noqa: F403
from compiler.loop.parser import parse, parse_expr, parse_module
from compiler.loop.printer import print_expr, print_func, print_module, print_stmt
from compiler.loop.traverse import (
    assert_structural_equal,
    children,
    first_difference,
    map_children,
    rewrite,
    substitute,
    transform,
    walk,
)

__all__ = [
    "assert_structural_equal", "children", "first_difference", "map_children", "parse",
    "parse_expr", "parse_module", "print_expr", "print_func", "print_module", "print_stmt",
    "rewrite", "substitute", "transform", "walk",
]
