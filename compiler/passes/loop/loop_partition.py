"""loop_partition: split loops so that boundary conditions disappear.

A loop over `i` whose body tests `i < e` (or `<=`, `>`, `>=`, either side, or a linear
comparison such as `i + r - 1 >= 0` that solves to one exactly), with `e` loop-invariant and
safe to evaluate, is split at the point where the test flips:

```
for i in serial(0, 10) { if i < 3 {A} else {B} }
  -> for i in serial(0, 3) {A}  for i in serial(3, 7) {B}
```

Iterations keep their order. The split point is `e` clamped into the loop's range with
min/max (folded when constant); the loop's bounds must not be changed by its body (they are
evaluated again between the halves) and `min + extent` must not overflow. At most
`max_splits` splits are made per loop.
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
    is_int,
)
from compiler.loop.traverse import rewrite, transform, walk
from compiler.passes.arith import Bounds, Interval, build_linear, linear
from compiler.passes.base import Arg, loop_pass
from compiler.passes.loop_util import (
    bound_vars,
    false,
    flatten_seq,
    invariant,
    loaded,
    loops_of,
    may_ub,
    seq_of,
    stored,
    true,
    uses_var,
)
from compiler.passes.simplifier import simplify_node

_FLIP = {CmpKind.lt: CmpKind.gt, CmpKind.gt: CmpKind.lt, CmpKind.le: CmpKind.ge,
         CmpKind.ge: CmpKind.le}


def _solve(c: CmpOp, var: Var, bounds: Bounds) -> tuple[CmpKind, Expr] | None:
    """`c` as `var OP e`: directly, or by moving the other terms of an exact (non-wrapping)
    linear comparison to the right, `i + r < s` -> `i < s - r`."""
    if c.op not in _FLIP:
        return None
    if c.a == var:
        return c.op, c.b
    if c.b == var:
        return _FLIP[c.op], c.a
    if not (is_int(c.a.dtype) and c.a.dtype == var.dtype and bounds.no_wrap(c.a)
            and bounds.no_wrap(c.b)):
        return None
    ta, ca = linear(c.a, exact=True)
    tb, cb = linear(c.b, exact=True)
    terms = dict(ta)
    for t, k in tb.items():
        terms[t] = terms.get(t, 0) - k
    k = terms.pop(var, 0)
    if k not in (1, -1) or any(uses_var(t, var) for t in terms if terms[t]):
        return None
    # k*var + rest OP 0, rest = terms + (ca - cb)
    sign = -k  # var OP -rest (k = 1) or var FLIP(OP) rest (k = -1)
    rest = {t: sign * v for t, v in terms.items() if v}
    const = sign * (ca - cb)
    lo, hi = int_range(var.dtype)
    if not all(lo <= v <= hi for v in (*rest.values(), const)):
        return None
    e = build_linear(rest, const, var.dtype)
    if not bounds.no_wrap(e):
        return None
    return (c.op if k == 1 else _FLIP[c.op]), e


def _split_point(c: CmpOp, var: Var, bounds: Bounds) -> tuple[Expr, bool, int] | None:
    """(e, first_half_value, adjust): the test is `first_half_value` for i < e + adjust."""
    solved = _solve(c, var, bounds)
    if solved is None:
        return None
    op, other = solved
    return {CmpKind.lt: (other, True, 0), CmpKind.le: (other, True, 1),
            CmpKind.ge: (other, False, 0), CmpKind.gt: (other, False, 1)}[op]


def _find(loop: For, bounds: Bounds, params: list[str]) -> tuple[CmpOp, Expr, bool] | None:
    """A test to split on: (the comparison, the point where it flips, its value before)."""
    varying = bound_vars(loop.body) | {loop.var}
    written = stored(loop.body)
    dt = loop.var.dtype
    lo, end = bounds.of(loop.min), bounds.of(BinOp(BinKind.add, loop.min, loop.extent))
    assert lo is not None and end is not None
    for n in walk(loop.body):
        if not isinstance(n, CmpOp) or n.lanes != 1:
            continue
        found = _split_point(n, loop.var, bounds)
        if found is None:
            continue
        e, first, adjust = found
        if not invariant(e, varying, written) or may_ub(e, bounds, params):
            continue
        rng = bounds.of(e)
        if rng is None or rng.hi + adjust > int_range(dt)[1]:
            continue
        if rng.hi + adjust <= lo.lo or rng.lo + adjust >= end.hi:
            continue  # the test never flips inside the loop: simplify decides it
        shifted = e if adjust == 0 else BinOp(BinKind.add, e, IntImm(adjust, dt))
        return n, shifted, first
    return None


def _partition(loop: For, bounds: Bounds, params: list[str], budget: int) -> Node | None:
    if budget <= 0 or loop.kind is ForKind.thread_binding:
        return None
    end = BinOp(BinKind.add, loop.min, loop.extent)
    if not bounds.no_wrap(end) or (loaded(loop.min) | loaded(loop.extent)) & stored(loop.body):
        return None  # the bounds are evaluated again between the halves
    ext = bounds.of(loop.extent)
    if ext is None or ext.hi < 2:
        return None
    found = _find(loop, bounds, params)
    if found is None:
        return None
    cond, point, first = found
    p = simplify_node(BinOp(BinKind.min, BinOp(BinKind.max, point, loop.min), end), bounds)
    assert isinstance(p, Expr)
    if loop.kind is ForKind.vectorized and not isinstance(p, IntImm):
        return None
    halves = []
    for value, start, stop in ((first, loop.min, p), (not first, p, end)):
        extent = simplify_node(BinOp(BinKind.sub, stop, start), bounds)
        start = simplify_node(start, bounds)
        assert isinstance(extent, Expr) and isinstance(start, Expr)
        body = transform(loop.body, lambda n, v=value: (true() if v else false())
                         if n == cond else None)
        local = bounds
        if isinstance(start, IntImm) and isinstance(extent, IntImm) and extent.value > 0:
            local = bounds.narrowed(loop.var, Interval(start.value,
                                                       start.value + extent.value - 1))
        half = For(loop.var, start, extent, loop.kind, simplify_node(body, local))
        again = _partition(half, local, params, budget - 1)
        halves.append(simplify_node(again or half, local))
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
