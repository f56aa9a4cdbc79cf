"""Normalizations: BatchNormalization, LayerNormalization, GroupNormalization,
InstanceNormalization, LRN, LpNormalization, MeanVarianceNormalization, RMSNormalization.

Statistics are computed in float32 for float16/bfloat16 inputs (or in the `stash_type` where
the op has one); results are cast back to the declared output types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import UNKNOWN, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
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
from compiler.ops.common import (
    FLOATS,
    compute_dtype,
    const,
    keep_index,
    need,
    promote,
    reduce_over,
    to,
    work_dtype,
)

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

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


def moments(name: str, x: te.Tensor, axes: Sequence[int], dtype: DType,
            keepdims: bool = True) -> tuple[te.Tensor, te.Tensor]:
    """The loop-IR twin of `_moments`: mean and (biased) variance of x (read as `dtype`)
    over `axes`, each a sum divided by the count, as numpy's mean is."""
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    cnt = const(n, dtype)

    def stat(k: tuple[Expr, ...], src: tuple[Expr, ...]) -> tuple[Expr, ...]:
        return k if keepdims else tuple(e for a, e in enumerate(src) if a not in axes)

    total = reduce_over(f"{name}_sum", x.shape, axes, keepdims, "sum",
                        lambda s, k: to(dtype, x[s]))
    mean = te.compute(f"{name}_mean", total.shape, lambda *i: total[i] / cnt, dtype)

    def dev2(s: tuple[Expr, ...], k: tuple[Expr, ...]) -> Expr:
        return topi.let(to(dtype, x[s]) - mean[stat(k, s)], lambda d: d * d)

    sq = reduce_over(f"{name}_sq", x.shape, axes, keepdims, "sum", dev2)
    var = te.compute(f"{name}_var", sq.shape, lambda *i: sq[i] / cnt, dtype)
    return mean, var


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


def _bn_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x, scale, b, mean, var = ins[:5]
    cd = promote(*(t.dtype for t in ins[:5]))
    eps = const(ctx.attrs["epsilon"], cd)
    outs: list[te.Tensor] = []
    if ctx.attrs["training_mode"]:
        axes = (0,) + tuple(range(2, x.ndim))
        bmean, bvar = moments("bn", x, axes, cd, keepdims=False)
        mom = cd.np.type(ctx.attrs["momentum"])
        rest = cd.np.type(1) - mom
        for given, batch in ((mean, bmean), (var, bvar))[:len(ctx.out_types) - 1]:
            outs.append(te.compute("bn_running", given.shape, lambda c, g=given, t=batch: to(
                g.dtype, to(cd, g[c]) * const(mom, cd) + t[c] * const(rest, cd)), given.dtype))
        mean, var = bmean, bvar

    def body(*i: Expr) -> Expr:
        c = (i[1],)
        y = to(cd, scale[c]) * (to(cd, x[i]) - to(cd, mean[c])) / B.call(
            "sqrt", to(cd, var[c]) + eps) + to(cd, b[c])
        return to(x.dtype, y)

    return [te.compute("BatchNormalization", x.shape, body, x.dtype)] + outs


