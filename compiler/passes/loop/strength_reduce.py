"""strength_reduce: replace expensive operations by cheaper exact ones.

- integer `x * 2**k` -> `x << k` (both wrap the same way);
- `x // 2**k` -> `x >> k` and `x % 2**k` -> `x & (2**k - 1)` (floor semantics; arithmetic
  shift on signed types), and the same for truncdiv/truncmod when `x >= 0` is proved;
- float `x / c` -> `x * (1 / c)` when `1 / c` is exactly representable (c a power of two):
  both are the correctly rounded value of the same real number.
Vector operands with broadcast constants are handled too.
"""

from __future__ import annotations

from compiler.loop.ir import (
    BinKind,
    BinOp,
    Broadcast,
    Expr,
    FloatImm,
    IntImm,
    Node,
    PrimFunc,
    int_range,
    is_float,
    is_int,
)
from compiler.loop.numeric import round_float
from compiler.loop.traverse import transform
from compiler.passes.arith import Bounds, const_value
from compiler.passes.base import loop_pass


def _like(value: int | float, e: Expr) -> Expr:
    imm = FloatImm(value, e.dtype) if is_float(e.dtype) else IntImm(value, e.dtype)
    return imm if e.lanes == 1 else Broadcast(imm, e.lanes)


def _log2(c: object, e: Expr) -> int | None:
    if not isinstance(c, int) or c < 2 or c & (c - 1) or c > int_range(e.dtype)[1]:
        return None
    return c.bit_length() - 1


def _reciprocal(c: float, e: Expr) -> float | None:
    if c == 0 or c != c or abs(c) == float("inf"):
        return None
    r = 1.0 / c
    if abs(r) == float("inf") or round_float(r, e.dtype) != r or r * c != 1.0:
        return None
    return r


def reduce_op(n: Node, bounds: Bounds) -> Node | None:
    if not isinstance(n, BinOp):
        return None
    c = const_value(n.b)
    if is_float(n.dtype) and n.op is BinKind.div and isinstance(c, float):
        r = _reciprocal(c, n)
        return BinOp(BinKind.mul, n.a, _like(r, n)) if r is not None else None
    if not is_int(n.dtype):
        return None
    k = _log2(c, n)
    if k is None:
        return None
    op = n.op
    if op in (BinKind.truncdiv, BinKind.truncmod):
        rng = bounds.of(n.a)
        if rng is None or rng.lo < 0:
            return None
        op = BinKind.floordiv if op is BinKind.truncdiv else BinKind.floormod
    if op is BinKind.mul:
        return BinOp(BinKind.shl, n.a, _like(k, n))
    if op is BinKind.floordiv:
        return BinOp(BinKind.shr, n.a, _like(k, n))
    if op is BinKind.floormod:
        assert isinstance(c, int)
        return BinOp(BinKind.bitand, n.a, _like(c - 1, n))
    return None


@loop_pass("Replace multiplications/divisions by powers of two with shifts, masks, products.")
def strength_reduce(func: PrimFunc) -> PrimFunc:
    bounds = Bounds(func)
    out = transform(func, lambda n: reduce_op(n, bounds))
    assert isinstance(out, PrimFunc)
    return out
