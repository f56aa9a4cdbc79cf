"""lower_intrinsics: expand intrinsics into basic operations where that is exact.

- `isnan(x)` -> `x != x`; `isinf(x)` -> `x == inf || x == -inf`;
  `isfinite(x)` -> `x == x && x != inf && x != -inf`;
- integer `abs(x)` -> `select(x < 0, -x, x)` (wrapping, so `abs(MIN) == MIN` as before);
  unsigned `abs(x)` -> `x`;
- `popcount(x)` -> the SWAR bit-counting sequence, in the operand's own (wrapping) type.

Transcendentals (`hypot`, `expm1`, `log1p`, `pow`, ...) are left alone: no expansion into
basic operations reproduces the reference results bit for bit (even `pow(x, 2.0)` differs
from `x * x` in numpy's vectorized kernels).
"""

from __future__ import annotations

from compiler.dtypes import DType
from compiler.loop.ir import (
    BinKind,
    Call,
    CmpKind,
    Expr,
    FloatImm,
    IntImm,
    Node,
    PrimFunc,
    Select,
    UnKind,
    UnOp,
    is_float,
    is_int,
)
from compiler.loop.traverse import transform, walk
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import binop, broadcast, cmp

LOWERED = ("isnan", "isinf", "isfinite", "abs", "popcount")


def _const(value: int | float, like: Expr) -> Expr:
    imm = FloatImm(value, like.dtype) if is_float(like.dtype) else IntImm(value, like.dtype)
    return broadcast(imm, like.lanes)


def _fill(byte: int, dtype: DType) -> int:
    return int.from_bytes(bytes([byte]) * (dtype.bits // 8), "little")


def popcount(x: Expr) -> Expr:
    dt = x.dtype

    def k(v: int) -> Expr:
        return _const(v, x)

    def shr(e: Expr, n: int) -> Expr:
        return binop(BinKind.shr, e, k(n))

    def band(e: Expr, m: int) -> Expr:
        return binop(BinKind.bitand, e, k(_fill(m, dt)))

    x = binop(BinKind.sub, x, band(shr(x, 1), 0x55))
    x = binop(BinKind.add, band(x, 0x33), band(shr(x, 2), 0x33))
    x = band(binop(BinKind.add, x, shr(x, 4)), 0x0F)
    if dt.bits == 8:
        return x
    return shr(binop(BinKind.mul, x, k(_fill(0x01, dt))), dt.bits - 8)


def lower(n: Node) -> Node | None:
    if not isinstance(n, Call) or n.op not in LOWERED:
        return None
    x = n.args[0]
    if n.op == "isnan":
        return cmp(CmpKind.ne, x, x)
    if n.op == "isinf":
        return binop(BinKind.or_, cmp(CmpKind.eq, x, _const(float("inf"), x)),
                     cmp(CmpKind.eq, x, _const(float("-inf"), x)))
    if n.op == "isfinite":
        finite = binop(BinKind.and_, cmp(CmpKind.ne, x, _const(float("inf"), x)),
                       cmp(CmpKind.ne, x, _const(float("-inf"), x)))
        return binop(BinKind.and_, cmp(CmpKind.eq, x, x), finite)
    if not is_int(x.dtype):
        return None
    if n.op == "abs":
        if not x.dtype.is_signed:
            return x
        return Select(cmp(CmpKind.lt, x, _const(0, x)), UnOp(UnKind.neg, x), x)
    return popcount(x)


def _applies(func: PrimFunc) -> bool:
    return any(isinstance(n, Call) and lower(n) is not None for n in walk(func))


@loop_pass("Expand isnan/isinf/isfinite, integer abs and popcount into exact basic ops.",
           applies=_applies)
def lower_intrinsics(func: PrimFunc) -> PrimFunc:
    out = transform(func, lower)
    assert isinstance(out, PrimFunc)
    return out
