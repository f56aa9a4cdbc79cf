"""storage_rewrite: reuse one allocation for buffers whose lifetimes do not overlap.

Two allocations that are statements of the same sequence (so one's lifetime ends before the
other's begins), of the same dtype and scope and constant shapes, are merged: the later one
is renamed to the earlier one, whose scope grows to cover both. Equal shapes merge as they
are; 1-D buffers of different sizes share one of the larger size. The merged buffer starts
with the earlier one's leftovers instead of uninitialised memory, which only matters to a
program that reads memory it never wrote (undefined behaviour).
"""

from __future__ import annotations

from compiler.loop.ir import Allocate, Buffer, IntImm, Node, PrimFunc, SeqStmt
from compiler.loop.traverse import rewrite
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import const_shape, names_in, retarget, seq_of


def merged_buffer(a: Buffer, b: Buffer) -> Buffer | None:
    sa, sb = const_shape(a), const_shape(b)
    if sa is None or sb is None or a.dtype != b.dtype or a.scope != b.scope:
        return None
    if sa == sb:
        return a
    if len(sa) == 1 and len(sb) == 1:
        return a if sa[0] >= sb[0] else Buffer(a.name, a.dtype, (IntImm(sb[0]),), a.scope)
    return None


def merge_allocs(s: Node) -> Node | None:
    if not isinstance(s, SeqStmt):
        return None
    stmts = list(s.stmts)
    for k, first in enumerate(stmts):
        if not isinstance(first, Allocate):
            continue
        for j in range(k + 1, len(stmts)):
            second = stmts[j]
            if not isinstance(second, Allocate):
                continue
            buf = merged_buffer(first.buffer, second.buffer)
            later = stmts[k + 1:j + 1]
            name = first.buffer.name
            if buf is None or any(name in names_in(x) for x in stmts[k + 1:j]) \
                    or name in names_in(second.body):
                continue
            renamed = retarget(second.body, second.buffer.name, buf)
            tail = [*later[:-1], renamed]
            body = retarget(first.body, name, buf) if buf is not first.buffer else first.body
            merged = Allocate(buf, seq_of([body, *tail]))
            return seq_of([*stmts[:k], merged, *stmts[j + 1:]])
    return None


@loop_pass("Merge sibling allocations of the same dtype and scope into one reused buffer.")
def storage_rewrite(func: PrimFunc) -> PrimFunc:
    out = rewrite(func, [merge_allocs])
    assert isinstance(out, PrimFunc)
    return out
