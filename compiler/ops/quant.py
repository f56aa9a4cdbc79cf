"""Quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearConv,
QLinearMatMul.

Scale and zero point are per-tensor (one element), per-axis (1-D along `axis`) or blocked
(the input's shape with `axis` divided into blocks of `block_size`). Quantizing divides in
the scale's precision (or `precision`), rounds half to even, adds the zero point and
saturates to the integer range; float8/float4 targets round to nearest even and clamp to the
largest finite value when `saturate` is set (float4 always saturates). NaN quantizes to the
zero point for integer targets. QLinear ops accumulate exactly and requantize in float64
with the multiplier x_scale * w_scale / y_scale computed in the scales' own precision.

Computes mirror the references step by step (same precisions, round half to even, NaN -> 0,
saturation). QLinearConv/QLinearMatMul compute integer outputs only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import ml_dtypes
import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import Dim, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr, is_float
from compiler.lower import te, topi
from compiler.ops.base import (
    Attr,
    EvalCtx,
    InferCtx,
    Kind,
    OpDef,
    check_dtype,
    dim_eq,
    norm_axis,
    register,
)
from compiler.ops.matmul import (
    check_col_param,
    check_row_param,
    col_at,
    full_shape,
    int_contract,
    int_matmul,
    matmul_shape,
    operand_index,
    output,
    row_at,
    row_param,
)
from compiler.ops.window import (
    CONV_ATTRS,
    INT8S,
    add_bias,
    channel_of,
    check_bias,
    check_zero_point,
    conv_shape,
    elem0,
    int_conv,
    int_conv_lower,
    need,
    per_channel,
)

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

D = DType
INT_RANGES = {
    D.uint8: (0, 255), D.int8: (-128, 127), D.uint16: (0, 65535), D.int16: (-32768, 32767),
    D.uint4: (0, 15), D.int4: (-8, 7), D.uint2: (0, 3), D.int2: (-2, 1),
}
FLOAT8 = (D.float8e4m3fn, D.float8e4m3fnuz, D.float8e5m2, D.float8e5m2fnuz)
QUANT_TYPES = tuple(INT_RANGES) + FLOAT8 + (D.float4e2m1,)
SCALE_TYPES = (D.float32, D.float16, D.bfloat16)


# ---------------------------------------------------------------------------------------
# Granularity of scale / zero point


def check_granularity(ctx: InferCtx, x: TensorType, i_scale: int, i_zp: int) -> None:
    """Scale per-tensor, per-axis or blocked, and the zero point shaped like the scale."""
    scale, zp = need(ctx, i_scale, "scale"), ctx.input(i_zp)
    if zp is not None and scale.shape is not None and zp.shape is not None:
        same = len(zp.shape) == len(scale.shape) and all(
            dim_eq(a, b) is not False for a, b in zip(zp.shape, scale.shape, strict=True))
        if not same and not (_is_single(zp.shape) and _is_single(scale.shape)):
            raise ctx.fail(f"zero point shape {list(zp.shape)} != scale shape "
                           f"{list(scale.shape)}")
    block = ctx.attrs.get("block_size", 0)
    if block < 0:
        raise ctx.fail(f"block_size {block} must be >= 0")
    s, xs = scale.shape, x.shape
    if s is None or _is_single(s) or xs is None:
        return
    axis = norm_axis(ctx, ctx.attrs["axis"], len(xs))
    if not block:
        if len(s) != 1:
            raise ctx.fail(f"scale shape {list(s)} must be a scalar or 1-D unless block_size "
                           "is set")
        if dim_eq(s[0], xs[axis]) is False:
            raise ctx.fail(f"per-axis scale has {s[0]} values, input axis {axis} has "
                           f"{xs[axis]}")
        return
    if len(s) != len(xs):
        raise ctx.fail(f"blocked scale shape {list(s)} must have the input's rank {len(xs)}")
    for i, (a, b) in enumerate(zip(s, xs, strict=True)):
        want: Dim = -(-b // block) if i == axis and isinstance(b, int) else b
        if i == axis and not isinstance(b, int):
            continue
        if dim_eq(a, want) is False:
            raise ctx.fail(f"blocked scale shape {list(s)} does not match input "
                           f"{list(xs)} with block_size {block} on axis {axis}")


def _is_single(shape: tuple[Dim, ...]) -> bool:
    return len(shape) == 0 or (len(shape) == 1 and shape[0] == 1)


def expand(v: np.ndarray, shape: tuple[int, ...], axis: int, block: int) -> np.ndarray:
    """Scale / zero point made broadcastable against an input of `shape`."""
    if v.size == 1 and v.ndim <= 1:
        return v.reshape(())
    axis = axis % len(shape)
    if not block:
        dims = [1] * len(shape)
        dims[axis] = v.size
        return v.reshape(dims)
    return np.repeat(v, block, axis=axis).take(range(shape[axis]), axis=axis)


def param_at(t: te.Tensor, rank: int, axis: int, block: int, i: Sequence[Expr]) -> Expr:
    """The loop-IR twin of `expand`: a scale / zero point at the input's index `i`."""
    if t.ndim <= 1 and (t.ndim == 0 or t.shape[0] == 1):
        return elem0(t)
    axis = axis % rank
    if not block:
        return t[(i[axis],)]
    return t[tuple(B.floordiv(e, te.idx(block)) if k == axis else e for k, e in enumerate(i))]


