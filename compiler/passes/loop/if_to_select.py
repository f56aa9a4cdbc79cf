"""if_to_select: turn small branches into selects (if-conversion).

```
if c { A[i] = x } else { A[i] = y }   ->  A[i] = select(c, x, y)
if c { A[i] = x }                      ->  A[i] = select(c, x, A[i])
```

Both arms are evaluated by a select, so `x`, `y` (and, without an else, the indices and the
load of `A[i]` from an initialised parameter) must be always defined (`loop_util.may_ub`).
Straight-line code vectorizes; branches do not.
"""

from __future__ import annotations

from compiler.loop.ir import BufferLoad, BufferStore, IfThenElse, Node, PrimFunc, Select
from compiler.loop.traverse import transform
from compiler.passes.arith import Bounds
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import may_ub


class _Convert:
    def __init__(self, func: PrimFunc) -> None:
        self.bounds = Bounds(func)
        self.params = [p.name for p in func.params]

    def safe(self, *exprs: object) -> bool:
        return not any(may_ub(e, self.bounds, self.params) for e in exprs)  # type: ignore[arg-type]

    def visit(self, n: Node) -> Node | None:
        if not isinstance(n, IfThenElse) or not isinstance(n.then, BufferStore):
            return None
        t = n.then
        if n.cond.lanes not in (1, t.value.lanes):
            return None
        if isinstance(n.else_, BufferStore):
            f = n.else_
            if f.buffer != t.buffer or f.indices != t.indices or not self.safe(t.value, f.value):
                return None
            return BufferStore(t.buffer, Select(n.cond, t.value, f.value), t.indices)
        if n.else_ is not None:
            return None
        old = BufferLoad(t.buffer, t.indices)
        if old.lanes != t.value.lanes or not self.safe(t.value, old):
            return None
        return BufferStore(t.buffer, Select(n.cond, t.value, old), t.indices)


@loop_pass("Convert ifs around single stores of always-defined values into selects.")
def if_to_select(func: PrimFunc) -> PrimFunc:
    out = transform(func, _Convert(func).visit)
    assert isinstance(out, PrimFunc)
    return out
