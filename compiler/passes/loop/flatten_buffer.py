"""flatten_buffer: turn multi-dimensional allocations into 1-D ones.

An allocation of constant shape `[d0, d1, ..., dk]` becomes `[d0 * d1 * ... * dk]` and every
access `T[i0, ..., ik]` becomes `T[((i0 * d1 + i1) * d2 + ...) + ik]`, computed in int32 (or
int64 when the size needs it) after casting each index. For in-bounds indices the casts and
the arithmetic are exact. Parameters keep their shapes (they are the function's interface).
"""

from __future__ import annotations

import math

from compiler.dtypes import DType
from compiler.loop.ir import (
    Allocate,
    BinKind,
    Buffer,
    BufferLoad,
    BufferStore,
    Cast,
    Expr,
    IntImm,
    Node,
    PrimFunc,
    int_range,
)
from compiler.loop.traverse import transform
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import binop, broadcast, const_shape


def linear_index(indices: tuple[Expr, ...], shape: list[int], dt: DType) -> Expr:
    lanes = max((i.lanes for i in indices), default=1)
    if not indices:
        return IntImm(0, dt)
    out: Expr | None = None
    for idx, dim in zip(indices, shape, strict=True):
        i = idx if idx.dtype == dt else Cast(dt, idx)
        if out is None:
            out = i
        else:
            out = binop(BinKind.add, binop(BinKind.mul, out, IntImm(dim, dt)), i)
    assert out is not None
    return broadcast(out, lanes)


def _flatten(alloc: Allocate) -> Node | None:
    shape = const_shape(alloc.buffer)
    if shape is None or len(shape) == 1:
        return None
    total = math.prod(shape)
    dt = DType.int32 if total <= int_range(DType.int32)[1] else DType.int64
    old = alloc.buffer
    flat = Buffer(old.name, old.dtype, (IntImm(total, dt),), old.scope)

    def access(n: Node) -> Node | None:
        if isinstance(n, BufferLoad) and n.buffer == old:
            return BufferLoad(flat, (linear_index(n.indices, shape, dt),))
        if isinstance(n, BufferStore) and n.buffer == old:
            return BufferStore(flat, n.value, (linear_index(n.indices, shape, dt),))
        return None

    return Allocate(flat, transform(alloc.body, access))  # type: ignore[arg-type]


@loop_pass("Flatten multi-dimensional allocations to 1-D with row-major linear indices.")
def flatten_buffer(func: PrimFunc) -> PrimFunc:
    out = transform(func, lambda n: _flatten(n) if isinstance(n, Allocate) else None)
    assert isinstance(out, PrimFunc)
    return out