def saturate(v: Expr, out: DType) -> Expr:
    """The loop-IR twin of `to_quant` for integer targets: NaN -> 0, clamp, cast (v is
    already integral)."""
    lo, hi = INT_RANGES[out]
    v = B.select(B.call("isnan", v), topi.scalar(0, v.dtype), v)
    v = B.max_(B.min_(v, topi.scalar(hi, v.dtype)), topi.scalar(lo, v.dtype))
    return B.cast(out, v)


def quant_out(ctx: LowerCtx, dtype: DType) -> None:
    if dtype not in INT_RANGES:
        raise ctx.fail(f"output dtype {dtype} is not supported by native targets")


# ---------------------------------------------------------------------------------------
# QuantizeLinear / DequantizeLinear


def dtype_attr(ctx: InferCtx, name: str, allowed: tuple[DType, ...]) -> DType | None:
    code = ctx.attrs.get(name, 0)
    if not code:
        return None
    try:
        dt = DType.from_onnx(code)
    except KeyError:
        raise ctx.fail(f"{name} {code} is not a known element type") from None
    if dt not in allowed:
        raise ctx.fail(f"{name} {dt} is not supported here")
    return dt


def quantize_infer(ctx: InferCtx) -> list[TensorType]:
    x, scale = need(ctx, 0, "x"), need(ctx, 1, "y_scale")
    check_dtype(ctx, x, SCALE_TYPES + (D.int32,), "x")
    check_dtype(ctx, scale, SCALE_TYPES + (D.int32, D.float8e8m0), "y_scale")
    zp = ctx.input(2)
    out = dtype_attr(ctx, "output_dtype", QUANT_TYPES)
    if zp is not None:
        check_dtype(ctx, zp, QUANT_TYPES, "y_zero_point")
        if out is not None and out != zp.dtype:
            raise ctx.fail(f"output_dtype {out} != y_zero_point dtype {zp.dtype}")
        out = zp.dtype
    dtype_attr(ctx, "precision", SCALE_TYPES)
    if ctx.attrs["saturate"] not in (0, 1):
        raise ctx.fail(f"saturate {ctx.attrs['saturate']} must be 0 or 1")
    check_granularity(ctx, x, 1, 2)
    return [TensorType(x.shape, out or D.uint8)]


def to_quant(v: np.ndarray, out: DType, saturate: bool) -> np.ndarray:
    """Values already divided by the scale (zero point added) -> the quantized type."""
    if out in INT_RANGES:
        lo, hi = INT_RANGES[out]
        v = np.clip(np.where(np.isnan(v), 0, v), lo, hi)
        return v.astype(np.int64).astype(out.np)
    if saturate or out is D.float4e2m1:
        big = float(ml_dtypes.finfo(out.np).max)
        v = np.clip(v, -big, big)
    return v.astype(out.np)


