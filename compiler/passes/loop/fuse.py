"""fuse: merge a perfect loop nest into one loop.

```
for i in serial(a, 4) { for j in serial(b, 8) {B} }
  -> for i_j in serial(0, 32) { B[i := a + i_j // 8, j := b + i_j % 8] }
```

Iterations keep their order, so fusion is always legal when both extents are positive
constants whose product fits the dtype, the inner bounds do not use the outer variable and
both loops are serial (or both parallel, or both unrolled). Whole nests fuse, innermost pair
first.
"""

from __future__ import annotations

from compiler.loop.ir import (
    BinKind,
    BinOp,
    For,
    ForKind,
    IntImm,
    PrimFunc,
    Var,
    int_range,
)
from compiler.loop.traverse import substitute, transform
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import NameSupply, loops_of, offset, uses_var

_FUSABLE = (ForKind.serial, ForKind.parallel, ForKind.unrolled)


def fusable(outer: For) -> bool:
    inner = outer.body
    if not isinstance(inner, For) or outer.kind is not inner.kind or outer.kind not in _FUSABLE:
        return False
    if outer.var.dtype != inner.var.dtype:
        return False
    if not (isinstance(outer.extent, IntImm) and isinstance(inner.extent, IntImm)):
        return False
    e1, e2 = outer.extent.value, inner.extent.value
    if e1 < 1 or e2 < 1 or e1 * e2 > int_range(outer.var.dtype)[1]:
        return False
    return not (uses_var(inner.min, outer.var) or uses_var(inner.extent, outer.var))


def fuse_pair(outer: For, names: NameSupply) -> For:
    inner = outer.body
    assert isinstance(inner, For) and isinstance(inner.extent, IntImm)
    assert isinstance(outer.extent, IntImm)
    dt = outer.var.dtype
    fused = Var(names.fresh(f"{outer.var.name}_{inner.var.name}"), dt)
    e2 = IntImm(inner.extent.value, dt)
    body = substitute(inner.body, {
        outer.var: offset(outer.min, BinOp(BinKind.floordiv, fused, e2)),
        inner.var: offset(inner.min, BinOp(BinKind.floormod, fused, e2)),
    })
    return For(fused, IntImm(0, dt), IntImm(outer.extent.value * inner.extent.value, dt),
               outer.kind, body)


def _applies(func: PrimFunc) -> bool:
    return any(fusable(lp) for lp in loops_of(func))


@loop_pass("Fuse perfect loop nests with constant extents into a single loop.",
           applies=_applies)
def fuse(func: PrimFunc) -> PrimFunc:
    names = NameSupply(func)
    out = transform(func, lambda n: fuse_pair(n, names)
                    if isinstance(n, For) and fusable(n) else None)
    assert isinstance(out, PrimFunc)
    return out
