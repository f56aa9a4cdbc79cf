"""loop_canonicalize: make every loop start at zero.

`for i in serial(m, e) {body}` becomes `for i in serial(0, e) {body[i := i + m]}`. The loop
variable keeps its name and dtype; `i + m` cannot wrap because the original loop's last value
`m + e - 1` fits the dtype (overflowing it is undefined behaviour). Thread-bound loops
already start at zero.
"""

from __future__ import annotations

from compiler.loop.ir import BinKind, BinOp, For, IntImm, Node, PrimFunc
from compiler.loop.traverse import substitute, transform
from compiler.passes.base import loop_pass


def _shift(n: Node) -> Node | None:
    if not isinstance(n, For) or n.min == IntImm(0, n.min.dtype):
        return None
    body = substitute(n.body, {n.var: BinOp(BinKind.add, n.var, n.min)})
    return For(n.var, IntImm(0, n.var.dtype), n.extent, n.kind, body, n.thread)


def _applies(func: PrimFunc) -> bool:
    from compiler.passes.loop_util import loops_of

    return any(lp.min != IntImm(0, lp.min.dtype) for lp in loops_of(func))


@loop_pass("Rebase every loop to start at 0 (uses become i + min).", applies=_applies)
def loop_canonicalize(func: PrimFunc) -> PrimFunc:
    out = transform(func, _shift)
    assert isinstance(out, PrimFunc)
    return out