def quantize_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, scale, zp = (list(inputs) + [None])[:3]
    out = ctx.out_types[0].dtype
    axis, block = ctx.attrs["axis"], ctx.attrs["block_size"]
    if ctx.attrs["precision"]:
        prec = DType.from_onnx(ctx.attrs["precision"]).np
    elif scale.dtype in (np.float32, np.float16, np.float64) or scale.dtype == D.bfloat16.np:
        prec = scale.dtype
    else:
        prec = np.dtype(np.float32 if scale.dtype != np.int32 else np.float64)
    q = x.astype(prec) / expand(scale, x.shape, axis, block).astype(prec)
    if out in INT_RANGES:
        v = np.rint(q.astype(np.float64))
    else:
        v = q.astype(np.float32 if prec != np.float64 else np.float64)
    if zp is not None:
        v = v + expand(zp, x.shape, axis, block).astype(v.dtype)
    return [to_quant(v, out, bool(ctx.attrs["saturate"])).reshape(x.shape)]


def dequantize_infer(ctx: InferCtx) -> list[TensorType]:
    x, scale = need(ctx, 0, "x"), need(ctx, 1, "x_scale")
    check_dtype(ctx, x, QUANT_TYPES + (D.int32,), "x")
    check_dtype(ctx, scale, SCALE_TYPES + (D.float8e8m0,), "x_scale")
    zp = ctx.input(2)
    if zp is not None and zp.dtype != x.dtype:
        raise ctx.fail(f"x_zero_point dtype {zp.dtype} != x dtype {x.dtype}")
    out = dtype_attr(ctx, "output_dtype", SCALE_TYPES)
    if out is None:
        if scale.dtype not in SCALE_TYPES:
            raise ctx.fail(f"x_scale dtype {scale.dtype} needs output_dtype")
        out = scale.dtype
    check_granularity(ctx, x, 1, 2)
    return [TensorType(x.shape, out)]


def dequantize_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, scale, zp = (list(inputs) + [None])[:3]
    out = ctx.out_types[0].dtype.np
    axis, block = ctx.attrs["axis"], ctx.attrs["block_size"]
    v = x.astype(np.float64)
    if zp is not None:
        v = v - expand(zp, x.shape, axis, block).astype(np.float64)
    y = v.astype(out) * expand(scale, x.shape, axis, block).astype(out)
    return [y.astype(out).reshape(x.shape)]


def quantize_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x, scale, zp = (list(ins) + [None])[:3]
    out = ctx.out_types[0].dtype
    if out not in QUANT_TYPES:
        raise ctx.fail(f"output dtype {out} is not supported by native targets")
    axis, block = ctx.attrs["axis"], ctx.attrs["block_size"]
    if ctx.attrs["precision"]:
        prec = DType.from_onnx(ctx.attrs["precision"])
    elif is_float(scale.dtype):
        prec = scale.dtype
    else:  # float8e8m0 scales divide in float32, int32 ones in float64
        prec = DType.float64 if scale.dtype is D.int32 else DType.float32
    # Integer targets round in float64; float8/float4 ones convert from float32 (float64
    # when the precision is), saturating like `to_quant`.
    wide = DType.float64 if out in INT_RANGES or prec is DType.float64 else DType.float32
    big = None if out in INT_RANGES or not (ctx.attrs["saturate"] or out is D.float4e2m1) \
        else float(ml_dtypes.finfo(out.np).max)

    def body(*i: Expr) -> Expr:
        q = B.cast(prec, x[i]) / B.cast(prec, param_at(scale, x.ndim, axis, block, i))
        v = B.cast(wide, q)
        if out in INT_RANGES:
            v = B.call("round", v)
        if zp is not None:
            v = v + B.cast(wide, param_at(zp, x.ndim, axis, block, i))
        if out in INT_RANGES:
            return saturate(v, out)
        if big is not None:
            v = B.max_(B.min_(v, big), -big)  # NaN stays NaN
        return B.cast(out, v)

    return [te.compute(ctx.op, x.shape, body, out)]


