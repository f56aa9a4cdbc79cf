"""Normalizations: BatchNormalization, LayerNormalization, GroupNormalization,
InstanceNormalization, LRN, LpNormalization, MeanVarianceNormalization, RMSNormalization.

Statistics are computed in float32 for float16/bfloat16 inputs (or in the `stash_type` where
the op has one); results are cast back to the declared output types.
"""

from __future__ import annotations

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import UNKNOWN, TensorType
from compiler.ops.base import (
    REQUIRED,
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
from compiler.ops.reduce import FLOATS, compute_dtype, need

STASH_TYPES = {DType.float16.onnx, DType.bfloat16.onnx, DType.float32.onnx, DType.float64.onnx}


def _x(ctx: InferCtx, name: str = "X", min_rank: int = 2) -> TensorType:
    x = need(ctx, 0, name)
    check_dtype(ctx, x, FLOATS, name)
    if x.rank is not None and x.rank < min_rank:
        raise ctx.fail(f"{name} must have rank >= {min_rank}, got {x}")
    return x


def _channel_param(ctx: InferCtx, i: int, name: str, x: TensorType, n=None,
                   dtypes=None) -> TensorType | None:
    """Check a 1-D per-channel parameter of length n (default: x's channel dim C)."""
    p = ctx.input(i)
    if p is None:
        return None
    if dtypes is None:
        if p.dtype != x.dtype:
            raise ctx.fail(f"{name} dtype {p.dtype} differs from input dtype {x.dtype}")
    else:
        check_dtype(ctx, p, dtypes, name)
    if p.rank is not None and p.rank != 1:
        raise ctx.fail(f"{name} must be 1-D, got {p}")
    if n is None and x.shape is not None:
        n = x.shape[1]
    if n is not None and p.shape is not None and dim_eq(p.shape[0], n) is False:
        raise ctx.fail(f"{name} {p} must have {n} elements for input {x}")
    return p


def _check_unidir(ctx: InferCtx, i: int, name: str, x: TensorType, dtype: bool = True) -> None:
    """Input i must be unidirectionally broadcastable to x (and share its dtype)."""
    p = ctx.input(i)
    if p is None:
        return
    if dtype and p.dtype != x.dtype:
        raise ctx.fail(f"{name} dtype {p.dtype} differs from X dtype {x.dtype}")
    if p.shape is None or x.shape is None:
        return
    ok = len(p.shape) <= len(x.shape) and all(
        d == 1 or dim_eq(d, e) is not False
        for d, e in zip(p.shape[::-1], x.shape[::-1], strict=False)
    )
    if not ok:
        raise ctx.fail(f"{name} {p} does not broadcast to X {x}")


def _stash(ctx: InferCtx) -> DType:
    st = ctx.attrs["stash_type"]
    if st not in STASH_TYPES:
        raise ctx.fail(f"stash_type {st} is not a floating-point type")
    return DType.from_onnx(st)


def _per_channel(p: np.ndarray, ndim: int) -> np.ndarray:
    return p.reshape((1, -1) + (1,) * (ndim - 2))


def _moments(x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    mean = np.mean(x, axis=axes, keepdims=True)
    d = x - mean
    return mean, np.mean(d * d, axis=axes, keepdims=True)


# ---------------------------------------------------------------------------------------
# BatchNormalization


def _bn_upgrade(ictx) -> None:
    """Opsets 7-13: `spatial` (7, 8) and training mode implied by the extra outputs."""
    if ictx.opset < 9 and ictx.attrs.pop("spatial", 1) == 0:
        raise ictx.fail("spatial=0 (per-activation statistics) is not supported")
    if ictx.opset < 14 and ictx.num_outputs > 1:
        if ictx.num_outputs > 3:
            raise ictx.fail("the saved_mean/saved_var outputs of training mode are not supported")
        ictx.attrs["training_mode"] = 1


def _bn_infer(ctx: InferCtx) -> list[TensorType]:
    x = _x(ctx)
    s = _channel_param(ctx, 1, "scale", x, dtypes=FLOATS)
    b = _channel_param(ctx, 2, "B", x, dtypes=FLOATS)
    m = _channel_param(ctx, 3, "input_mean", x, dtypes=FLOATS)
    v = _channel_param(ctx, 4, "input_var", x, dtypes=FLOATS)
    if None in (s, b, m, v):
        raise ctx.fail("inputs scale, B, input_mean and input_var are required")
    if s.dtype != b.dtype or m.dtype != v.dtype:
        raise ctx.fail("scale and B, and input_mean and input_var, must share a dtype")
    if ctx.num_outputs > 1 and not ctx.attrs["training_mode"]:
        raise ctx.fail("outputs running_mean and running_var need training_mode=1")
    c = x.shape[1] if x.shape is not None else UNKNOWN
    if not isinstance(c, int) and m.shape is not None and isinstance(m.shape[0], int):
        c = m.shape[0]
    return [TensorType(x.shape, x.dtype)] + [TensorType((c,), m.dtype)] * (ctx.num_outputs - 1)


def _bn_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, scale, b, mean, var = inputs[:5]
    cd = np.result_type(*(compute_dtype(a.dtype) for a in inputs[:5]))
    xc = x.astype(cd)
    eps = cd.type(ctx.attrs["epsilon"])
    if ctx.attrs["training_mode"]:
        axes = (0,) + tuple(range(2, x.ndim))
        bmean, bvar = _moments(xc, axes)
        bmean, bvar = bmean.reshape(-1), bvar.reshape(-1)
        mom = cd.type(ctx.attrs["momentum"])
        run_mean = mean.astype(cd) * mom + bmean * (cd.type(1) - mom)
        run_var = var.astype(cd) * mom + bvar * (cd.type(1) - mom)
        extra = [run_mean.astype(mean.dtype), run_var.astype(var.dtype)]
        mean, var = bmean, bvar
    else:
        extra = []

    def pc(p: np.ndarray) -> np.ndarray:
        return _per_channel(p.astype(cd), x.ndim)

    y = pc(scale) * (xc - pc(mean)) / np.sqrt(pc(var) + eps) + pc(b)
    return [y.astype(x.dtype)] + extra[:ctx.num_outputs - 1]


register(OpDef(
    name="BatchNormalization", infer=_bn_infer, ref=_bn_ref, kind=Kind.OPAQUE,
    inputs=(5, 5), outputs=(1, 3), upgrade=_bn_upgrade,
    attrs={"epsilon": Attr("float", 1e-5), "momentum": Attr("float", 0.9),
           "training_mode": Attr("int", 0)},
    doc="per-channel normalisation with given (or, in training mode, batch) statistics",
))


# ---------------------------------------------------------------------------------------
# LayerNormalization / RMSNormalization


def _ln_infer(ctx: InferCtx) -> list[TensorType]:
    x = _x(ctx, min_rank=1)
    rms = ctx.op == "RMSNormalization"
    _check_unidir(ctx, 1, "scale" if rms else "Scale", x, dtype=not rms)
    _check_unidir(ctx, 2, "B", x)
    stash = _stash(ctx)
    if rms:
        scale = need(ctx, 1, "scale")
        check_dtype(ctx, scale, FLOATS, "scale")
        if x.rank is not None:
            norm_axis(ctx, ctx.attrs["axis"], x.rank)
        return [TensorType(x.shape, scale.dtype)]
    stat_shape = None
    if x.rank is not None:
        ax = norm_axis(ctx, ctx.attrs["axis"], x.rank)
        stat_shape = x.shape[:ax] + (1,) * (x.rank - ax)
    stat = TensorType(stat_shape, stash)
    return [TensorType(x.shape, x.dtype), stat, stat][:max(ctx.num_outputs, 1)]


def _ln_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, scale = inputs[0], inputs[1]
    stash = DType.from_onnx(ctx.attrs["stash_type"]).np
    ax = ctx.attrs["axis"] % x.ndim
    axes = tuple(range(ax, x.ndim))
    xs = x.astype(stash)
    eps = stash.type(ctx.attrs["epsilon"])
    if ctx.op == "RMSNormalization":
        rms = np.sqrt(np.mean(xs * xs, axis=axes, keepdims=True) + eps)
        norm = (xs / rms).astype(x.dtype)
        if scale.dtype == x.dtype:
            return [norm * scale]
        cd = np.result_type(compute_dtype(x.dtype), compute_dtype(scale.dtype))
        return [(norm.astype(cd) * scale.astype(cd)).astype(scale.dtype)]
    mean, var = _moments(xs, axes)
    inv = stash.type(1) / np.sqrt(var + eps)
    y = ((xs - mean) * inv).astype(x.dtype) * scale
    if len(inputs) > 2 and inputs[2] is not None:
        y = y + inputs[2]
    return [y.astype(x.dtype), mean, inv][:max(ctx.num_outputs, 1)]


register(OpDef(
    name="LayerNormalization", infer=_ln_infer, ref=_ln_ref, kind=Kind.OPAQUE,
    inputs=(2, 3), outputs=(1, 3),
    attrs={"axis": Attr("int", -1), "epsilon": Attr("float", 1e-5),
           "stash_type": Attr("int", 1)},
    doc="normalise over axes [axis, rank), then Scale and B; Mean and InvStdDev outputs",
))

register(OpDef(
    name="RMSNormalization", infer=_ln_infer, ref=_ln_ref, kind=Kind.OPAQUE,
    inputs=(2, 2),
    attrs={"axis": Attr("int", -1), "epsilon": Attr("float", 1e-5),
           "stash_type": Attr("int", 1)},
    doc="X / sqrt(mean(X^2 over axes [axis, rank)) + epsilon) * scale",
))


# ---------------------------------------------------------------------------------------
# GroupNormalization / InstanceNormalization


def _gn_upgrade(ictx) -> None:
    if "scale_per_group" in ictx.attrs:
        raise ictx.fail("attribute 'scale_per_group' is internal to Anvil, not an ONNX attribute")
    if ictx.opset < 21:
        ictx.attrs["scale_per_group"] = 1  # opset 18: scale and bias have num_groups entries


def _gn_infer(ctx: InferCtx) -> list[TensorType]:
    x = _x(ctx)
    _stash(ctx)
    g = ctx.attrs["num_groups"]
    if g <= 0:
        raise ctx.fail(f"num_groups must be positive, got {g}")
    c = x.shape[1] if x.shape is not None else None
    if isinstance(c, int) and c % g:
        raise ctx.fail(f"{c} channels do not divide into {g} groups")
    n = g if ctx.attrs["scale_per_group"] else c
    if _channel_param(ctx, 1, "scale", x, n) is None or ctx.input(2) is None:
        raise ctx.fail("inputs scale and bias are required")
    _channel_param(ctx, 2, "bias", x, n)
    return [TensorType(x.shape, x.dtype)]


def _gn_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, scale, bias = inputs
    g = ctx.attrs["num_groups"]
    stash = DType.from_onnx(ctx.attrs["stash_type"]).np
    xs = x.astype(stash).reshape(x.shape[0], g, -1)
    mean, var = _moments(xs, (2,))
    norm = ((xs - mean) / np.sqrt(var + stash.type(ctx.attrs["epsilon"]))).reshape(x.shape)
    if ctx.attrs["scale_per_group"]:
        per = x.shape[1] // g
        scale, bias = np.repeat(scale, per), np.repeat(bias, per)
    y = norm.astype(x.dtype) * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)
    return [y.astype(x.dtype)]


register(OpDef(
    name="GroupNormalization", infer=_gn_infer, ref=_gn_ref, kind=Kind.OPAQUE,
    inputs=(3, 3), upgrade=_gn_upgrade,
    attrs={"epsilon": Attr("float", 1e-5), "num_groups": Attr("int", REQUIRED),
           "stash_type": Attr("int", 1), "scale_per_group": Attr("int", 0)},
    doc="normalise per instance per group of channels, then per-channel scale and bias",
))


def _in_infer(ctx: InferCtx) -> list[TensorType]:
    x = _x(ctx, "input")
    if _channel_param(ctx, 1, "scale", x) is None or _channel_param(ctx, 2, "B", x) is None:
        raise ctx.fail("inputs scale and B are required")
    return [TensorType(x.shape, x.dtype)]


def _in_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, scale, b = inputs
    cd = compute_dtype(x.dtype)
    xc = x.astype(cd)
    mean, var = _moments(xc, tuple(range(2, x.ndim)))
    eps = cd.type(ctx.attrs["epsilon"])
    y = _per_channel(scale.astype(cd), x.ndim) * (xc - mean) / np.sqrt(var + eps)
    return [(y + _per_channel(b.astype(cd), x.ndim)).astype(x.dtype)]


register(OpDef(
    name="InstanceNormalization", infer=_in_infer, ref=_in_ref, kind=Kind.OPAQUE,
    inputs=(3, 3), attrs={"epsilon": Attr("float", 1e-5)},
    doc="normalise per instance per channel over the spatial axes, then scale and B",
))


# ---------------------------------------------------------------------------------------
# LRN, LpNormalization, MeanVarianceNormalization


def _lrn_infer(ctx: InferCtx) -> list[TensorType]:
    x = _x(ctx)
    if ctx.attrs["size"] <= 0:
        raise ctx.fail(f"size must be positive, got {ctx.attrs['size']}")
    return [TensorType(x.shape, x.dtype)]


def _lrn_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0]
    a = ctx.attrs
    cd = compute_dtype(x.dtype)
    xc = x.astype(cd)
    size = a["size"]
    lo, hi = (size - 1) // 2, size // 2  # floor((size-1)/2), ceil((size-1)/2)
    sq = np.pad(xc * xc, [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
    c = x.shape[1]
    total = sum(sq[:, k:k + c] for k in range(size))
    den = (cd.type(a["bias"]) + cd.type(a["alpha"]) / cd.type(size) * total) ** cd.type(a["beta"])
    return [(xc / den).astype(x.dtype)]


register(OpDef(
    name="LRN", infer=_lrn_infer, ref=_lrn_ref, kind=Kind.OPAQUE,
    attrs={"alpha": Attr("float", 1e-4), "beta": Attr("float", 0.75),
           "bias": Attr("float", 1.0), "size": Attr("int", REQUIRED)},
    doc="local response normalisation across channels",
))


def _lp_infer(ctx: InferCtx) -> list[TensorType]:
    x = _x(ctx, "input", min_rank=1)
    if ctx.attrs["p"] not in (1, 2):
        raise ctx.fail(f"p must be 1 or 2, got {ctx.attrs['p']}")
    if x.rank is not None:
        norm_axis(ctx, ctx.attrs["axis"], x.rank)
    return [TensorType(x.shape, x.dtype)]


def _lp_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0]
    xc = x.astype(compute_dtype(x.dtype))
    ax = ctx.attrs["axis"] % x.ndim
    if ctx.attrs["p"] == 1:
        norm = np.sum(np.abs(xc), axis=ax, keepdims=True)
    else:
        norm = np.sqrt(np.sum(xc * xc, axis=ax, keepdims=True))
    y = np.where(norm == 0, xc.dtype.type(0), xc / np.where(norm == 0, 1, norm))
    return [y.astype(x.dtype)]


register(OpDef(
    name="LpNormalization", infer=_lp_infer, ref=_lp_ref, kind=Kind.OPAQUE,
    attrs={"axis": Attr("int", -1), "p": Attr("int", 2)},
    doc="x / ||x||_p along axis (0 where the norm is 0)",
))


def _mvn_infer(ctx: InferCtx) -> list[TensorType]:
    x = _x(ctx, min_rank=0)
    axes = ctx.attrs["axes"]
    if x.rank is not None:
        norm = [norm_axis(ctx, a, x.rank) for a in axes]
        if len(set(norm)) != len(norm):
            raise ctx.fail(f"axes {list(axes)} repeat an axis")
    return [TensorType(x.shape, x.dtype)]


def _mvn_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0]
    cd = compute_dtype(x.dtype)
    xc = x.astype(cd)
    axes = tuple(a % x.ndim for a in ctx.attrs["axes"])
    mean, var = _moments(xc, axes)
    return [((xc - mean) / (np.sqrt(var) + cd.type(1e-9))).astype(x.dtype)]


register(OpDef(
    name="MeanVarianceNormalization", infer=_mvn_infer, ref=_mvn_ref, kind=Kind.OPAQUE,
    attrs={"axes": Attr("ints", (0, 2, 3))},
    doc="(X - E[X]) / (sqrt(E[(X - E[X])^2]) + 1e-9) over `axes`",
))
