"""Convolutions: Conv, ConvTranspose, ConvInteger, DeformConv, Col2Im, CausalConvWithState.

Window geometry and the numpy kernels live in window.py. References use im2col: one strided
copy per kernel tap (never a loop over pixels) and one batched matmul over groups.
Float16/bfloat16 math runs in float32 and is rounded once; float32 accumulates in float32;
integer convolutions run in float64, which is exact for 8-bit operands."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
from compiler.ops.base import (
    Attr,
    EvalCtx,
    InferCtx,
    Kind,
    OpDef,
    check_dtype,
    register,
)
from compiler.ops.window import (
    CONV_ATTRS,
    FLOATS,
    INT8S,
    Window,
    add_bias,
    all_of,
    check_bias,
    check_channels,
    check_rank,
    check_zero_point,
    col2im_geometry,
    conv_forward,
    conv_shape,
    deform_sample,
    finish,
    float_conv,
    grouped_matmul,
    int_attrs,
    int_conv,
    int_conv_lower,
    kernel_of,
    make_window,
    mul_dim,
    multilinear,
    need,
    scatter_taps,
    strided_source,
    transpose_axis,
    work_dtype,
    work_type,
)

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

D = DType


# ---------------------------------------------------------------------------------------
# Conv and ConvInteger


def conv_infer(ctx: InferCtx) -> list[TensorType]:
    x, w = need(ctx, 0, "X"), need(ctx, 1, "W")
    check_dtype(ctx, x, FLOATS, "X")
    if w.dtype != x.dtype:
        raise ctx.fail(f"W dtype {w.dtype} != X dtype {x.dtype}")
    shape = conv_shape(ctx, x, w)
    check_bias(ctx, 2, UNKNOWN if shape is None else shape[1], x.dtype)
    return [TensorType(shape, x.dtype)]


def conv_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, w, b = (list(inputs) + [None])[:3]
    return [float_conv(ctx, x, w, b)]


def conv_integer_infer(ctx: InferCtx) -> list[TensorType]:
    x, w = need(ctx, 0, "x"), need(ctx, 1, "w")
    check_dtype(ctx, x, INT8S, "x")
    check_dtype(ctx, w, INT8S, "w")
    shape = conv_shape(ctx, x, w)
    check_zero_point(ctx, 2, x, None, "x_zero_point")
    check_zero_point(ctx, 3, w, UNKNOWN if shape is None else shape[1], "w_zero_point")
    return [TensorType(shape, D.int32)]


def conv_integer_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, w, xzp, wzp = (list(inputs) + [None] * 2)[:4]
    y = int_conv(ctx.attrs, x, w, xzp, wzp)
    return [y.astype(np.int64).astype(np.int32)]


def conv_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x, w, b = (list(ins) + [None])[:3]
    return [conv_forward(ctx.op, ctx.attrs, x, w, b, work_type(x.dtype), x.dtype)]


def conv_integer_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x, w, xzp, wzp = (list(ins) + [None] * 2)[:4]
    return [int_conv_lower(ctx.op, ctx.attrs, x, w, xzp, wzp)]


register(OpDef("Conv", conv_infer, conv_ref, attrs=CONV_ATTRS, inputs=(2, 3),
               kind=Kind.COMPLEX_OUT_FUSABLE, compute=conv_compute,
               doc="N-D convolution with groups"))
register(OpDef("ConvInteger", conv_integer_infer, conv_integer_ref, attrs=CONV_ATTRS,
               inputs=(2, 4), kind=Kind.COMPLEX_OUT_FUSABLE, compute=conv_integer_compute,
               doc="integer convolution with zero points, int32 result"))


# ---------------------------------------------------------------------------------------
# ConvTranspose


def conv_transpose_infer(ctx: InferCtx) -> list[TensorType]:
    x, w = need(ctx, 0, "X"), need(ctx, 1, "W")
    check_dtype(ctx, x, FLOATS, "X")
    if w.dtype != x.dtype:
        raise ctx.fail(f"W dtype {w.dtype} != X dtype {x.dtype}")
    xs = check_rank(ctx, x, "X", min_rank=3)
    rank = len(xs) if xs is not None else w.rank
    ws = check_rank(ctx, w, "W", rank=rank, min_rank=3)
    group = ctx.attrs["group"]
    if group < 1:
        raise ctx.fail(f"group {group} must be positive")
    if rank is None:
        return [TensorType(None, x.dtype)]
    n = rank - 2
    m = mul_dim(ws[1], group) if ws is not None else UNKNOWN
    if ws is not None and xs is not None:
        check_channels(ctx, xs[1], ws[0], "X channels != W.shape[0]")
    if xs is not None and isinstance(xs[1], int) and xs[1] % group:
        raise ctx.fail(f"input channels {xs[1]} not divisible by group {group}")
    op = int_attrs(ctx.fail, ctx.attrs, "output_padding", n, 0, 0)
    shape = ctx.attrs.get("output_shape")
    if shape is not None and len(shape) not in (n, n + 2):
        raise ctx.fail(f"output_shape has {len(shape)} values, expected {n}")
    kernel = kernel_of(ctx, w, n)
    nb = xs[0] if xs is not None else UNKNOWN
    if kernel is None or xs is None:
        return [TensorType((nb, m) + (UNKNOWN,) * n, x.dtype)]
    win = make_window(ctx.attrs, kernel, ctx.fail)
    attrs = dict(ctx.attrs, output_padding=op)
    dims: list[Dim] = []
    for i, d in enumerate(xs[2:]):
        out = transpose_axis(attrs, win, i, d)[0] if isinstance(d, int) else UNKNOWN
        if isinstance(out, int) and out < 0:
            raise ctx.fail(f"negative output extent {out} on spatial axis {i}")
        dims.append(out)
    check_bias(ctx, 2, m, x.dtype)
    return [TensorType((nb, m) + tuple(dims), x.dtype)]


def conv_transpose_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, w, b = (list(inputs) + [None])[:3]
    wt = work_dtype(x.dtype)
    group = ctx.attrs["group"]
    win = make_window(ctx.attrs, w.shape[2:])
    nb, c = x.shape[:2]
    grid = x.shape[2:]
    mg = w.shape[1]
    k = math.prod(win.kernel)
    lhs = w.astype(wt).reshape(group, c // group, mg * k).transpose(0, 2, 1)
    rhs = x.astype(wt).reshape(nb, group, c // group, math.prod(grid))
    cols = np.matmul(lhs, rhs).reshape((nb, mg * group, k) + grid)
    geo = [transpose_axis(ctx.attrs, win, i, d) for i, d in enumerate(grid)]
    full = [(d - 1) * win.strides[i] + win.span(i) for i, d in enumerate(grid)]
    lo = [min(0, begin) for _, begin in geo]
    canvas = [max(f, begin + out) - low for f, (out, begin), low in zip(full, geo, lo,
                                                                       strict=True)]
    res = scatter_taps(cols, Window(win.kernel, win.strides, win.dilations, win.pads), grid,
                       canvas, [-low for low in lo])
    crop = tuple(slice(begin - low, begin - low + out) for (out, begin), low in zip(geo, lo,
                                                                                   strict=True))
    y = res[(slice(None), slice(None)) + crop]
    return [add_bias(y, b).astype(x.dtype, copy=False)]


def conv_transpose_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """A gather over the input: out[o] sums x[i] * w[k] over the taps k whose source
    i = (o + pad - k * dilation) / stride is whole and inside x."""
    x, w, b = (list(ins) + [None])[:3]
    out_t = ctx.out_types[0]
    acc = work_type(x.dtype)
    group = ctx.attrs["group"]
    win = make_window(ctx.attrs, w.shape[2:])
    begins = [transpose_axis(ctx.attrs, win, i, d)[1] for i, d in enumerate(x.shape[2:])]
    cg, mg = x.shape[1] // group, w.shape[1]

    def body(n: Expr, m: Expr, *o: Expr) -> te.Reduction:
        rc = te.rvar("rc", cg)
        rs = [te.rvar(f"rk{j}", k) for j, k in enumerate(win.kernel)]
        c = rc.var if group == 1 else B.floordiv(m, te.idx(mg)) * te.idx(cg) + rc.var
        ml = m if group == 1 else B.floormod(m, te.idx(mg))
        src, conds = [], []
        for j, r in enumerate(rs):
            i, cj = strided_source(o[j], r.var, win.strides[j], win.dilations[j], begins[j],
                                   x.shape[2 + j])
            src.append(i)
            conds += cj
        v = B.cast(acc, x[(n, c, *src)]) * B.cast(acc, w[(c, ml, *(r.var for r in rs))])
        return te.reduce("sum", v, [rc, *rs], where=all_of(conds))

    red = topi.stage(ctx.op, out_t.shape, body, acc)
    return [finish(ctx.op, red, b, out_t.dtype)]


register(OpDef(
    "ConvTranspose", conv_transpose_infer, conv_transpose_ref,
    attrs=dict(CONV_ATTRS, output_padding=Attr("ints", None), output_shape=Attr("ints", None)),
    inputs=(2, 3), kind=Kind.COMPLEX_OUT_FUSABLE, compute=conv_transpose_compute,
    doc="transposed (fractionally strided) conv",
))


# ---------------------------------------------------------------------------------------
# Col2Im


def col2im_infer(ctx: InferCtx) -> list[TensorType]:
    x = need(ctx, 0, "input")
    if x.dtype == D.string:
        raise ctx.fail("string input is not supported")
    lengths: list[Dim] = []
    for i, what in ((1, "image_shape"), (2, "block_shape")):
        t = need(ctx, i, what)
        if t.dtype != D.int64:
            raise ctx.fail(f"{what} must be int64, got {t.dtype}")
        shape = check_rank(ctx, t, what, rank=1)
        lengths.append(UNKNOWN if shape is None else shape[0])
    check_channels(ctx, lengths[0], lengths[1], "image_shape and block_shape lengths")
    n = next((d for d in lengths if isinstance(d, int)), None)
    if n is not None:
        if n < 1:
            raise ctx.fail("image_shape must not be empty")
        make_window(ctx.attrs, (1,) * n, ctx.fail)  # attribute lengths and ranges
    xs = check_rank(ctx, x, "input", rank=3)
    batch = xs[0] if xs else UNKNOWN
    image, block = ctx.const(1), ctx.const(2)
    if image is None or block is None:
        return [TensorType(None if n is None else (batch,) + (UNKNOWN,) * (n + 1), x.dtype)]
    image, block = [int(v) for v in image], [int(v) for v in block]
    _, grid = col2im_geometry(ctx.attrs, image, block, ctx.fail)
    k = math.prod(block)
    c: Dim = UNKNOWN
    if xs is not None:
        if isinstance(xs[1], int):
            if xs[1] % k:
                raise ctx.fail(f"input.shape[1] {xs[1]} not divisible by block size {k}")
            c = xs[1] // k
        check_channels(ctx, xs[2], math.prod(grid), "input.shape[2] != number of blocks")
    return [TensorType((batch, c) + tuple(image), x.dtype)]


def col2im_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, image, block = inputs
    image, block = [int(v) for v in image], [int(v) for v in block]

    def fail(msg: str) -> ExecutionError:
        return ExecutionError(f"Col2Im: {msg}")

    win, grid = col2im_geometry(ctx.attrs, image, block, fail)
    k = math.prod(block)
    if x.shape[1] % k or x.shape[2] != math.prod(grid):
        raise fail(f"input shape {list(x.shape)} does not hold {math.prod(grid)} blocks of "
                   f"{k} elements per channel")
    n = len(image)
    cols = x.reshape((x.shape[0], x.shape[1] // k, k) + tuple(grid))
    canvas = [d + win.pads[i] + win.pads[n + i] for i, d in enumerate(image)]
    if x.dtype.kind in "biu":
        wt = np.dtype(np.int64)
    else:
        wt = x.dtype if x.dtype.kind == "c" else work_dtype(x.dtype)
    res = scatter_taps(cols.astype(wt, copy=False), win, grid, canvas, [0] * n)
    crop = tuple(slice(win.pads[i], win.pads[i] + d) for i, d in enumerate(image))
    return [res[(slice(None), slice(None)) + crop].astype(x.dtype)]


def col2im_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """Each image element gathers the block taps that land on it (a transposed window)."""
    x = ins[0]
    out_t = ctx.out_types[0]
    image = [int(v) for v in ctx.value(1)]
    block = [int(v) for v in ctx.value(2)]
    win, grid = col2im_geometry(ctx.attrs, image, block)
    k = math.prod(block)
    acc = D.int64 if not x.dtype.is_float else work_type(x.dtype)

    def body(n: Expr, c: Expr, *p: Expr) -> te.Reduction:
        rs = [te.rvar(f"rk{j}", kb) for j, kb in enumerate(block)]
        src, conds = [], []
        for j, r in enumerate(rs):
            i, cj = strided_source(p[j], r.var, win.strides[j], win.dilations[j],
                                   win.pads[j], grid[j])
            src.append(i)
            conds += cj
        row = c * te.idx(k) + topi.flat_index(block, [r.var for r in rs])
        v = x[(n, row, topi.flat_index(grid, src))]
        return te.reduce("sum", B.cast(acc, v), rs, where=all_of(conds))

    red = topi.stage(ctx.op, out_t.shape, body, acc)
    return [finish(ctx.op, red, None, out_t.dtype)]


register(OpDef(
    "Col2Im", col2im_infer, col2im_ref, inputs=(3, 3), kind=Kind.OPAQUE,
    compute=col2im_compute, shape_inputs=(1, 2),
    attrs={"dilations": Attr("ints", None), "pads": Attr("ints", None),
           "strides": Attr("ints", None)},
    doc="rearrange column blocks into an image (fold), overlapping blocks add",
))


# ---------------------------------------------------------------------------------------
# DeformConv


def deform_infer(ctx: InferCtx) -> list[TensorType]:
    x, w, off = need(ctx, 0, "X"), need(ctx, 1, "W"), need(ctx, 2, "offset")
    check_dtype(ctx, x, FLOATS, "X")
    for i, t in ((1, w), (2, off), (3, ctx.input(3)), (4, ctx.input(4))):
        if t is not None and t.dtype != x.dtype:
            raise ctx.fail(f"input {i} dtype {t.dtype} != X dtype {x.dtype}")
    shape = conv_shape(ctx, x, w)
    og = ctx.attrs["offset_group"]
    if og < 1:
        raise ctx.fail(f"offset_group {og} must be positive")
    if shape is None:
        return [TensorType(None, x.dtype)]
    xs = x.shape
    if xs is not None and isinstance(xs[1], int) and xs[1] % og:
        raise ctx.fail(f"channels {xs[1]} not divisible by offset_group {og}")
    n = len(shape) - 2
    kernel = kernel_of(ctx, w, n)
    k = math.prod(kernel) if kernel is not None else None
    for i, what, per_tap in ((2, "offset", n), (4, "mask", 1)):
        t = ctx.input(i)
        ts = None if t is None else check_rank(ctx, t, what, rank=n + 2)
        if ts is None:
            continue
        check_channels(ctx, ts[0], shape[0], f"{what} batch != X batch")
        if k is not None:
            check_channels(ctx, ts[1], og * k * per_tap,
                           f"{what}.shape[1] != offset_group * prod(kernel)"
                           + (" * spatial rank" if per_tap > 1 else ""))
        for a, b in zip(ts[2:], shape[2:], strict=True):
            check_channels(ctx, a, b, f"{what} spatial shape != output spatial shape")
    check_bias(ctx, 3, shape[1], x.dtype)
    return [TensorType(shape, x.dtype)]


def deform_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, w, off, b, mask = (list(inputs) + [None] * 2)[:5]
    wt = work_dtype(x.dtype)
    win = make_window(ctx.attrs, w.shape[2:])
    og, group = ctx.attrs["offset_group"], ctx.attrs["group"]
    nb, c = x.shape[:2]
    n = win.n
    out, begin, _ = win.resolve(x.shape[2:])
    k, p = math.prod(win.kernel), math.prod(out)
    # regular sampling grid: (K, P, n) positions of each tap for each output point
    grid = np.stack(np.meshgrid(*(np.arange(o) * s - b for o, s, b in
                                  zip(out, win.strides, begin, strict=True)),
                                indexing="ij"), axis=-1).reshape(p, n)
    kpos = np.stack(np.meshgrid(*(np.arange(kk) * d for kk, d in
                                  zip(win.kernel, win.dilations, strict=True)),
                                indexing="ij"), axis=-1).reshape(k, n)
    regular = (kpos[:, None, :] + grid[None, :, :]).astype(wt)
    delta = off.astype(wt).reshape(nb, og, k, n, p).transpose(0, 1, 2, 4, 3)
    pos = (regular + delta).reshape(nb, og, k * p, n)
    xs = x.astype(wt).reshape((nb, og, c // og) + x.shape[2:])
    cols = deform_sample(xs, pos).reshape(nb, og, c // og, k, p)
    if mask is not None:
        cols = cols * mask.astype(wt).reshape(nb, og, 1, k, p)
    cols = cols.reshape((nb, c, k) + tuple(out))
    y = grouped_matmul(cols, w.astype(wt), group)
    return [add_bias(y, b).astype(x.dtype, copy=False)]


def deform_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """Sampled columns cols[n, c, k, *o] (multilinear, zero outside, times the mask) as one
    stage, then a grouped contraction with W over (c, k)."""
    x, w, off, b, mask = (list(ins) + [None] * 2)[:5]
    out_t = ctx.out_types[0]
    acc = work_type(x.dtype)
    win = make_window(ctx.attrs, w.shape[2:])
    out, begin, _ = win.resolve(x.shape[2:])
    og, group = ctx.attrs["offset_group"], ctx.attrs["group"]
    nb, c_all = x.shape[:2]
    nd, k = win.n, math.prod(win.kernel)

    def sample(n: Expr, c: Expr, kf: Expr, *o: Expr) -> Expr:
        kk = topi.unflatten(win.kernel, kf)
        g = B.floordiv(c, te.idx(c_all // og)) if og > 1 else te.idx(0)
        pos = []
        for j in range(nd):
            regular = o[j] * te.idx(win.strides[j]) - te.idx(begin[j]) \
                + kk[j] * te.idx(win.dilations[j])
            ch = (g * te.idx(k) + kf) * te.idx(nd) + te.idx(j)
            pos.append(B.cast(acc, regular) + B.cast(acc, off[(n, ch, *o)]))
        res = multilinear(x, (n, c), pos, acc)
        if mask is not None:
            res = res * B.cast(acc, mask[(n, g * te.idx(k) + kf, *o)])
        return res

    cols = topi.stage(f"{ctx.op}_cols", (nb, c_all, k, *out), sample, acc, inline=False)
    cg, mg = c_all // group, w.shape[0] // group

    def body(n: Expr, m: Expr, *o: Expr) -> te.Reduction:
        rc = te.rvar("rc", cg)
        rs = [te.rvar(f"rk{j}", kj) for j, kj in enumerate(win.kernel)]
        c = rc.var if group == 1 else B.floordiv(m, te.idx(mg)) * te.idx(cg) + rc.var
        kf = topi.flat_index(win.kernel, [r.var for r in rs])
        v = B.cast(acc, w[(m, rc.var, *(r.var for r in rs))]) * cols[(n, c, kf, *o)]
        return te.reduce("sum", v, [rc, *rs])

    red = topi.stage(ctx.op, out_t.shape, body, acc)
    return [finish(ctx.op, red, b, out_t.dtype)]


register(OpDef(
    "DeformConv", deform_infer, deform_ref, inputs=(3, 5), kind=Kind.OPAQUE,
    compute=deform_compute,
    attrs={"dilations": Attr("ints", None), "group": Attr("int", 1),
           "kernel_shape": Attr("ints", None), "offset_group": Attr("int", 1),
           "pads": Attr("ints", None), "strides": Attr("ints", None)},
    doc="deformable convolution: taps sampled bilinearly at learned offsets",
))


# ---------------------------------------------------------------------------------------
# CausalConvWithState


CAUSAL_TYPES = (D.float32, D.float16, D.bfloat16)
ACTIVATIONS = ("none", "silu", "swish")


def causal_infer(ctx: InferCtx) -> list[TensorType]:
    x, w = need(ctx, 0, "input"), need(ctx, 1, "weight")
    check_dtype(ctx, x, CAUSAL_TYPES, "input")
    for i in (1, 2, 3):
        t = ctx.input(i)
        if t is not None and t.dtype != x.dtype:
            raise ctx.fail(f"input {i} dtype {t.dtype} != input dtype {x.dtype}")
    if ctx.attrs["activation"] not in ACTIVATIONS:
        raise ctx.fail(f"activation {ctx.attrs['activation']!r} must be one of "
                       f"{', '.join(ACTIVATIONS)}")
    xs = check_rank(ctx, x, "input", rank=3) or (UNKNOWN,) * 3
    ws = check_rank(ctx, w, "weight", rank=3) or (UNKNOWN,) * 3
    check_channels(ctx, ws[0], xs[1], "weight.shape[0] != channels")
    check_channels(ctx, ws[1], 1, "weight.shape[1] must be 1 (depthwise)")
    k = ws[2]
    if isinstance(k, int) and k < 1:
        raise ctx.fail(f"kernel size {k} must be positive")
    state: Dim = k - 1 if isinstance(k, int) else UNKNOWN
    check_bias(ctx, 2, xs[1], x.dtype)
    past = ctx.input(3)
    if past is not None:
        ps = check_rank(ctx, past, "past_state", rank=3)
        if ps is not None:
            for a, b, what in zip(ps, (xs[0], xs[1], state), ("batch", "channels", "k - 1"),
                                  strict=True):
                check_channels(ctx, a, b, f"past_state {what}")
    return [TensorType(xs, x.dtype), TensorType((xs[0], xs[1], state), x.dtype)]


def causal_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, w, b, past = (list(inputs) + [None] * 2)[:4]
    nb, c, length = x.shape
    k = w.shape[2]
    if past is None:
        past = np.zeros((nb, c, k - 1), dtype=x.dtype)
    padded = np.concatenate([past, x], axis=2)
    xf, wf = padded.astype(np.float32), w.astype(np.float32)
    y = np.zeros((nb, c, length), dtype=np.float32)
    for j in range(k):
        y += wf[None, :, 0, j, None] * xf[:, :, j:j + length]
    y = add_bias(y, b)
    if ctx.attrs["activation"] in ("silu", "swish"):
        y = y / (np.float32(1) + np.exp(-y))
    return [y.astype(x.dtype), padded[:, :, padded.shape[2] - (k - 1):]]


def causal_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """Over the virtual concatenation [past_state, input] along time: a depthwise causal
    conv in float32 (taps summed in order), bias, optional SiLU; the state is its tail."""
    x, w, b, past = (list(ins) + [None] * 2)[:4]
    y_t, s_t = ctx.out_types[:2] if len(ctx.out_types) > 1 else (ctx.out_types[0], None)
    f32 = D.float32
    length, k = x.shape[2], w.shape[2]
    lag = k - 1

    def padded(n: Expr, c: Expr, u: Expr) -> Expr:
        xv = x[(n, c, topi.safe_index(u - te.idx(lag), length))]
        if lag == 0:
            return xv
        pv = past[(n, c, topi.safe_index(u, lag))] if past is not None else \
            topi.scalar(0, x.dtype)
        return B.select(u < te.idx(lag), pv, xv)

    def body(n: Expr, c: Expr, t: Expr) -> te.Reduction:
        r = te.rvar("rk", k)
        v = B.cast(f32, w[(c, te.idx(0), r.var)]) * B.cast(f32, padded(n, c, t + r.var))
        return te.reduce("sum", v, [r])

    def silu(v: Expr, _i: tuple[Expr, ...]) -> Expr:
        return v / (topi.scalar(1, f32) + B.call("exp", -v))

    act = silu if ctx.attrs["activation"] in ("silu", "swish") else None
    y = finish(ctx.op, topi.stage(ctx.op, y_t.shape, body, f32), b, y_t.dtype, act)
    if s_t is None:
        return [y]
    state = topi.stage(f"{ctx.op}_state", s_t.shape,
                       lambda n, c, j: padded(n, c, j + te.idx(length)), x.dtype)
    return [y, state]


register(OpDef(
    "CausalConvWithState", causal_infer, causal_ref, inputs=(2, 4), outputs=(1, 2),
    compute=causal_compute,
    attrs={"activation": Attr("string", "none")}, kind=Kind.OPAQUE,
    doc="stateful causal depthwise 1-D conv with carry state and optional SiLU",
))