def dequantize_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x, scale, zp = (list(ins) + [None])[:3]
    out = ctx.out_types[0].dtype
    axis, block = ctx.attrs["axis"], ctx.attrs["block_size"]
    f64 = DType.float64

    def body(*i: Expr) -> Expr:
        v = B.cast(f64, x[i])
        if zp is not None:
            v = v - B.cast(f64, param_at(zp, x.ndim, axis, block, i))
        return B.cast(out, v) * B.cast(out, param_at(scale, x.ndim, axis, block, i))

    return [te.compute(ctx.op, x.shape, body, out)]


register(OpDef(
    "QuantizeLinear", quantize_infer, quantize_ref, inputs=(2, 3), kind=Kind.BROADCAST,
    compute=quantize_compute,
    attrs={"axis": Attr("int", 1), "block_size": Attr("int", 0),
           "output_dtype": Attr("int", 0), "precision": Attr("int", 0),
           "saturate": Attr("int", 1)},
    doc="y = saturate(round(x / y_scale) + y_zero_point)",
))
register(OpDef(
    "DequantizeLinear", dequantize_infer, dequantize_ref, inputs=(2, 3), kind=Kind.BROADCAST,
    compute=dequantize_compute,
    attrs={"axis": Attr("int", 1), "block_size": Attr("int", 0),
           "output_dtype": Attr("int", 0)},
    doc="y = (x - x_zero_point) * x_scale",
))


# ---------------------------------------------------------------------------------------
# DynamicQuantizeLinear


def dynamic_infer(ctx: InferCtx) -> list[TensorType]:
    x = need(ctx, 0, "x")
    check_dtype(ctx, x, (D.float32,), "x")
    return [TensorType(x.shape, D.uint8), TensorType((), D.float32), TensorType((), D.uint8)]


def dynamic_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0].astype(np.float32)
    f = np.float32
    hi = f(max(0.0, float(np.max(x)))) if x.size else f(0)
    lo = f(min(0.0, float(np.min(x)))) if x.size else f(0)
    scale = f(1.0) if hi == lo else f((hi - lo) / f(255))
    zp = np.rint(np.clip(f(0) - lo / scale, 0, 255))
    y = to_quant(np.rint(x / scale).astype(np.float64) + zp, D.uint8, True)
    return [y, np.array(scale, dtype=np.float32), np.array(zp, dtype=np.uint8)]


def dynamic_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """Two reductions (max, min) to scalars, the scale and zero point from them (float32, as
    the reference's Python max/min with 0 and NaN), then the quantized tensor."""
    x = ins[0]
    f32, f64 = DType.float32, DType.float64
    zero = topi.scalar(0, f32)

    def over_all(kind: str):
        def body() -> te.Reduction:
            rs = [te.rvar(f"r{k}", d) for k, d in enumerate(x.shape)]
            return te.reduce(kind, x[tuple(r.var for r in rs)], rs)

        return body

    hi_r = topi.stage(f"{ctx.op}_max", (), over_all("max"), f32)
    lo_r = topi.stage(f"{ctx.op}_min", (), over_all("min"), f32)

    def scale_body() -> Expr:
        hi = B.select(hi_r[()] > zero, hi_r[()], zero)
        lo = B.select(lo_r[()] < zero, lo_r[()], zero)
        return B.select(B.eq(hi, lo), topi.scalar(1, f32), (hi - lo) / topi.scalar(255, f32))

    scale = topi.stage(f"{ctx.op}_scale", (), scale_body, f32)

    def zp_float() -> Expr:
        lo = B.select(lo_r[()] < zero, lo_r[()], zero)
        v = zero - lo / scale[()]
        v = B.select(B.call("isnan", v), v, B.max_(B.min_(v, topi.scalar(255, f32)), zero))
        return B.call("round", v)

    zpf = topi.stage(f"{ctx.op}_zpf", (), zp_float, f32)

    def y_body(*i: Expr) -> Expr:
        v = B.cast(f64, B.call("round", x[i] / scale[()])) + B.cast(f64, zpf[()])
        return saturate(v, DType.uint8)

    y = topi.stage(ctx.op, x.shape, y_body, DType.uint8)
    zp = topi.stage(f"{ctx.op}_zp", (), lambda: saturate(zpf[()], DType.uint8), DType.uint8)
    return [y, scale, zp]


