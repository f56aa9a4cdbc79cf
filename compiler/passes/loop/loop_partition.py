"""loop_partition: split loops so that boundary conditions disappear.

A loop over `i` whose body tests `i < e` (or `<=`, `>`, `>=`, either side), with `e`
loop-invariant and safe to evaluate, is split at the point where the test flips:

```
for i in serial(0, 10) { if i < 3 {A} else {B} }
  -> for i in serial(0, 3) {A}  for i in serial(3, 7) {B}
```

Iterations keep their order. The loop's min and extent must be constants; a symbolic `e`
is clamped into the range with min/max. At most `max_splits` splits are made per loop.
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
    IntImm,
    Node,
    PrimFunc,
    Var,
    int_range,
)
from compiler.loop.traverse import rewrite, transform, walk
from compiler.passes.arith import Bounds, Interval, const_value
from compiler.passes.base import Arg, loop_pass
from compiler.passes.loop_util import (
    bound_vars,
    false,
    flatten_seq,
    invariant,
    loops_of,
    may_ub,
    seq_of,
    stored,
    true,
)
from compiler.passes.simplifier import simplify_node

_FLIP = {CmpKind.lt: CmpKind.gt, CmpKind.gt: CmpKind.lt, CmpKind.le: CmpKind.ge,
         CmpKind.ge: CmpKind.le}


def _split_point(c: CmpOp, var: Var) -> tuple[Expr, bool, int] | None:
    """(e, first_half_value, adjust): the test is `first_half_value` for i < e + adjust."""
    op, other = c.op, None
    if c.a == var:
        other = c.b
    elif c.b == var and op in _FLIP:
        op, other = _FLIP[op], c.a
    if other is None or op not in _FLIP:
        return None
    return {CmpKind.lt: (other, True, 0), CmpKind.le: (other, True, 1),
            CmpKind.ge: (other, False, 0), CmpKind.gt: (other, False, 1)}[op]


def _find(loop: For, bounds: Bounds, params: list[str]) -> tuple[CmpOp, int | Expr, bool] | None:
    lo, ext = const_value(loop.min), const_value(loop.extent)
    assert isinstance(lo, int) and isinstance(ext, int)
    varying = bound_vars(loop.body) | {loop.var}
    written = stored(loop.body)
    for n in walk(loop.body):
        if not isinstance(n, CmpOp) or n.lanes != 1:
            continue
        found = _split_point(n, loop.var)
        if found is None:
            continue
        e, first, adjust = found
        if not invariant(e, varying, written):
            continue
        ev = const_value(e)
        if isinstance(ev, int):
            point = min(max(ev + adjust, lo), lo + ext)
            if lo < point < lo + ext:
                return n, point, first
            continue
        if may_ub(e, bounds, params) or loop.kind is ForKind.vectorized:
            continue
        rng = bounds.of(e)
        dt = loop.var.dtype
        if rng is None or rng.hi + adjust > int_range(dt)[1]:
            continue
        if rng.hi + adjust <= lo or rng.lo + adjust >= lo + ext:
            continue  # the test never flips inside the loop: simplify decides it
        shifted = e if adjust == 0 else BinOp(BinKind.add, e, IntImm(adjust, dt))
        clamped = BinOp(BinKind.min, BinOp(BinKind.max, shifted, IntImm(lo, dt)),
                        IntImm(lo + ext, dt))
        return n, clamped, first
    return None


def _partition(loop: For, bounds: Bounds, params: list[str], budget: int) -> Node | None:
    if budget <= 0 or loop.kind is ForKind.thread_binding:
        return None
    lo, ext = const_value(loop.min), const_value(loop.extent)
    if not isinstance(lo, int) or not isinstance(ext, int) or ext < 2:
        return None
    if lo + ext > int_range(loop.var.dtype)[1]:
        return None
    found = _find(loop, bounds, params)
    if found is None:
        return None
    cond, point, first = found
    dt = loop.var.dtype
    p = IntImm(point, dt) if isinstance(point, int) else point
    halves = []
    for value, start, extent in ((first, IntImm(lo, dt), BinOp(BinKind.sub, p, IntImm(lo, dt))),
                                 (not first, p, BinOp(BinKind.sub, IntImm(lo + ext, dt), p))):
        body = transform(loop.body, lambda n, v=value: (true() if v else false())
                         if n == cond else None)
        local = bounds
        if isinstance(point, int):
            start = IntImm(point if start is p else lo, dt)
            extent = IntImm(point - lo if value is first else lo + ext - point, dt)
            if extent.value > 0:
                local = bounds.narrowed(loop.var, Interval(start.value,
                                                           start.value + extent.value - 1))
        body = simplify_node(body, local)
        half: Node = For(loop.var, start, extent, loop.kind, body)
        if isinstance(point, int):
            half = _partition(half, bounds, params, budget - 1) or half
        else:
            half = simplify_node(half, bounds)
        halves.append(half)
    return seq_of(halves)


def _applies(func: PrimFunc, max_splits: int) -> bool:
    bounds = Bounds(func)
    params = [p.name for p in func.params]
    return any(_partition(lp, bounds, params, 1) is not None for lp in loops_of(func))


@loop_pass("Split loops where an `i < e` test flips, removing the boundary condition.",
           Arg("max_splits", int, 4, "most splits per loop", low=1), applies=_applies)
def loop_partition(func: PrimFunc, max_splits: int) -> PrimFunc:
    bounds = Bounds(func)
    params = [p.name for p in func.params]
    out = transform(func, lambda n: _partition(n, bounds, params, max_splits)
                    if isinstance(n, For) else None)
    out = rewrite(out, [flatten_seq])
    assert isinstance(out, PrimFunc)
    return out
