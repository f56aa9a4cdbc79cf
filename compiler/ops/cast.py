"""Cast, CastLike and BitCast over every Anvil dtype.

`cast_array` is the one definition of a value conversion (later layers and constant folding
reuse it). Its rules, after the ONNX Cast spec:

- float -> float: round to nearest even; out of range gives +-inf. The float8 types saturate
  to +-max (NaN stays NaN) unless `saturate` is 0, when overflow gives inf (E5M2) or NaN.
  float8e8m0 rounds by `round_mode` (up, down, nearest) and saturates to its range.
- float -> integer: truncate toward zero, then wrap to the target width. NaN gives 0; values
  beyond int64 clamp first (both undefined in ONNX).
- integer -> integer: wrap (two's complement). x -> bool: x != 0. bool -> x: 0 or 1.
- numbers -> string: "%.8g", with "NaN", "INF", "-INF" (as onnxruntime writes them);
  string -> number: decimal or scientific notation, INF/NaN in any case.

`cast_expr` is its loop-IR twin for the dtypes native targets support (all but strings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ml_dtypes
import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import TensorType
from compiler.loop import build as B
from compiler.loop.ir import (
    Expr,
    can_reinterpret,
    is_float,
    is_int,
    is_minifloat,
    is_narrow_int,
)
from compiler.loop.numeric import float_from_ints
from compiler.lower import te, topi
from compiler.ops.base import Attr, EvalCtx, InferCtx, Kind, OpDef, register
from compiler.ops.elementwise import INT64_HI, INT64_LO, float_to_int64

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

D = DType
FLOAT8 = (D.float8e4m3fn, D.float8e4m3fnuz, D.float8e5m2, D.float8e5m2fnuz)
ROUND_MODES = ("up", "down", "nearest")
CASTABLE = tuple(d for d in DType if d not in (D.complex64, D.complex128))


def dtype_of(x: np.ndarray) -> DType:
    return D.string if x.dtype == object else DType.from_np(x.dtype)


def cast_array(x: np.ndarray, dst: DType, *, saturate: bool = True,
               round_mode: str = "up") -> np.ndarray:
    """x converted to dst by the rules above."""
    src = dtype_of(x)
    with np.errstate(all="ignore"):
        if src is dst:
            return x.copy()
        if dst is D.string:
            return _to_string(x, src)
        if src is D.string:
            x, src = _parse(x, dst)
        if src is D.bool:
            x, src = x.astype(np.uint8), D.uint8
        if dst is D.bool:
            return _as_float(x, src) != 0 if src.is_float else x != 0
        if dst.is_int:
            return _to_int(x, src, dst)
        return _to_float(x, src, dst, saturate, round_mode)


def _as_float(x: np.ndarray, src: DType) -> np.ndarray:
    """x as float64 when it is float64 (or wide integers), else float32 (exact for the rest)."""
    if src in (D.float64, D.int32, D.int64, D.uint32, D.uint64):
        return x.astype(np.float64)
    return x.astype(np.float32)


def _to_int(x: np.ndarray, src: DType, dst: DType) -> np.ndarray:
    if src.is_float:
        t = np.trunc(x.astype(np.float64))
        t = np.nan_to_num(t, nan=0.0, posinf=2.0**64, neginf=-(2.0**63))
        if dst is D.uint64:
            big = t >= 2.0**63
            low = np.clip(np.where(big, t - 2.0**64, t), -(2.0**63), 2.0**63 - 1024)
            return low.astype(np.int64).astype(np.uint64)
        x = np.clip(t, -(2.0**63), 2.0**63 - 1024).astype(np.int64)
    elif src is not D.uint64:
        x = x.astype(np.int64)
    return x.astype(dst.np)


def _to_float(x: np.ndarray, src: DType, dst: DType, saturate: bool,
              round_mode: str) -> np.ndarray:
    if src in (D.int64, D.uint64) and dst in (D.float32, D.bfloat16):
        return float_from_ints(x, dst)  # through float64 would round twice
    xf = _as_float(x, src)
    if dst is D.float8e8m0:
        return _to_e8m0(xf.astype(np.float64), saturate, round_mode)
    if dst in FLOAT8 and saturate:
        big = float(ml_dtypes.finfo(dst.np).max)
        xf = np.clip(xf, -big, big)
    if xf.dtype == np.float64 and dst.bits < 32 and dst is not D.float16:
        xf = _f64_to_f32_odd(xf)  # ml_dtypes narrows float64 through float32: round once
    return xf.astype(dst.np)


def _f64_to_f32_odd(x: np.ndarray) -> np.ndarray:
    """float64 -> float32 rounding to odd: truncate toward zero and set the last bit when
    inexact. Rounding that to a type of at most 22 significand bits equals rounding x
    directly, so the final narrowing rounds only once."""
    t = x.astype(np.float32)
    inexact = (t.astype(np.float64) != x) & ~np.isnan(x)
    towards_zero = np.abs(t.astype(np.float64)) > np.abs(x)
    t = np.where(inexact & towards_zero, np.nextafter(t, np.float32(0)), t)
    bits = t.view(np.uint32) | inexact.astype(np.uint32)
    return bits.view(np.float32)


def _to_e8m0(x: np.ndarray, saturate: bool, round_mode: str) -> np.ndarray:
    """Powers of two 2**(bits - 127), bits 0..254; 255 is NaN. The sign is ignored."""
    a = np.abs(x)
    finite = np.isfinite(a) & (a > 0)
    m, e = np.frexp(np.where(finite, a, 1.0))  # a = m * 2**e, m in [0.5, 1)
    frac = 2 * m - 1  # a = (1 + frac) * 2**(e - 1)
    k = e.astype(np.int64) - 1
    if round_mode == "up":
        k += frac > 0
    elif round_mode == "nearest":
        k += frac >= 0.5
    bits = k + 127
    if saturate:
        bits = np.clip(bits, 0, 254)
        bits = np.where(a == 0, 0, np.where(np.isinf(a), 254, bits))
        bits = np.where(np.isnan(a), 255, bits)
    else:
        bits = np.where(finite & (bits >= 0) & (bits <= 254), bits, 255)
    return bits.astype(np.uint8).view(D.float8e8m0.np)


def _fmt(v: Any, src: DType) -> str:
    if src is D.bool:
        return "1" if v else "0"
    if src.is_int:
        return str(int(v))
    f = float(v)
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "INF" if f > 0 else "-INF"
    return f"{f:.8g}"


def _to_string(x: np.ndarray, src: DType) -> np.ndarray:
    flat = x.astype(np.float64) if src.is_float else x
    out = np.empty(x.shape, dtype=object)
    out.reshape(-1)[:] = [_fmt(v, src) for v in flat.reshape(-1).tolist()]
    return out


def _parse_one(s: Any, want_int: bool) -> int | float:
    text = str(s).strip()
    if want_int:
        try:
            return int(text)
        except ValueError:
            pass
    try:
        v = float(text)
    except ValueError:
        try:
            v = float.fromhex(text)
        except ValueError:
            raise ExecutionError(f"Cast: cannot parse {text!r} as a number") from None
    if want_int:
        return 0 if v != v or v in (float("inf"), float("-inf")) else int(v)
    return v


def _parse(x: np.ndarray, dst: DType) -> tuple[np.ndarray, DType]:
    """Strings -> int64 (wrapped) for integer/bool targets, float64 otherwise."""
    want_int = dst.is_int or dst is D.bool
    vals = [_parse_one(s, want_int) for s in x.reshape(-1).tolist()]
    if want_int:
        wrapped = [((v + 2**63) % 2**64) - 2**63 for v in vals]
        return np.array(wrapped, dtype=np.int64).reshape(x.shape), D.int64
    return np.array(vals, dtype=np.float64).reshape(x.shape), D.float64


# ---------------------------------------------------------------------------------------
# Lowering


def cast_expr(x: Expr, dst: DType, *, saturate: bool = True, round_mode: str = "up") -> Expr:
    """x converted to dst by `cast_array`'s rules. The loop IR's Cast has most of them; the
    rest are built here: float -> integer, where NaN, infinities and out-of-range values are
    undefined in the IR, goes through int64 as in the reference (NaN 0, clamped, then
    wrapped); float8 targets saturate first, and from float64 round once (to odd in float32,
    where the IR's Cast, like ml_dtypes, would round twice); float8e8m0 follows
    `round_mode`."""
    src = x.dtype
    if src is dst:
        return x
    floaty = is_float(src) or is_minifloat(src)
    if floaty and (is_int(dst) or is_narrow_int(dst)):
        x64 = B.cast(D.float64, x) if src is not D.float64 else x
        if dst is D.uint64:  # [2**63, 2**64) wraps onto the negative int64 range; +inf is 2**64
            return B.cast(D.uint64, _uint64_bits(x64))
        i64 = float_to_int64(x64)
        return i64 if dst is D.int64 else B.cast(dst, i64)
    if dst is D.float8e8m0:
        return _e8m0_expr(B.cast(D.float64, x), saturate, round_mode)
    if not is_minifloat(dst) or src is D.bool:
        return B.cast(dst, x)
    wide = src in (D.float64, D.int32, D.int64, D.uint32, D.uint64)  # as `_as_float`
    xf = B.cast(D.float64 if wide else D.float32, x)
    if dst in FLOAT8 and saturate:
        big = float(ml_dtypes.finfo(dst.np).max)
        xf = B.max_(B.min_(xf, big), -big)  # NaN stays NaN
    if wide:
        xf = _f64_to_f32_odd_expr(xf)
    return B.cast(dst, xf)


def _f64_to_f32_odd_expr(x: Expr) -> Expr:
    """The loop-IR twin of `_f64_to_f32_odd`."""
    def body(x: Expr) -> Expr:
        t = B.cast(D.float32, x)
        return topi.let(t, lambda t: _round_to_odd(x, t))

    return topi.let(x, body)


def _round_to_odd(x: Expr, t: Expr) -> Expr:
    u32 = D.uint32
    back = B.cast(D.float64, t)
    inexact = B.and_(B.ne(back, x), B.not_(B.call("isnan", x)))
    towards_zero = B.call("abs", back) > B.call("abs", x)
    bits = B.reinterpret(u32, t)
    one, zero = topi.scalar(1, u32), topi.scalar(0, u32)
    down = B.select(B.and_(inexact, towards_zero), one, zero)  # toward zero: one ulp less
    return B.reinterpret(D.float32, (bits - down) | B.select(inexact, one, zero))


def _e8m0_expr(x: Expr, saturate: bool, round_mode: str) -> Expr:
    """The loop-IR twin of `_to_e8m0` (x float64): the exponent and fraction from the bits of
    |x|; a subnormal double is far below 2**-127."""
    i64 = D.int64

    def body(x: Expr) -> Expr:
        b = B.reinterpret(i64, B.call("abs", x))
        exp = b >> topi.scalar(52, i64)
        frac = b & topi.scalar((1 << 52) - 1, i64)
        k = B.select(B.eq(exp, topi.scalar(0, i64)), topi.scalar(-2000, i64),
                     exp - topi.scalar(1023, i64))
        if round_mode == "up":
            k = k + B.cast(i64, B.ne(frac, topi.scalar(0, i64)))
        elif round_mode == "nearest":
            k = k + B.cast(i64, frac >= topi.scalar(1 << 51, i64))
        bits = k + topi.scalar(127, i64)
        zero, nan = topi.scalar(0, i64), topi.scalar(255, i64)
        if saturate:
            bits = B.max_(B.min_(bits, topi.scalar(254, i64)), zero)
            bits = B.select(B.eq(x, 0.0), zero, B.select(B.call("isinf", x),
                                                           topi.scalar(254, i64), bits))
            bits = B.select(B.call("isnan", x), nan, bits)
        else:
            ok = B.and_(B.call("isfinite", x), B.ne(x, 0.0))
            ok = B.and_(ok, B.and_(bits >= zero, bits <= topi.scalar(254, i64)))
            bits = B.select(ok, bits, nan)
        return B.reinterpret(D.float8e8m0, B.cast(D.uint8, bits))

    return topi.let(x, body)


def _uint64_bits(x: Expr) -> Expr:
    def body(t: Expr) -> Expr:
        t = B.select(B.eq(t, float("inf")), 2.0**64, B.select(B.call("isnan", t), 0.0, t))
        return topi.let(t, lambda t: B.cast(D.int64, B.max_(B.min_(
            B.select(t >= 2.0**63, t - 2.0**64, t), INT64_HI), INT64_LO)))

    return topi.let(x, body)


def _cast_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """Cast and CastLike (whose second input only names the target dtype)."""
    x, dst = ins[0], ctx.out_types[0].dtype
    if x.dtype is dst:
        return [x]  # lowering copies an input returned as an output
    sat, mode = bool(ctx.attrs["saturate"]), ctx.attrs["round_mode"]
    return [te.compute(ctx.op, x.shape,
                       lambda *i: cast_expr(x[i], dst, saturate=sat, round_mode=mode), dst)]


def _bitcast_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """Types of one width of 8+ bits reinterpret their bits; integers of one width (and bool
    with 8-bit integers) convert as a Cast does."""
    x, dst = ins[0], ctx.out_types[0].dtype
    if x.dtype is dst:
        return [x]
    if can_reinterpret(x.dtype, dst):
        return [te.compute(ctx.op, x.shape, lambda *i: B.reinterpret(dst, x[i]), dst)]
    if x.dtype.is_float or dst.is_float:
        raise ctx.fail(f"bit-casting {x.dtype} to {dst} is not supported by native targets")
    return [te.compute(ctx.op, x.shape, lambda *i: B.cast(dst, x[i]), dst)]


# ---------------------------------------------------------------------------------------
# Ops


def _check_cast_attrs(ctx: InferCtx) -> None:
    if ctx.attrs["saturate"] not in (0, 1):
        raise ctx.fail(f"saturate must be 0 or 1, got {ctx.attrs['saturate']}")
    if ctx.attrs["round_mode"] not in ROUND_MODES:
        raise ctx.fail(f"round_mode must be one of {', '.join(ROUND_MODES)}, got "
                       f"{ctx.attrs['round_mode']!r}")


def _target(ctx: InferCtx, code: int, what: str = "to") -> DType:
    try:
        return DType.from_onnx(code)
    except KeyError:
        raise ctx.fail(f"'{what}' names unsupported element type {code}") from None


def _cast_infer(ctx: InferCtx) -> list[TensorType]:
    x = ctx.input(0)
    if x is None:
        raise ctx.fail("input 0 is required")
    _check_cast_attrs(ctx)
    dst = _target(ctx, ctx.attrs["to"])
    for d, what in ((x.dtype, "input"), (dst, "target")):
        if d not in CASTABLE:
            raise ctx.fail(f"cannot cast {what} dtype {d}")
    return [TensorType(x.shape, dst)]


def _cast_ref(ctx: EvalCtx, ins: list[np.ndarray | None]) -> list[np.ndarray]:
    a = ctx.attrs
    dst = DType.from_onnx(a["to"])
    return [cast_array(ins[0], dst, saturate=bool(a["saturate"]), round_mode=a["round_mode"])]


CAST_ATTRS = {"saturate": Attr("int", 1), "round_mode": Attr("string", "up")}

register(OpDef("Cast", _cast_infer, _cast_ref, attrs={"to": Attr("int"), **CAST_ATTRS},
               kind=Kind.ELEMWISE, compute=_cast_compute))


def _castlike_infer(ctx: InferCtx) -> list[TensorType]:
    x, like = ctx.input(0), ctx.input(1)
    if x is None or like is None:
        raise ctx.fail("inputs input and target_type are required")
    _check_cast_attrs(ctx)
    for d, what in ((x.dtype, "input"), (like.dtype, "target")):
        if d not in CASTABLE:
            raise ctx.fail(f"cannot cast {what} dtype {d}")
    return [TensorType(x.shape, like.dtype)]


def _castlike_ref(ctx: EvalCtx, ins: list[np.ndarray | None]) -> list[np.ndarray]:
    a = ctx.attrs
    return [cast_array(ins[0], dtype_of(ins[1]), saturate=bool(a["saturate"]),
                       round_mode=a["round_mode"])]


register(OpDef("CastLike", _castlike_infer, _castlike_ref, attrs=dict(CAST_ATTRS),
               kind=Kind.ELEMWISE, inputs=(2, 2), compute=_cast_compute))


def _bitcast_infer(ctx: InferCtx) -> list[TensorType]:
    x = ctx.input(0)
    if x is None:
        raise ctx.fail("input 0 is required")
    dst = _target(ctx, ctx.attrs["to"])
    if D.string in (x.dtype, dst):
        raise ctx.fail("string tensors cannot be bitcast")
    if x.dtype.bits != dst.bits:
        raise ctx.fail(f"bit widths differ: {x.dtype} has {x.dtype.bits}, {dst} has {dst.bits}")
    return [TensorType(x.shape, dst)]


def bitcast_array(x: np.ndarray, dst: DType) -> np.ndarray:
    """Reinterpret x's bits as dst (same width). A bool is true when its byte is nonzero."""
    x = x.copy(order="C")
    if dst is D.bool:
        return x.view(np.uint8) != 0
    if dst.bits < 8:  # sub-byte types: one element per byte, in the low bits
        return (x.view(np.uint8) & np.uint8((1 << dst.bits) - 1)).view(dst.np)
    return x.view(dst.np)


def _bitcast_ref(ctx: EvalCtx, ins: list[np.ndarray | None]) -> list[np.ndarray]:
    return [bitcast_array(ins[0], DType.from_onnx(ctx.attrs["to"]))]


register(OpDef("BitCast", _bitcast_infer, _bitcast_ref, attrs={"to": Attr("int")},
               kind=Kind.ELEMWISE, compute=_bitcast_compute))