register(OpDef("DynamicQuantizeLinear", dynamic_infer, dynamic_ref, outputs=(3, 3),
               kind=Kind.OPAQUE, compute=dynamic_compute,
               doc="uint8 quantization with scale/zero point from min/max"))


# ---------------------------------------------------------------------------------------
# QLinearConv / QLinearMatMul


def check_scale(ctx: InferCtx, i: int, what: str, allowed: tuple[DType, ...]) -> TensorType:
    t = need(ctx, i, what)
    check_dtype(ctx, t, allowed, what)
    return t


def requantize(acc: np.ndarray, mult: np.ndarray, yzp: np.ndarray, out: DType) -> np.ndarray:
    """acc (exact, float64) * multiplier + y_zero_point, rounded and saturated to `out`."""
    v = acc * mult.astype(np.float64)
    if out in INT_RANGES:
        v = np.rint(v)
    return to_quant(v + yzp.astype(np.float64), out, True)


def qconv_infer(ctx: InferCtx) -> list[TensorType]:
    x, w = need(ctx, 0, "x"), need(ctx, 3, "w")
    check_dtype(ctx, x, INT8S, "x")
    check_dtype(ctx, w, INT8S, "w")
    yzp = need(ctx, 7, "y_zero_point")
    check_dtype(ctx, yzp, INT8S, "y_zero_point")
    shape = conv_shape(ctx, x, w)
    m = shape[1] if shape is not None else "?"
    for i, what in ((1, "x_scale"), (4, "w_scale"), (6, "y_scale")):
        check_scale(ctx, i, what, (D.float32,))
    check_zero_point(ctx, 2, x, None, "x_zero_point")
    check_zero_point(ctx, 5, w, m, "w_zero_point")
    check_zero_point(ctx, 7, yzp, None, "y_zero_point")
    ws = ctx.input(4)
    if ws.shape is not None and not _is_single(ws.shape):
        if len(ws.shape) != 1 or dim_eq(ws.shape[0], m) is False:
            raise ctx.fail(f"w_scale shape {list(ws.shape)} must be a scalar or [{m}]")
    for i in (1, 6):
        t = ctx.input(i)
        if t.shape is not None and not _is_single(t.shape):
            raise ctx.fail(f"input {i} (scale) must be a scalar, got {list(t.shape)}")
    check_bias(ctx, 8, m, D.int32)
    return [TensorType(shape, yzp.dtype)]


def qconv_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, xs, xzp, w, ws, wzp, ys, yzp, b = (list(inputs) + [None])[:9]
    acc = add_bias(int_conv(ctx.attrs, x, w, xzp, wzp), b)
    ws = per_channel(ws, acc.ndim, axis=1)
    mult = xs.reshape(()) * ws / ys.reshape(())
    return [requantize(acc, mult, yzp.reshape(()), ctx.out_types[0].dtype)]


def requantize_expr(acc: Expr, mult: Expr, yzp: Expr, out: DType) -> Expr:
    """The loop-IR twin of `requantize` (acc an exact integer, mult in the scales' dtype)."""
    f64 = DType.float64
    v = B.call("round", B.cast(f64, acc) * B.cast(f64, mult))
    return saturate(v + B.cast(f64, yzp), out)


