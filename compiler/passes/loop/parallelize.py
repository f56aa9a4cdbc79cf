"""parallelize: mark the outermost loops whose iterations are independent as parallel.

A serial loop becomes `parallel` when every buffer its body writes (other than buffers
allocated inside it) is accessed at one index tuple that moves with the loop variable, so no
two iterations touch the same written element (`loop_util.independent`). Loops inside a
parallel, vectorized or thread-bound loop are left alone, as are loops with a constant
extent below `min_extent`.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler.loop.ir import For, ForKind, IntImm, Node, PrimFunc
from compiler.passes.base import Arg, loop_pass
from compiler.passes.loop_util import independent, top_down


def _eligible(n: For, min_extent: int) -> bool:
    if n.kind is not ForKind.serial:
        return False
    if isinstance(n.extent, IntImm) and n.extent.value < min_extent:
        return False
    return independent(n.body, [n.var])


def _visit(n: Node, recurse: Callable[[Node], Node], min_extent: int) -> Node | None:
    if not isinstance(n, For):
        return None
    if n.kind in (ForKind.parallel, ForKind.vectorized, ForKind.thread_binding):
        return n
    if _eligible(n, min_extent):
        return For(n.var, n.min, n.extent, ForKind.parallel, n.body)
    return None


@loop_pass("Mark outermost loops with independent iterations as parallel.",
           Arg("min_extent", int, 2, "smallest constant extent worth parallelizing", low=1))
def parallelize(func: PrimFunc, min_extent: int) -> PrimFunc:
    out = top_down(func, lambda n, rec: _visit(n, rec, min_extent))
    assert isinstance(out, PrimFunc)
    return out
