"""parallelize: mark the outermost loops whose iterations are independent as parallel.

A serial loop becomes `parallel` when every buffer its body writes (other than buffers
allocated inside it) is accessed at one index tuple that moves with the loop variable, so no
two iterations touch the same written element (`loop_util.independent`). Loops inside a
parallel, vectorized or thread-bound loop are left alone, as are loops with a constant
extent below `min_extent`. A loop nested in serial loops that run more than `max_outer` times
in all is left serial too (every run of it would start and join a parallel region), and so
is a loop that runs fewer than `min_work` innermost statements in all.
"""

from __future__ import annotations

from compiler.loop.ir import BufferStore, Evaluate, For, ForKind, Node, PrimFunc, Stmt
from compiler.loop.traverse import children, map_children
from compiler.passes.base import Arg, loop_pass
from compiler.passes.loop_util import const_int, independent


def _eligible(n: For, min_extent: int) -> bool:
    if n.kind is not ForKind.serial:
        return False
    extent = const_int(n.extent)
    if extent is not None and extent < min_extent:
        return False
    return independent(n.body, [n.var])


def _work(n: Node) -> int:
    """A rough count of the innermost statements `n` runs (unknown extents count as 64)."""
    if isinstance(n, For):
        extent = const_int(n.extent)
        return (extent if extent is not None else 64) * max(1, _work(n.body))
    if isinstance(n, (BufferStore, Evaluate)):
        return 1
    return sum(_work(c) for c in children(n) if isinstance(c, Stmt))


def _visit(n: Node, trips: int, min_extent: int, max_outer: int, min_work: int) -> Node:
    """`trips`: how many times the enclosing serial loops run `n`."""
    if isinstance(n, For):
        if n.kind in (ForKind.parallel, ForKind.vectorized, ForKind.thread_binding):
            return n
        if trips <= max_outer and _eligible(n, min_extent) and _work(n) >= min_work:
            return For(n.var, n.min, n.extent, ForKind.parallel, n.body)
        extent = const_int(n.extent)
        inner = trips * extent if extent is not None else max_outer + 1
        body = _visit(n.body, inner, min_extent, max_outer, min_work)
        return For(n.var, n.min, n.extent, n.kind, body, n.thread)  # type: ignore[arg-type]
    if isinstance(n, Stmt) or isinstance(n, PrimFunc):
        return map_children(n, lambda c: _visit(c, trips, min_extent, max_outer, min_work))
    return n


@loop_pass("Mark outermost loops with independent iterations as parallel.",
           Arg("min_extent", int, 2, "smallest constant extent worth parallelizing", low=1),
           Arg("max_outer", int, 64, "most runs of a loop's enclosing serial loops (each run "
               "starts a parallel region)", low=1),
           Arg("min_work", int, 4096, "fewest innermost statements a parallel loop runs", low=1))
def parallelize(func: PrimFunc, min_extent: int, max_outer: int, min_work: int) -> PrimFunc:
    out = _visit(func, 1, min_extent, max_outer, min_work)
    assert isinstance(out, PrimFunc)
    return out