def qconv_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x, xs, xzp, w, ws, wzp, ys, yzp, b = (list(ins) + [None])[:9]
    out_t = ctx.out_types[0]
    quant_out(ctx, out_t.dtype)
    acc = int_conv_lower(ctx.op, ctx.attrs, x, w, xzp, wzp)

    def body(*i: Expr) -> Expr:
        v: Expr = B.cast(DType.float64, acc[i])
        if b is not None:
            v = v + B.cast(DType.float64, b[(i[1],)])
        mult = elem0(xs) * channel_of(ws, i[1]) / elem0(ys)
        return requantize_expr(v, mult, elem0(yzp), out_t.dtype)

    return [topi.stage(f"{ctx.op}_q", out_t.shape, body, out_t.dtype)]


register(OpDef("QLinearConv", qconv_infer, qconv_ref, attrs=CONV_ATTRS, inputs=(8, 9),
               kind=Kind.COMPLEX_OUT_FUSABLE, compute=qconv_compute,
               doc="quantized convolution, requantized output"))


QMM_TYPES = INT8S + FLOAT8


def qmatmul_infer(ctx: InferCtx) -> list[TensorType]:
    a, b, yzp = need(ctx, 0, "a"), need(ctx, 3, "b"), need(ctx, 7, "y_zero_point")
    for t, what in ((a, "a"), (b, "b"), (yzp, "y_zero_point")):
        check_dtype(ctx, t, QMM_TYPES, what)
    scales = [check_scale(ctx, i, w, SCALE_TYPES) for i, w in
              ((1, "a_scale"), (4, "b_scale"), (6, "y_scale"))]
    if len({s.dtype for s in scales}) > 1:
        raise ctx.fail(f"scales differ in dtype: {', '.join(str(s.dtype) for s in scales)}")
    for i, like, what in ((2, a, "a_zero_point"), (5, b, "b_zero_point")):
        if need(ctx, i, what).dtype != like.dtype:
            raise ctx.fail(f"{what} dtype {ctx.input(i).dtype} != {like.dtype}")
    shape = matmul_shape(ctx, a.shape, b.shape)
    check_row_param(ctx, 1, a, "a_scale")
    check_row_param(ctx, 2, a, "a_zero_point")
    check_col_param(ctx, 4, b, "b_scale")
    check_col_param(ctx, 5, b, "b_zero_point")
    for i in (6, 7):
        t = ctx.input(i)
        if t.shape is not None and not _is_single(t.shape):
            raise ctx.fail(f"input {i} must be a scalar, got shape {list(t.shape)}")
    return [TensorType(shape, yzp.dtype)]


def qmatmul_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    a, as_, azp, b, bs, bzp, ys, yzp = inputs
    acc = int_matmul(a, b, azp, bzp)
    mult = row_param(as_, a.ndim) * bs.reshape(bs.shape if bs.size > 1 else ()) / ys.reshape(())
    if a.ndim == 1 and mult.ndim >= 2:  # the result drops a's row axis ...
        mult = np.squeeze(mult, axis=-2)
    if b.ndim == 1 and mult.ndim >= 1:  # ... and b's column axis
        mult = mult[..., 0]
    return [requantize(acc, mult, yzp.reshape(()), ctx.out_types[0].dtype)]


def qmatmul_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    a, as_, azp, b, bs, bzp, ys, yzp = ins
    out_t = ctx.out_types[0]
    quant_out(ctx, out_t.dtype)
    acc = int_contract(ctx.op, a, b, azp, bzp)
    full = full_shape(a, b)

    def fn(v: Expr, fi: tuple[Expr, ...]) -> Expr:
        ai = operand_index(a, True, full, fi, te.idx(0))
        bi = operand_index(b, False, full, fi, te.idx(0))
        mult = row_at(as_, ai) * col_at(bs, bi) / elem0(ys)
        return requantize_expr(v, mult, elem0(yzp), out_t.dtype)

    return [output(ctx.op, a, b, acc, out_t.shape, out_t.dtype, fn)]


register(OpDef("QLinearMatMul", qmatmul_infer, qmatmul_ref, inputs=(8, 8),
               kind=Kind.COMPLEX_OUT_FUSABLE, compute=qmatmul_compute,
               doc="quantized matmul, requantized output"))
