"""tile: tile the innermost perfect 2-deep loop nests.

```
for i in serial(0, 64) { for j in serial(0, 64) {B} }
  -> for i_o in serial(0, 16) { for j_o in serial(0, 16) {
       for i_i in serial(0, 4) { for j_i in serial(0, 4) { B[i := i_o*4 + i_i, j := ...] } } } }
```

Tiles are `x` by `y`; a guard keeps the iterations in range when a tile size does not divide
a constant extent. Tiling reorders iterations, so it applies only where `reorder` would
(independent iterations, bounds independent of each other, serial loops with constant
extents), to nests whose inner body has no loops.
"""

from __future__ import annotations

from compiler.loop.ir import (
    BinKind,
    BinOp,
    CmpKind,
    CmpOp,
    Expr,
    For,
    ForKind,
    IfThenElse,
    IntImm,
    Node,
    PrimFunc,
    Stmt,
    Var,
)
from compiler.loop.traverse import substitute, transform
from compiler.passes.arith import Bounds
from compiler.passes.base import Arg, loop_pass
from compiler.passes.loop.reorder import can_permute
from compiler.passes.loop_util import NameSupply, loops_of, offset, scaled, split_extent


def tileable(outer: For) -> bool:
    inner = outer.body
    if not isinstance(inner, For) or any(True for _ in loops_of(inner.body)):
        return False
    if outer.kind is not ForKind.serial or inner.kind is not ForKind.serial:
        return False
    if not (isinstance(outer.extent, IntImm) and isinstance(inner.extent, IntImm)):
        return False
    return can_permute([outer, inner])


def tile_nest(outer: For, x: int, y: int, names: NameSupply) -> Stmt | None:
    inner = outer.body
    assert isinstance(inner, For)
    parts = []
    guards: list[Expr] = []
    mapping = {}
    for lp, size in ((outer, x), (inner, y)):
        split = split_extent(lp.extent, size, Bounds())
        if split is None:
            return None
        dt = lp.var.dtype
        o, i = Var(names.fresh(f"{lp.var.name}_o"), dt), Var(names.fresh(f"{lp.var.name}_i"), dt)
        flat = scaled(o, size, i)
        mapping[lp.var] = offset(lp.min, flat)
        if split[1]:
            guards.append(CmpOp(CmpKind.lt, flat, lp.extent))
        parts.append((o, split[0], i, IntImm(size, dt)))
    body: Stmt = substitute(inner.body, mapping)
    if guards:
        cond = guards[0] if len(guards) == 1 else BinOp(BinKind.and_, guards[0], guards[1])
        body = IfThenElse(cond, body)
    (io, ie, ii, isz), (jo, je, ji, jsz) = parts
    for var, ext in ((ji, jsz), (ii, isz), (jo, je), (io, ie)):
        body = For(var, IntImm(0, var.dtype), ext, ForKind.serial, body)
    return body


def _applies(func: PrimFunc, x: int, y: int) -> bool:
    return any(tileable(lp) for lp in loops_of(func))


@loop_pass("Tile innermost perfect 2-deep loop nests into x-by-y tiles when legal.",
           Arg("x", int, 4, "tile size of the outer loop", low=1),
           Arg("y", int, 4, "tile size of the inner loop", low=1), applies=_applies)
def tile(func: PrimFunc, x: int, y: int) -> PrimFunc:
    names = NameSupply(func)

    def visit(n: Node) -> Node | None:
        return tile_nest(n, x, y, names) if isinstance(n, For) and tileable(n) else None

    out = transform(func, visit)
    assert isinstance(out, PrimFunc)
    return out
