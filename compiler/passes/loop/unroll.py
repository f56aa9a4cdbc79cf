"""unroll: replace small constant-extent loops by copies of their body.

Loops marked `unrolled`, and serial loops with no loop inside (or any serial loop when
`innermost=false`), whose extent is a constant of at most `max_extent`, become a sequence
of body copies with the loop variable replaced by `min + k`. A loop whose variable would
overflow its dtype (undefined behaviour) is left alone.
"""

from __future__ import annotations

from compiler.loop.ir import BinKind, BinOp, For, ForKind, IntImm, Node, PrimFunc, int_range
from compiler.loop.traverse import substitute, transform, walk
from compiler.passes.arith import const_value
from compiler.passes.base import Arg, loop_pass
from compiler.passes.loop_util import flatten_seqs, loops_of, seq_of


def _candidate(n: For, max_extent: int, innermost: bool) -> bool:
    ext = const_value(n.extent)
    if not isinstance(ext, int) or ext > max_extent:
        return False
    if n.kind is ForKind.unrolled:
        pass
    elif n.kind is ForKind.serial:
        if innermost and any(True for _ in loops_of(n.body)):
            return False
    else:
        return False
    lo = const_value(n.min)
    return not (isinstance(lo, int) and ext > 0 and lo + ext - 1 > int_range(n.var.dtype)[1])


def _value(n: For, k: int) -> object:
    if isinstance(n.min, IntImm):
        return IntImm(n.min.value + k, n.var.dtype)
    return n.min if k == 0 else BinOp(BinKind.add, n.min, IntImm(k, n.var.dtype))


def _applies(func: PrimFunc, max_extent: int, innermost: bool) -> bool:
    return any(_candidate(lp, max_extent, innermost) for lp in loops_of(func))


@loop_pass("Unroll unrolled/innermost serial loops of constant extent <= max_extent.",
           Arg("max_extent", int, 8, "largest extent to unroll", low=0),
           Arg("innermost", bool, True, "only unroll serial loops without inner loops"),
           applies=_applies)
def unroll(func: PrimFunc, max_extent: int, innermost: bool) -> PrimFunc:
    made: list[Node] = []  # unrolled copies: a loop around them was not innermost

    def visit(n: Node) -> Node | None:
        if not isinstance(n, For) or not _candidate(n, max_extent, innermost):
            return None
        if innermost and n.kind is ForKind.serial and made:
            ids = {id(m) for m in made}
            if any(id(x) in ids for x in walk(n.body)):
                return None
        ext = const_value(n.extent)
        assert isinstance(ext, int)
        out = seq_of(substitute(n.body, {n.var: _value(n, k)}) for k in range(max(ext, 0)))
        made.append(out)
        return out

    out = transform(func, visit)
    assert isinstance(out, PrimFunc)
    return flatten_seqs(out)
