"""Convolutions: Conv, ConvTranspose, ConvInteger, DeformConv, Col2Im, CausalConvWithState.

The sliding-window geometry (`Window`: kernel, strides, dilations, pads, auto_pad, ceil_mode)
is shared with pool.py and quant.py. References use im2col: one strided copy per kernel tap
(never a loop over pixels) and one batched matmul over groups. Float16/bfloat16 math runs in
float32 and is rounded once; float32 accumulates in float32; integer convolutions run in
float64, which is exact for 8-bit operands.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.ops.base import (
    Attr,
    EvalCtx,
    InferCtx,
    Kind,
    OpDef,
    check_dtype,
    dim_eq,
    register,
)

D = DType
FLOATS = (D.float16, D.float32, D.float64, D.bfloat16)
INT8S = (D.int8, D.uint8)
AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
Fail = Callable[[str], Exception]


# ---------------------------------------------------------------------------------------
# Window geometry


@dataclass(frozen=True)
class Window:
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads: tuple[int, ...]  # explicit [x1_begin, x2_begin, ..., x1_end, x2_end, ...]
    auto_pad: str = "NOTSET"
    ceil_mode: bool = False

    @property
    def n(self) -> int:
        return len(self.kernel)

    def span(self, i: int) -> int:
        """Extent of the dilated kernel along spatial axis i."""
        return (self.kernel[i] - 1) * self.dilations[i] + 1

    def axis(self, i: int, size: int) -> tuple[int, int, int]:
        """(output size, pad begin, pad end) along spatial axis i for an input extent."""
        s, span = self.strides[i], self.span(i)
        if self.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            # total < 0 (kernel shorter than stride) crops; halves truncate like C
            out = -(-size // s)
            total = (out - 1) * s + span - size
            half = int(total / 2) if self.auto_pad == "SAME_UPPER" else int((total + 1) / 2)
            return out, half, total - half
        if self.auto_pad == "VALID":
            return (size - span) // s + 1, 0, 0
        pb, pe = self.pads[i], self.pads[self.n + i]
        room = size + pb + pe - span
        if not self.ceil_mode:
            return room // s + 1, pb, pe
        out = -(-room // s) + 1
        if (out - 1) * s >= size + pb:  # the last window must start inside the input
            out -= 1
        return out, pb, pe

    def out_dims(self, dims: Sequence[Dim]) -> tuple[Dim, ...]:
        return tuple(self.axis(i, d)[0] if isinstance(d, int) else UNKNOWN
                     for i, d in enumerate(dims))

    def resolve(self, dims: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
        """Output extents and the pads actually applied, for concrete input extents."""
        res = [self.axis(i, d) for i, d in enumerate(dims)]
        return [r[0] for r in res], [r[1] for r in res], [r[2] for r in res]


def _ints(fail: Fail | None, attrs: dict, name: str, n: int, default: int,
          lo: int) -> tuple[int, ...]:
    v = attrs.get(name)
    if v is None or len(v) == 0:
        return (default,) * n
    if fail is not None:
        if len(v) != n:
            raise fail(f"{name} has {len(v)} values, expected {n}")
        if any(x < lo for x in v):
            raise fail(f"{name} {list(v)} must be >= {lo}")
    return tuple(v)


def make_window(attrs: dict, kernel: Sequence[int], fail: Fail | None = None) -> Window:
    """Window from the usual attributes; validates them when `fail` is given."""
    n = len(kernel)
    auto_pad = attrs.get("auto_pad", "NOTSET") or "NOTSET"
    if fail is not None:
        if auto_pad not in AUTO_PADS:
            raise fail(f"auto_pad {auto_pad!r} must be one of {', '.join(AUTO_PADS)}")
        if any(k < 1 for k in kernel):
            raise fail(f"kernel_shape {list(kernel)} must be positive")
    return Window(
        kernel=tuple(kernel),
        strides=_ints(fail, attrs, "strides", n, 1, 1),
        dilations=_ints(fail, attrs, "dilations", n, 1, 1),
        pads=_ints(fail, attrs, "pads", 2 * n, 0, 0),
        auto_pad=auto_pad,
        ceil_mode=bool(attrs.get("ceil_mode", 0)),
    )


def need(ctx: InferCtx, i: int, what: str) -> TensorType:
    t = ctx.input(i)
    if t is None:
        raise ctx.fail(f"input {what} is required")
    return t


def check_rank(ctx: InferCtx, t: TensorType, what: str, rank: int | None = None,
               min_rank: int | None = None) -> tuple[Dim, ...] | None:
    if t.shape is None:
        return None
    if rank is not None and len(t.shape) != rank:
        raise ctx.fail(f"{what} must have rank {rank}, got shape {list(t.shape)}")
    if min_rank is not None and len(t.shape) < min_rank:
        raise ctx.fail(f"{what} must have rank >= {min_rank}, got shape {list(t.shape)}")
    return t.shape


def spatial_out(ctx: InferCtx, win: Window, dims: Sequence[Dim]) -> tuple[Dim, ...]:
    out = win.out_dims(dims)
    for o in out:
        if isinstance(o, int) and o < 0:
            raise ctx.fail(f"window {list(win.kernel)} does not fit the input spatial "
                           f"shape {list(dims)} (output extent {o})")
    return out


def kernel_of(ctx: InferCtx, w: TensorType | None, n: int) -> tuple[int, ...] | None:
    """kernel_shape attribute, or W's spatial dims; checks that they agree."""
    ks = ctx.attrs.get("kernel_shape")
    wdims = None if w is None or w.shape is None else tuple(w.shape[2:])
    if ks is not None:
        if len(ks) != n:
            raise ctx.fail(f"kernel_shape has {len(ks)} values, expected {n}")
        if wdims is not None and any(dim_eq(a, b) is False for a, b in zip(ks, wdims,
                                                                          strict=True)):
            raise ctx.fail(f"kernel_shape {list(ks)} disagrees with W shape {list(w.shape)}")
        return tuple(ks)
    if wdims is not None and all(isinstance(d, int) for d in wdims):
        return wdims  # type: ignore[return-value]
    return None