register(OpDef(
    name="BatchNormalization", infer=_bn_infer, ref=_bn_ref, kind=Kind.BROADCAST,
    compute=_bn_compute,
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


def _ln_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x, scale = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    stash = DType.from_onnx(ctx.attrs["stash_type"])
    ax = ctx.attrs["axis"] % x.ndim
    axes = tuple(range(ax, x.ndim))
    eps = const(ctx.attrs["epsilon"], stash)
    shape = x.shape
    if ctx.op == "RMSNormalization":
        n = int(np.prod(shape[ax:], dtype=np.int64))
        ms = reduce_over("rms_sq", shape, axes, True, "sum",
                         lambda s, k: topi.let(to(stash, x[s]), lambda v: v * v))
        sdt = scale.dtype

        def rms_body(*i: Expr) -> Expr:
            rms = B.call("sqrt", ms[keep_index(i, axes)] / const(n, stash) + eps)
            norm = to(x.dtype, to(stash, x[i]) / rms)
            sc = topi.load_bcast(scale, shape, i)
            if sdt == x.dtype:
                return norm * sc
            cd = promote(x.dtype, sdt)
            return to(sdt, to(cd, norm) * to(cd, sc))

        return [te.compute("RMSNormalization", shape, rms_body, sdt)]
    mean, var = moments("ln", x, axes, stash)
    inv = te.compute("ln_inv", mean.shape, lambda *i: const(1.0, stash) / B.call(
        "sqrt", var[i] + eps), stash)

    def body(*i: Expr) -> Expr:
        k = keep_index(i, axes)
        y = to(x.dtype, (to(stash, x[i]) - mean[k]) * inv[k]) * topi.load_bcast(scale, shape, i)
        if bias is not None:
            y = y + topi.load_bcast(bias, shape, i)
        return y

    y = te.compute("LayerNormalization", shape, body, x.dtype)
    return [y, mean, inv][:max(len(ctx.out_types), 1)]


register(OpDef(
    name="LayerNormalization", infer=_ln_infer, ref=_ln_ref, kind=Kind.OPAQUE,
    compute=_ln_compute,
    inputs=(2, 3), outputs=(1, 3),
    attrs={"axis": Attr("int", -1), "epsilon": Attr("float", 1e-5),
           "stash_type": Attr("int", 1)},
    doc="normalise over axes [axis, rank), then Scale and B; Mean and InvStdDev outputs",
))

register(OpDef(
    name="RMSNormalization", infer=_ln_infer, ref=_ln_ref, kind=Kind.OPAQUE,
    compute=_ln_compute,
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


def _gn_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x, scale, bias = ins
    g = ctx.attrs["num_groups"]
    stash = DType.from_onnx(ctx.attrs["stash_type"])
    n, c = x.shape[0], x.shape[1]
    per = c // g
    rest = int(np.prod(x.shape[2:], dtype=np.int64))
    # x seen as (N, g, per * spatial): the reference's reshape
    xg = topi.reshape("gn_x", x, (n, g, per * rest))
    mean, var = moments("gn", xg, (2,), stash)
    eps = const(ctx.attrs["epsilon"], stash)

    def body(*i: Expr) -> Expr:
        k = (i[0], B.floordiv(i[1], te.idx(per)), te.idx(0))
        norm = (to(stash, x[i]) - mean[k]) / B.call("sqrt", var[k] + eps)
        p = (k[1],) if ctx.attrs["scale_per_group"] else (i[1],)
        return to(x.dtype, norm) * scale[p] + bias[p]

    return [te.compute("GroupNormalization", x.shape, body, x.dtype)]


register(OpDef(
    name="GroupNormalization", infer=_gn_infer, ref=_gn_ref, kind=Kind.OPAQUE,
    compute=_gn_compute,
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


def _in_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x, scale, b = ins
    cd = work_dtype(x.dtype)
    axes = tuple(range(2, x.ndim))
    mean, var = moments("in", x, axes, cd)
    eps = const(ctx.attrs["epsilon"], cd)

    def body(*i: Expr) -> Expr:
        k = keep_index(i, axes)
        y = to(cd, scale[(i[1],)]) * (to(cd, x[i]) - mean[k]) / B.call("sqrt", var[k] + eps)
        return to(x.dtype, y + to(cd, b[(i[1],)]))

    return [te.compute("InstanceNormalization", x.shape, body, x.dtype)]


register(OpDef(
    name="InstanceNormalization", infer=_in_infer, ref=_in_ref, kind=Kind.OPAQUE,
    compute=_in_compute,
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


def _lrn_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x = ins[0]
    a = ctx.attrs
    cd = work_dtype(x.dtype)
    size = a["size"]
    lo = (size - 1) // 2
    c = x.shape[1]

    def total(*i: Expr) -> te.Reduction:
        r = te.rvar("k", size)
        ch = i[1] + r.var - te.idx(lo)
        v = topi.let(to(cd, x[(i[0], ch, *i[2:])]), lambda v: v * v)
        return te.reduce("sum", v, [r], where=B.and_(ch >= te.idx(0), ch < te.idx(c)))

    tot = te.compute("lrn_sum", x.shape, total, cd)
    scale = cd.np.type(a["alpha"]) / cd.np.type(size)

    def body(*i: Expr) -> Expr:
        den = B.call("pow", const(a["bias"], cd) + const(scale, cd) * tot[i],
                     const(a["beta"], cd))
        return to(x.dtype, to(cd, x[i]) / den)

    return [te.compute("LRN", x.shape, body, x.dtype)]


register(OpDef(
    name="LRN", infer=_lrn_infer, ref=_lrn_ref, kind=Kind.OPAQUE, compute=_lrn_compute,
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


def _lp_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x = ins[0]
    cd = work_dtype(x.dtype)
    ax = ctx.attrs["axis"] % x.ndim
    p1 = ctx.attrs["p"] == 1

    def elem(s: tuple[Expr, ...], k: tuple[Expr, ...]) -> Expr:
        v = to(cd, x[s])
        return B.call("abs", v) if p1 else v * v

    total = reduce_over("lp_sum", x.shape, (ax,), True, "sum", elem)

    def body(*i: Expr) -> Expr:
        norm = total[keep_index(i, (ax,))]
        if not p1:
            norm = B.call("sqrt", norm)
        return topi.let(norm, lambda m: to(x.dtype, B.select(
            B.eq(m, const(0.0, cd)), const(0.0, cd), to(cd, x[i]) / m)))

    return [te.compute("LpNormalization", x.shape, body, x.dtype)]


register(OpDef(
    name="LpNormalization", infer=_lp_infer, ref=_lp_ref, kind=Kind.OPAQUE,
    compute=_lp_compute,
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


def _mvn_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x = ins[0]
    cd = work_dtype(x.dtype)
    axes = tuple(sorted({a % x.ndim for a in ctx.attrs["axes"]})) if x.ndim else ()
    mean, var = moments("mvn", x, axes, cd)

    def body(*i: Expr) -> Expr:
        k = keep_index(i, axes)
        y = (to(cd, x[i]) - mean[k]) / (B.call("sqrt", var[k]) + const(1e-9, cd))
        return to(x.dtype, y)

    return [te.compute("MeanVarianceNormalization", x.shape, body, x.dtype)]


register(OpDef(
    name="MeanVarianceNormalization", infer=_mvn_infer, ref=_mvn_ref, kind=Kind.OPAQUE,
    compute=_mvn_compute,
    attrs={"axes": Attr("ints", (0, 2, 3))},
    doc="(X - E[X]) / (sqrt(E[(X - E[X])^2]) + 1e-9) over `axes`",
))
