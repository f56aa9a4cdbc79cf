"""compact_alloc: shrink allocations to the region their accesses can reach.

For an allocation of constant shape, the interval analysis bounds every index of every load
and store in its scope; each dimension shrinks to the hull of those intervals (within the
original extent) and indices are shifted by its lower end. Accesses outside the original
shape were undefined behaviour, so only in-bounds behaviour needs to be kept.
"""

from __future__ import annotations

from compiler.loop.ir import (
    Allocate,
    BinKind,
    Buffer,
    BufferLoad,
    BufferStore,
    Expr,
    IntImm,
    Node,
    PrimFunc,
)
from compiler.loop.traverse import transform, walk
from compiler.passes.arith import Bounds, Interval
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import binop, const_shape


def footprint(alloc: Allocate, bounds: Bounds) -> list[Interval] | None:
    shape = const_shape(alloc.buffer)
    if shape is None:
        return None
    name = alloc.buffer.name
    hulls: list[Interval | None] = [None] * len(shape)
    for n in walk(alloc.body):
        if not isinstance(n, (BufferLoad, BufferStore)) or n.buffer.name != name:
            continue
        for k, idx in enumerate(n.indices):
            rng = bounds.of(idx)
            if rng is None:
                return None
            lo, hi = max(rng.lo, 0), min(rng.hi, shape[k] - 1)
            if lo > hi:
                continue
            cur = hulls[k]
            hulls[k] = Interval(lo, hi) if cur is None else cur.hull(Interval(lo, hi))
    return [h if h is not None else Interval(0, 0) for h in hulls]


def _shift(indices: tuple[Expr, ...], lows: list[int]) -> tuple[Expr, ...]:
    return tuple(i if lo == 0 else binop(BinKind.sub, i, IntImm(lo, i.dtype))
                 for i, lo in zip(indices, lows, strict=True))


def compact(alloc: Allocate, bounds: Bounds) -> Node | None:
    region = footprint(alloc, bounds)
    shape = const_shape(alloc.buffer)
    if region is None or shape is None:
        return None
    new_shape = [r.hi - r.lo + 1 for r in region]
    if new_shape == shape:
        return None
    old = alloc.buffer
    lows = [r.lo for r in region]
    buf = Buffer(old.name, old.dtype, tuple(IntImm(d, s.dtype) for d, s in
                                            zip(new_shape, old.shape, strict=True)), old.scope)

    def access(n: Node) -> Node | None:
        if isinstance(n, BufferLoad) and n.buffer == old:
            return BufferLoad(buf, _shift(n.indices, lows))
        if isinstance(n, BufferStore) and n.buffer == old:
            return BufferStore(buf, n.value, _shift(n.indices, lows))
        return None

    return Allocate(buf, transform(alloc.body, access))  # type: ignore[arg-type]


@loop_pass("Shrink allocations to the index region their accesses can reach.")
def compact_alloc(func: PrimFunc) -> PrimFunc:
    bounds = Bounds(func)
    out = transform(func, lambda n: compact(n, bounds) if isinstance(n, Allocate) else None)
    assert isinstance(out, PrimFunc)
    return out