def check_channels(ctx: InferCtx, have: Dim, want: Dim, what: str) -> None:
    if dim_eq(have, want) is False:
        raise ctx.fail(f"{what}: {have} != {want}")


def mul_dim(a: Dim, k: int) -> Dim:
    return a * k if isinstance(a, int) else UNKNOWN


# ---------------------------------------------------------------------------------------
# numpy kernels


def work_dtype(dt: np.dtype) -> np.dtype:
    """The dtype float math runs in: float64 stays, every narrower float runs in float32."""
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


def pad_spatial(x: np.ndarray, begin: Sequence[int], end: Sequence[int],
                value: float = 0) -> np.ndarray:
    """Pad (or crop, for negative amounts) the spatial axes 2.. of x."""
    if all(b == 0 for b in begin) and all(e == 0 for e in end):
        return x
    crop = tuple(slice(max(0, -b), x.shape[2 + i] - max(0, -e))
                 for i, (b, e) in enumerate(zip(begin, end, strict=True)))
    x = x[(slice(None), slice(None)) + crop]
    lo = [max(0, b) for b in begin]
    shape = [d + b + max(0, e) for d, b, e in zip(x.shape[2:], lo, end, strict=True)]
    res = np.full(x.shape[:2] + tuple(shape), value, dtype=x.dtype)
    res[(slice(None), slice(None)) + tuple(slice(b, b + d) for b, d in zip(lo, x.shape[2:],
                                                                        strict=True))] = x
    return res


def taps(win: Window, out: Sequence[int]) -> Iterator[tuple[int, tuple[slice, ...]]]:
    """(tap number, spatial slices) for every kernel tap over an output grid, row-major."""
    for t, kk in enumerate(itertools.product(*(range(k) for k in win.kernel))):
        yield t, tuple(
            slice(k * d, k * d + (o - 1) * s + 1, s) if o > 0 else slice(0, 0)
            for k, d, s, o in zip(kk, win.dilations, win.strides, out, strict=True)
        )


def padded_input(x: np.ndarray, win: Window, out: Sequence[int], begin: Sequence[int],
                 value: float = 0) -> np.ndarray:
    """x padded by `begin` and by as much at the end as the output grid reaches."""
    end = [max(0, (o - 1) * win.strides[i] + win.span(i) - x.shape[2 + i] - begin[i])
           for i, o in enumerate(out)]
    return pad_spatial(x, begin, end, value)


def im2col(x: np.ndarray, win: Window, out: Sequence[int], begin: Sequence[int]) -> np.ndarray:
    """(N, C, K, *out) patches of x, zero padded."""
    xp = padded_input(x, win, out, begin)
    cols = np.empty(x.shape[:2] + (math.prod(win.kernel),) + tuple(out), dtype=x.dtype)
    for t, sl in taps(win, out):
        cols[:, :, t] = xp[(slice(None), slice(None)) + sl]
    return cols


