"""hoist_alloc: allocate loop-local scratch memory once, outside the loop.

An allocation of constant shape inside a serial, unrolled or vectorized loop (not under a
parallel or thread-bound loop within it) moves out to wrap the loop, when its name is bound
nowhere else in the loop. Each iteration then sees the previous iteration's values instead
of uninitialised memory, which only matters to a program with undefined behaviour. Loops are
processed innermost first, so allocations move out through whole serial nests.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler.loop.ir import Allocate, Buffer, For, ForKind, Node, PrimFunc, Stmt
from compiler.loop.traverse import transform, walk
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import const_shape, names_in, top_down

_HOISTABLE = (ForKind.serial, ForKind.unrolled, ForKind.vectorized)


def _movable(loop: For) -> list[Buffer]:
    found: list[Buffer] = []

    def visit(n: Node, recurse: Callable[[Node], Node]) -> Node | None:
        if isinstance(n, For) and n.kind not in _HOISTABLE:
            return n
        if isinstance(n, Allocate) and const_shape(n.buffer) is not None:
            found.append(n.buffer)
        return None

    top_down(loop.body, visit)
    counts = [sum(1 for n in walk(loop) if isinstance(n, Allocate) and n.buffer.name == b.name)
              for b in found]
    others = {n.var.name for n in walk(loop) if hasattr(n, "var")}
    return [b for b, c in zip(found, counts, strict=True) if c == 1 and b.name not in others
            and b.name not in names_in(loop.min) | names_in(loop.extent)]


def hoist(loop: For) -> Stmt | None:
    if loop.kind not in _HOISTABLE:
        return None
    bufs = _movable(loop)
    if not bufs:
        return None
    keep = set(bufs)
    body = transform(loop.body, lambda n: n.body if isinstance(n, Allocate) and n.buffer in keep
                     else None)
    out: Stmt = For(loop.var, loop.min, loop.extent, loop.kind, body, loop.thread)
    for b in reversed(bufs):
        out = Allocate(b, out)
    return out


@loop_pass("Move constant-shape allocations out of serial loops.")
def hoist_alloc(func: PrimFunc) -> PrimFunc:
    out = transform(func, lambda n: hoist(n) if isinstance(n, For) else None)
    assert isinstance(out, PrimFunc)
    return out
