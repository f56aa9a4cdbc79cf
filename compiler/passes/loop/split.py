"""split: split a loop into an outer and an inner loop of `factor` iterations.

`for i in k(m, e) {B}` becomes

```
for i_o in k(0, ceil(e / factor)) {
  for i_i in k'(0, factor) { if i_o * factor + i_i < e { B[i := m + i_o * factor + i_i] } }
}
```

The guard is left out when `factor` divides a constant extent. Iterations keep their order,
so any loop may be split; thread-bound loops are not. Loops named `var` are split, or, when
`var` is empty, every innermost loop whose extent may exceed `factor`. A symbolic extent must
not be changed by the loop body and `e + factor - 1` must fit its dtype.
"""

from __future__ import annotations

from compiler.loop.ir import CmpKind, CmpOp, For, ForKind, IfThenElse, IntImm, Node, PrimFunc, Var
from compiler.loop.traverse import substitute, transform
from compiler.passes.arith import Bounds
from compiler.passes.base import Arg, loop_pass
from compiler.passes.loop_util import (
    NameSupply,
    bound_vars,
    invariant,
    loops_of,
    offset,
    scaled,
    split_extent,
    stored,
)

_INNER_KIND = {ForKind.serial: ForKind.serial, ForKind.parallel: ForKind.serial,
               ForKind.unrolled: ForKind.unrolled, ForKind.vectorized: ForKind.vectorized}
_OUTER_KIND = {ForKind.serial: ForKind.serial, ForKind.parallel: ForKind.parallel,
               ForKind.unrolled: ForKind.unrolled, ForKind.vectorized: ForKind.serial}


def _selected(n: For, factor: int, var: str, bounds: Bounds) -> bool:
    if n.kind is ForKind.thread_binding:
        return False
    if var:
        return n.var.name == var
    if any(True for _ in loops_of(n.body)):
        return False
    rng = bounds.of(n.extent)
    return rng is None or rng.hi > factor


def split_loop(n: For, factor: int, names: NameSupply, bounds: Bounds) -> Node | None:
    split = split_extent(n.extent, factor, bounds)
    if split is None:
        return None
    if not isinstance(n.extent, IntImm) and \
            not invariant(n.extent, bound_vars(n.body) | {n.var}, stored(n.body)):
        return None
    outer_ext, guard = split
    dt = n.var.dtype
    outer = Var(names.fresh(f"{n.var.name}_o"), dt)
    inner = Var(names.fresh(f"{n.var.name}_i"), dt)
    flat = scaled(outer, factor, inner)
    body = substitute(n.body, {n.var: offset(n.min, flat)})
    if guard:
        body = IfThenElse(CmpOp(CmpKind.lt, flat, n.extent), body)
    inner_loop = For(inner, IntImm(0, dt), IntImm(factor, dt), _INNER_KIND[n.kind], body)
    return For(outer, IntImm(0, dt), outer_ext, _OUTER_KIND[n.kind], inner_loop)


def _applies(func: PrimFunc, factor: int, var: str) -> bool:
    bounds = Bounds(func)
    return any(_selected(lp, factor, var, bounds) for lp in loops_of(func))


@loop_pass("Split loops (named `var`, or innermost ones) into outer x inner of `factor`.",
           Arg("factor", int, 4, "iterations of the inner loop", low=1),
           Arg("var", str, "", "split loops with this variable name (default: innermost)"),
           applies=_applies)
def split(func: PrimFunc, factor: int, var: str) -> PrimFunc:
    bounds = Bounds(func)
    names = NameSupply(func)
    out = transform(func, lambda n: split_loop(n, factor, names, bounds)
                    if isinstance(n, For) and _selected(n, factor, var, bounds) else None)
    assert isinstance(out, PrimFunc)
    return out