def grouped_matmul(cols: np.ndarray, w: np.ndarray, group: int) -> np.ndarray:
    """cols (N, C, K, *out) x W (M, C/group, *k) -> (N, M, *out)."""
    n, c, k = cols.shape[:3]
    out = cols.shape[3:]
    m = w.shape[0]
    lhs = w.reshape(group, m // group, (c // group) * k)
    rhs = cols.reshape(n, group, (c // group) * k, math.prod(out))
    return np.matmul(lhs, rhs).reshape((n, m) + tuple(out))


def conv_nd(x: np.ndarray, w: np.ndarray, group: int, win: Window) -> np.ndarray:
    """Plain convolution of already-converted arrays (no bias), in their dtype."""
    out, begin, _ = win.resolve(x.shape[2:])
    return grouped_matmul(im2col(x, win, out, begin), w, group)


def add_bias(y: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    if b is None:
        return y
    return y + b.astype(y.dtype).reshape((1, -1) + (1,) * (y.ndim - 2))


def scatter_taps(cols: np.ndarray, win: Window, grid: Sequence[int], canvas: Sequence[int],
                 offset: Sequence[int]) -> np.ndarray:
    """col2im: add cols (N, C, K, *grid) into a zero canvas (N, C, *canvas) at `offset`."""
    res = np.zeros(cols.shape[:2] + tuple(canvas), dtype=cols.dtype)
    for t, sl in taps(win, grid):
        shifted = tuple(slice(s.start + o, s.stop + o, s.step) if s.step else s
                        for s, o in zip(sl, offset, strict=True))
        res[(slice(None), slice(None)) + shifted] += cols[:, :, t]
    return res


def float_conv(ctx: EvalCtx, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    wt = work_dtype(x.dtype)
    win = make_window(ctx.attrs, w.shape[2:])
    y = conv_nd(x.astype(wt, copy=False), w.astype(wt, copy=False), ctx.attrs["group"], win)
    return add_bias(y, b).astype(x.dtype, copy=False)


# ---------------------------------------------------------------------------------------
# Conv and ConvInteger


CONV_ATTRS = {
    "auto_pad": Attr("string", "NOTSET"),
    "dilations": Attr("ints", None),
    "group": Attr("int", 1),
    "kernel_shape": Attr("ints", None),
    "pads": Attr("ints", None),
    "strides": Attr("ints", None),
}


def conv_shape(ctx: InferCtx, x: TensorType, w: TensorType) -> tuple[Dim, ...] | None:
    """Output shape of a forward convolution X (N, C, *s) with W (M, C/group, *k)."""
    xs = check_rank(ctx, x, "X", min_rank=3)
    rank = len(xs) if xs is not None else (w.rank if w.shape is not None else None)
    ws = check_rank(ctx, w, "W", rank=rank, min_rank=3)
    group = ctx.attrs.get("group", 1)
    if group < 1:
        raise ctx.fail(f"group {group} must be positive")
    if rank is None:
        return None
    if ws is not None:
        if isinstance(ws[0], int) and ws[0] % group:
            raise ctx.fail(f"output channels {ws[0]} not divisible by group {group}")
        if xs is not None:
            check_channels(ctx, xs[1], mul_dim(ws[1], group), "X channels != W.shape[1] * group")
    kernel = kernel_of(ctx, w, rank - 2)
    m = ws[0] if ws is not None else UNKNOWN
    n = xs[0] if xs is not None else UNKNOWN
    if kernel is None or xs is None:
        return (n, m) + (UNKNOWN,) * (rank - 2)
    win = make_window(ctx.attrs, kernel, ctx.fail)
    return (n, m) + spatial_out(ctx, win, xs[2:])


def check_bias(ctx: InferCtx, i: int, m: Dim, dtype: DType) -> None:
    b = ctx.input(i)
    if b is None:
        return
    if b.dtype != dtype:
        raise ctx.fail(f"bias dtype {b.dtype} != {dtype}")
    bs = check_rank(ctx, b, "bias", rank=1)
    if bs is not None:
        check_channels(ctx, bs[0], m, "bias length != output channels")


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


def check_zero_point(ctx: InferCtx, i: int, like: TensorType, channels: Dim | None,
                     what: str) -> None:
    """A zero point is a scalar (or size-1), or a vector of `channels` when that is allowed."""
    zp = ctx.input(i)
    if zp is None:
        return
    if zp.dtype != like.dtype:
        raise ctx.fail(f"{what} dtype {zp.dtype} != {like.dtype}")
    if zp.shape is None or len(zp.shape) == 0:
        return
    if len(zp.shape) == 1 and (zp.shape[0] == 1 or channels is not None):
        if zp.shape[0] != 1 and channels is not None:
            check_channels(ctx, zp.shape[0], channels, f"{what} length != output channels")
        return
    raise ctx.fail(f"{what} must be a scalar{' or 1-D' if channels is not None else ''}, "
                   f"got shape {list(zp.shape)}")


def per_channel(v: np.ndarray, rank: int, axis: int = 0) -> np.ndarray:
    """A scalar stays; a 1-D per-channel vector is shaped to broadcast along `axis`."""
    if v.ndim == 0 or v.size == 1:
        return v.reshape(())
    shape = [1] * rank
    shape[axis] = v.size
    return v.reshape(shape)


def conv_integer_infer(ctx: InferCtx) -> list[TensorType]:
    x, w = need(ctx, 0, "x"), need(ctx, 1, "w")
    check_dtype(ctx, x, INT8S, "x")
    check_dtype(ctx, w, INT8S, "w")
    shape = conv_shape(ctx, x, w)
    check_zero_point(ctx, 2, x, None, "x_zero_point")
    check_zero_point(ctx, 3, w, UNKNOWN if shape is None else shape[1], "w_zero_point")
    return [TensorType(shape, D.int32)]


def int_conv(attrs: dict, x: np.ndarray, w: np.ndarray, xzp: np.ndarray | None,
             wzp: np.ndarray | None) -> np.ndarray:
    """(x - xzp) conv (w - wzp), exact, as float64 (padding contributes zero)."""
    xf = x.astype(np.float64)
    wf = w.astype(np.float64)
    if xzp is not None:
        xf -= xzp.astype(np.float64).reshape(())
    if wzp is not None:
        wf -= per_channel(wzp.astype(np.float64), w.ndim)
    return conv_nd(xf, wf, attrs["group"], make_window(attrs, w.shape[2:]))


def conv_integer_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, w, xzp, wzp = (list(inputs) + [None] * 2)[:4]
    y = int_conv(ctx.attrs, x, w, xzp, wzp)
    return [y.astype(np.int64).astype(np.int32)]


register(OpDef("Conv", conv_infer, conv_ref, attrs=CONV_ATTRS, inputs=(2, 3),
               kind=Kind.COMPLEX_OUT_FUSABLE, doc="N-D convolution with groups"))
register(OpDef("ConvInteger", conv_integer_infer, conv_integer_ref, attrs=CONV_ATTRS,
               inputs=(2, 4), kind=Kind.COMPLEX_OUT_FUSABLE,
               doc="integer convolution with zero points, int32 result"))


# ---------------------------------------------------------------------------------------
# ConvTranspose


def transpose_axis(attrs: dict, win: Window, i: int, size: int) -> tuple[int, int]:
    """(output extent, pad begin) of ConvTranspose along spatial axis i."""
    s = win.strides[i]
    op = (attrs.get("output_padding") or (0,) * win.n)[i]
    full = s * (size - 1) + op + win.span(i)
    shape = attrs.get("output_shape")
    if shape or win.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = shape[len(shape) - win.n + i] if shape else size * s
        total = max(0, full - out)  # a larger output is zero-extended at the end
        begin = total // 2 if win.auto_pad == "SAME_UPPER" else total - total // 2
        return out, begin
    if win.auto_pad == "VALID":
        return full, 0
    return full - win.pads[i] - win.pads[win.n + i], win.pads[i]


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
    op = _ints(ctx.fail, ctx.attrs, "output_padding", n, 0, 0)
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


register(OpDef(
    "ConvTranspose", conv_transpose_infer, conv_transpose_ref,
    attrs=dict(CONV_ATTRS, output_padding=Attr("ints", None), output_shape=Attr("ints", None)),
    inputs=(2, 3), kind=Kind.COMPLEX_OUT_FUSABLE, doc="transposed (fractionally strided) conv",
))


# ---------------------------------------------------------------------------------------
# Col2Im


def col2im_geometry(attrs: dict, image: Sequence[int], block: Sequence[int]) -> tuple[
        Window, list[int]]:
    win = make_window(attrs, block)
    grid = [win.axis(i, d)[0] for i, d in enumerate(image)]
    return win, grid


def col2im_infer(ctx: InferCtx) -> list[TensorType]:
    x = need(ctx, 0, "input")
    if x.dtype == D.string:
        raise ctx.fail("string input is not supported")
    for i, what in ((1, "image_shape"), (2, "block_shape")):
        t = need(ctx, i, what)
        if t.dtype != D.int64:
            raise ctx.fail(f"{what} must be int64, got {t.dtype}")
        check_rank(ctx, t, what, rank=1)
    xs = check_rank(ctx, x, "input", rank=3)
    image, block = ctx.const(1), ctx.const(2)
    img_t = ctx.input(1)
    n = len(image) if image is not None else (
        img_t.shape[0] if img_t.shape is not None and isinstance(img_t.shape[0], int) else None)
    if image is None or block is None:
        rank = None if n is None else n + 2
        return [TensorType(None if rank is None else (xs[0] if xs else UNKNOWN,)
                           + (UNKNOWN,) * (rank - 1), x.dtype)]
    image, block = [int(v) for v in image], [int(v) for v in block]
    if len(image) != len(block):
        raise ctx.fail(f"image_shape {image} and block_shape {block} differ in length")
    if any(v < 1 for v in image + block):
        raise ctx.fail(f"image_shape {image} and block_shape {block} must be positive")
    win = make_window(ctx.attrs, block, ctx.fail)
    grid = spatial_out(ctx, win, image)
    k = math.prod(block)
    c: Dim = UNKNOWN
    if xs is not None:
        if isinstance(xs[1], int):
            if xs[1] % k:
                raise ctx.fail(f"input.shape[1] {xs[1]} not divisible by block size {k}")
            c = xs[1] // k
        check_channels(ctx, xs[2], math.prod(grid), "input.shape[2] != number of blocks")
    return [TensorType((xs[0] if xs else UNKNOWN, c) + tuple(image), x.dtype)]


def col2im_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, image, block = inputs
    image, block = [int(v) for v in image], [int(v) for v in block]
    win, grid = col2im_geometry(ctx.attrs, image, block)
    k = math.prod(block)
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


register(OpDef(
    "Col2Im", col2im_infer, col2im_ref, inputs=(3, 3), kind=Kind.OPAQUE,
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
    os_ = check_rank(ctx, off, "offset", rank=n + 2)
    if os_ is not None:
        if kernel is not None:
            check_channels(ctx, os_[1], og * math.prod(kernel) * n,
                           "offset.shape[1] != offset_group * prod(kernel) * spatial rank")
        for a, b in zip(os_[2:], shape[2:], strict=True):
            check_channels(ctx, a, b, "offset spatial shape != output spatial shape")
    mask = ctx.input(4)
    if mask is not None and kernel is not None:
        ms = check_rank(ctx, mask, "mask", rank=n + 2)
        if ms is not None:
            check_channels(ctx, ms[1], og * math.prod(kernel), "mask.shape[1]")
    check_bias(ctx, 3, shape[1], x.dtype)
    return [TensorType(shape, x.dtype)]


def deform_sample(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Multilinear samples of x (N, G, Cg, *in) at pos (N, G, Q, nd), zero outside."""
    dims = x.shape[3:]
    nb, g, cg = x.shape[:3]
    flat = x.reshape(nb, g, cg, -1)
    base = np.floor(pos)
    frac = pos - base
    base = base.astype(np.int64)
    res = np.zeros((nb, g, cg, pos.shape[2]), dtype=x.dtype)
    for corner in itertools.product((0, 1), repeat=len(dims)):
        idx = base + np.array(corner)
        weight = np.prod(np.where(np.array(corner) == 1, frac, 1 - frac), axis=-1)
        ok = np.all((idx >= 0) & (idx < np.array(dims)), axis=-1)
        lin = np.ravel_multi_index(tuple(np.moveaxis(idx, -1, 0)), dims, mode="clip")
        vals = np.take_along_axis(flat, lin[:, :, None, :], axis=3)
        res += vals * (weight * ok)[:, :, None, :].astype(x.dtype)
    return res


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


register(OpDef(
    "DeformConv", deform_infer, deform_ref, inputs=(3, 5), kind=Kind.OPAQUE,
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


register(OpDef(
    "CausalConvWithState", causal_infer, causal_ref, inputs=(2, 4), outputs=(1, 2),
    attrs={"activation": Attr("string", "none")}, kind=Kind.OPAQUE,
    doc="stateful causal depthwise 1-D conv with carry state and optional SiLU",
))
