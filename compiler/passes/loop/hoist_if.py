"""hoist_if: move loop-invariant conditions out of loops (loop unswitching).

```
for i in serial(0, n) { if c {A} else {B} }  ->  if c { for i ... {A} } else { for i ... {B} }
```

The loop body must be exactly the `if`; `c` must use no variable bound in the loop and load
no buffer the loop writes. Because `c` is then evaluated even when the loop runs zero times,
it must be always defined (`loop_util.may_ub`) unless the extent is provably positive.
Thread-bound loops are left alone.
"""

from __future__ import annotations

from compiler.loop.ir import For, ForKind, IfThenElse, Node, PrimFunc
from compiler.loop.traverse import transform
from compiler.passes.arith import Bounds
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import bound_vars, invariant, loops_of, may_ub, stored


def _hoistable(n: For, bounds: Bounds, params: list[str]) -> bool:
    body = n.body
    if n.kind is ForKind.thread_binding or not isinstance(body, IfThenElse):
        return False
    if not invariant(body.cond, bound_vars(body) | {n.var}, stored(body)):
        return False
    ext = bounds.of(n.extent)
    return (ext is not None and ext.lo >= 1) or not may_ub(body.cond, bounds, params)


def _unswitch(n: For) -> IfThenElse:
    body = n.body
    assert isinstance(body, IfThenElse)

    def loop(s: object) -> For:
        return For(n.var, n.min, n.extent, n.kind, s, n.thread)  # type: ignore[arg-type]

    return IfThenElse(body.cond, loop(body.then),
                      loop(body.else_) if body.else_ is not None else None)


def _applies(func: PrimFunc) -> bool:
    bounds = Bounds(func)
    params = [p.name for p in func.params]
    return any(_hoistable(lp, bounds, params) for lp in loops_of(func))


@loop_pass("Unswitch loops whose whole body is an if on a loop-invariant condition.",
           applies=_applies)
def hoist_if(func: PrimFunc) -> PrimFunc:
    bounds = Bounds(func)
    params = [p.name for p in func.params]

    def visit(n: Node) -> Node | None:
        return _unswitch(n) if isinstance(n, For) and _hoistable(n, bounds, params) else None

    out = transform(func, visit)
    assert isinstance(out, PrimFunc)
    return out
