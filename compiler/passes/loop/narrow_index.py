"""narrow_index: compute indices and loop variables in a narrower integer type.

Loop variables wider than `bits` whose whole range (proved by interval analysis, including
the last value `min + extent - 1`) fits a signed `bits`-wide integer get that type; their uses
see `int64(i)`. Index expressions made of + - * // % min max, immediates, variables and
casts whose every intermediate value fits the narrow type are rebuilt in it (an index may
have any integer dtype), and `int64(x)` used directly as an index becomes `x`.
"""

from __future__ import annotations

from compiler.dtypes import DType
from compiler.loop.ir import (
    BinKind,
    BinOp,
    BufferLoad,
    BufferStore,
    Cast,
    Expr,
    For,
    ForKind,
    IntImm,
    Node,
    PrimFunc,
    Var,
    int_range,
    is_int,
)
from compiler.loop.traverse import substitute, transform
from compiler.passes.arith import Bounds
from compiler.passes.base import Arg, loop_pass
from compiler.passes.loop_util import fold

_OPS = (BinKind.add, BinKind.sub, BinKind.mul, BinKind.floordiv, BinKind.floormod,
        BinKind.min, BinKind.max)


def _narrow_type(bits: int) -> DType:
    return {8: DType.int8, 16: DType.int16, 32: DType.int32}[bits]


def _fits(e: Expr, bounds: Bounds, dt: DType) -> bool:
    rng = bounds.of(e)
    return rng is not None and rng.within(*int_range(dt))


def narrow_expr(e: Expr, bounds: Bounds, dt: DType) -> Expr | None:
    """`e` rebuilt in `dt` with the same value, or None."""

    def narrow(n: Node, kids: list[Expr | None]) -> Expr | None:
        if not isinstance(n, Expr) or n.lanes != 1 or not is_int(n.dtype) \
                or not _fits(n, bounds, dt):
            return None
        if isinstance(n, Cast) and is_int(n.value.dtype) and kids[0] is not None:
            return kids[0]
        if n.dtype == dt:
            return n
        if isinstance(n, IntImm):
            return IntImm(n.value, dt)
        if isinstance(n, (Var, Cast)):
            return Cast(dt, n)
        if isinstance(n, BinOp) and n.op in _OPS and kids[0] is not None \
                and kids[1] is not None:
            return BinOp(n.op, kids[0], kids[1])
        return None

    return fold(e, narrow)


def _index(e: Expr, bounds: Bounds, dt: DType) -> Expr:
    """An index with the same value, as narrow as possible (an index may have any integer
    dtype)."""
    out = narrow_expr(e, bounds, dt)
    if out is not None and not isinstance(out, Cast):
        return out
    if isinstance(e, Cast) and is_int(e.value.dtype) and e.value.lanes == 1 \
            and e.dtype.bits > e.value.dtype.bits and e.dtype.is_signed:
        return e.value
    return e


def _loop(n: For, bounds: Bounds, dt: DType) -> Node | None:
    vt = n.var.dtype
    if vt.bits <= dt.bits or n.kind is ForKind.thread_binding:
        return None
    lo, ext = bounds.of(n.min), bounds.of(n.extent)
    dlo, dhi = int_range(dt)
    if lo is None or ext is None or not (lo.within(dlo, dhi) and ext.within(dlo, dhi)):
        return None
    if ext.hi > 0 and lo.hi + ext.hi - 1 > dhi:
        return None
    lo_e, ext_e = narrow_expr(n.min, bounds, dt), narrow_expr(n.extent, bounds, dt)
    if lo_e is None or ext_e is None:
        return None
    var = Var(n.var.name, dt)
    body = substitute(n.body, {n.var: Cast(vt, var)})
    return For(var, lo_e, ext_e, n.kind, body, n.thread)


@loop_pass("Narrow loop variables and index arithmetic to `bits`-wide integers when exact.",
           Arg("bits", int, 32, "target width", choices=(8, 16, 32)))
def narrow_index(func: PrimFunc, bits: int) -> PrimFunc:
    dt = _narrow_type(bits)
    bounds = Bounds(func)
    retyped = transform(func, lambda n: _loop(n, bounds, dt) if isinstance(n, For) else None)
    bounds = Bounds(retyped)

    def visit(n: Node) -> Node | None:
        if isinstance(n, BufferLoad):
            idx = tuple(_index(i, bounds, dt) for i in n.indices)
            return BufferLoad(n.buffer, idx) if idx != n.indices else None
        if isinstance(n, BufferStore):
            idx = tuple(_index(i, bounds, dt) for i in n.indices)
            return BufferStore(n.buffer, n.value, idx) if idx != n.indices else None
        return None

    out = transform(retyped, visit)
    assert isinstance(out, PrimFunc)
    return out
