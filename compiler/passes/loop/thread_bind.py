"""thread_bind: map outermost independent loops onto GPU blocks and threads.

In a function without thread-bound loops, each outermost serial or parallel loop whose
iterations are independent (`loop_util.independent`) becomes

```
for b in blockIdx.x(0, ceil(e / threads)) {
  for t in threadIdx.x(0, threads) { if b * threads + t < e { B[i := m + b * threads + t] } }
}
```

or a single `threadIdx.x` loop when a constant extent fits in one block. Iterations keep their
order (the interpreter runs thread-bound loops serially), so the meaning is unchanged, and
independence makes the mapping correct on a GPU.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler.loop.ir import (
    CmpKind,
    CmpOp,
    For,
    ForKind,
    IfThenElse,
    IntImm,
    Node,
    PrimFunc,
    Var,
)
from compiler.loop.traverse import substitute
from compiler.passes.arith import Bounds
from compiler.passes.base import Arg, loop_pass
from compiler.passes.loop_util import (
    NameSupply,
    bound_vars,
    independent,
    invariant,
    loops_of,
    offset,
    scaled,
    split_extent,
    stored,
    top_down,
)


def _bindable(n: For) -> bool:
    if n.kind not in (ForKind.serial, ForKind.parallel):
        return False
    if not isinstance(n.extent, IntImm) and \
            not invariant(n.extent, bound_vars(n.body) | {n.var}, stored(n.body)):
        return False
    return independent(n.body, [n.var])


def bind(n: For, threads: int, names: NameSupply, bounds: Bounds) -> Node | None:
    dt = n.var.dtype
    if isinstance(n.extent, IntImm) and 0 < n.extent.value <= threads:
        t = Var(names.fresh(f"{n.var.name}_t"), dt)
        body = substitute(n.body, {n.var: offset(n.min, t)})
        return For(t, IntImm(0, dt), n.extent, ForKind.thread_binding, body, "threadIdx.x")
    split = split_extent(n.extent, threads, bounds)
    if split is None:
        return None
    blocks, guard = split
    b = Var(names.fresh(f"{n.var.name}_b"), dt)
    t = Var(names.fresh(f"{n.var.name}_t"), dt)
    flat = scaled(b, threads, t)
    body = substitute(n.body, {n.var: offset(n.min, flat)})
    if guard:
        body = IfThenElse(CmpOp(CmpKind.lt, flat, n.extent), body)
    inner = For(t, IntImm(0, dt), IntImm(threads, dt), ForKind.thread_binding, body,
                "threadIdx.x")
    return For(b, IntImm(0, dt), blocks, ForKind.thread_binding, inner, "blockIdx.x")


def _applies(func: PrimFunc, threads: int) -> bool:
    loops = list(loops_of(func))
    return not any(lp.kind is ForKind.thread_binding for lp in loops) and \
        any(_bindable(lp) for lp in loops)


@loop_pass("Bind outermost independent loops to blockIdx.x/threadIdx.x (GPU lowering).",
           Arg("threads", int, 64, "threads per block", low=1), applies=_applies)
def thread_bind(func: PrimFunc, threads: int) -> PrimFunc:
    if any(lp.kind is ForKind.thread_binding for lp in loops_of(func)):
        return func
    bounds = Bounds(func)
    names = NameSupply(func)

    def visit(n: Node, recurse: Callable[[Node], Node]) -> Node | None:
        if not isinstance(n, For):
            return None
        if _bindable(n):
            return bind(n, threads, names, bounds)
        return n  # an outermost loop that cannot be bound: leave its nest alone

    out = top_down(func, visit)
    assert isinstance(out, PrimFunc)
    return out
