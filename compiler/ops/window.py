"""Sliding-window geometry and numpy kernels shared by conv.py, pool.py, quant.py, matmul.py.

`Window` holds kernel, strides, dilations, pads, auto_pad and ceil_mode, and resolves them
against concrete input extents. The numpy kernels (pad_spatial, taps, im2col, grouped_matmul,
scatter_taps) never loop over pixels: one strided copy per kernel tap, one batched matmul.
The tensor-expression helpers at the end are shared by the ops' compute definitions. This
module registers no op.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
from compiler.ops.base import Attr, EvalCtx, InferCtx, dim_eq

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


def int_attrs(fail: Fail | None, attrs: dict, name: str, n: int, default: int,
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
        strides=int_attrs(fail, attrs, "strides", n, 1, 1),
        dilations=int_attrs(fail, attrs, "dilations", n, 1, 1),
        pads=int_attrs(fail, attrs, "pads", 2 * n, 0, 0),
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
# Forward-convolution type relations (Conv, ConvInteger, DeformConv, QLinearConv)


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



def per_channel(v: np.ndarray, rank: int, axis: int = 0) -> np.ndarray:
    """A scalar stays; a 1-D per-channel vector is shaped to broadcast along `axis`."""
    if v.ndim == 0 or v.size == 1:
        return v.reshape(())
    shape = [1] * rank
    shape[axis] = v.size
    return v.reshape(shape)


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



def float_conv(ctx: EvalCtx, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    wt = work_dtype(x.dtype)
    win = make_window(ctx.attrs, w.shape[2:])
    y = conv_nd(x.astype(wt, copy=False), w.astype(wt, copy=False), ctx.attrs["group"], win)
    return add_bias(y, b).astype(x.dtype, copy=False)


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



def col2im_geometry(attrs: dict, image: Sequence[int], block: Sequence[int],
                    fail: Fail | None = None) -> tuple[Window, list[int]]:
    """Col2Im's block window and the number of blocks along each image axis; validates the
    shapes and attributes when `fail` is given."""
    if fail is not None:
        if len(image) != len(block):
            raise fail(f"image_shape {list(image)} and block_shape {list(block)} differ in "
                       f"length")
        if not image:
            raise fail("image_shape must not be empty")
        if any(v < 1 for v in list(image) + list(block)):
            raise fail(f"image_shape {list(image)} and block_shape {list(block)} must be "
                       f"positive")
    win = make_window(attrs, block, fail)
    grid = [win.axis(i, d)[0] for i, d in enumerate(image)]
    if fail is not None and any(g < 0 for g in grid):
        raise fail(f"block_shape {list(block)} does not fit the padded image_shape "
                   f"{list(image)}")
    return win, grid



def deform_sample(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Multilinear samples of x (N, G, Cg, *in) at pos (N, G, Q, nd), zero outside."""
    dims = x.shape[3:]
    nb, g, cg = x.shape[:3]
    flat = x.reshape(nb, g, cg, math.prod(dims))
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


# ---------------------------------------------------------------------------------------
# Lowering helpers (tensor expressions)


def work_type(dt: DType) -> DType:
    """The loop-IR twin of `work_dtype`: float64 stays, narrower floats compute in float32,
    integer and bool dtypes stay."""
    if not dt.is_float:
        return dt
    return DType.float64 if dt is DType.float64 else DType.float32


def elem0(t: te.Tensor) -> Expr:
    """The first (only) element of a one-element tensor of any rank."""
    return t[(te.idx(0),) * t.ndim]


def channel_of(t: te.Tensor, c: Expr) -> Expr:
    """Element `c` of a per-channel vector, or the one element of a per-tensor value."""
    if t.ndim == 1 and t.shape[0] > 1:
        return t[(c,)]
    return elem0(t)


def finish(name: str, red: te.Tensor, bias: te.Tensor | None, dtype: DType,
           fn: Callable[[Expr, tuple[Expr, ...]], Expr] | None = None) -> te.Tensor:
    """A stage over `red`'s shape (N, C, ...): plus `bias[c]` cast to red's dtype, then
    `fn(value, index)`, cast to `dtype`. `red` itself when there is nothing to do."""
    if bias is None and fn is None and red.dtype == dtype:
        return red

    def body(*i: Expr) -> Expr:
        v: Expr = red[i]
        if bias is not None:
            v = v + topi.to_dtype(red.dtype, bias[(i[1],)])
        if fn is not None:
            v = fn(v, i)
        return topi.to_dtype(dtype, v)

    return topi.stage(f"{name}_out", red.shape, body, dtype)


def conv_forward(name: str, attrs: dict, x: te.Tensor, w: te.Tensor, bias: te.Tensor | None,
                 acc: DType, dtype: DType, x_value=None, w_value=None) -> te.Tensor:
    """topi.conv with the window of the conv attributes `attrs` resolved against x."""
    win = make_window(attrs, w.shape[2:])
    out, begin, _ = win.resolve(x.shape[2:])
    return topi.conv(name, x, w, bias, (x.shape[0], w.shape[0], *out), win.strides,
                     win.dilations, begin, attrs["group"], acc, dtype, x_value, w_value)


def int_conv_lower(name: str, attrs: dict, x: te.Tensor, w: te.Tensor, xzp: te.Tensor | None,
                   wzp: te.Tensor | None) -> te.Tensor:
    """(x - xzp) conv (w - wzp) in int32: wrapping sums equal the reference's exact sum
    wrapped to int32. Padded taps contribute nothing, as in the reference."""
    i32 = DType.int32

    def x_value(v: Expr, n: Expr, c: Expr) -> Expr:
        v = B.cast(i32, v)
        return v - B.cast(i32, elem0(xzp)) if xzp is not None else v

    def w_value(v: Expr, m: Expr) -> Expr:
        v = B.cast(i32, v)
        return v - B.cast(i32, channel_of(wzp, m)) if wzp is not None else v

    return conv_forward(name, attrs, x, w, None, i32, i32, x_value, w_value)


def strided_source(o: Expr, tap: Expr, stride: int, dilation: int, pad: int,
                   extent: int) -> tuple[Expr, list[Expr]]:
    """The source `i` with `i * stride + tap * dilation == o + pad` (transposed windows) and
    the conditions that it exists (divisible, inside [0, extent)); `i` is only meaningful
    where they hold."""
    t = o + te.idx(pad) if pad else o
    t = t - (tap * te.idx(dilation) if dilation != 1 else tap)
    conds: list[Expr] = []
    if stride != 1:
        conds.append(B.eq(B.floormod(t, te.idx(stride)), te.idx(0)))
        t = B.floordiv(t, te.idx(stride))
    conds += [t >= te.idx(0), t < te.idx(extent)]
    return t, conds


def all_of(conds: Sequence[Expr]) -> Expr | None:
    out: Expr | None = None
    for c in conds:
        out = c if out is None else B.and_(out, c)
    return out


def multilinear(x: te.Tensor, lead: Sequence[Expr], pos: Sequence[Expr], acc: DType) -> Expr:
    """x[*lead, *p] sampled at float coordinates `pos` of its trailing axes: multilinear
    interpolation of the 2^n surrounding elements, zero outside; the twin of
    `deform_sample` (corners summed in the same order, in `acc`)."""
    dims = x.shape[len(lead):]
    bases, fracs = [], []
    for p, d in zip(pos, dims, strict=True):
        # far outside (or NaN) -> a point all of whose corners are outside: a safe cast
        lo, hi = topi.scalar(-2, acc), topi.scalar(d + 1, acc)
        p = B.select(B.call("isnan", p), lo, B.max_(B.min_(p, hi), lo))
        fl = B.call("floor", p)
        bases.append(B.cast(DType.int64, fl))
        fracs.append(p - fl)
    one, zero = topi.scalar(1, acc), topi.scalar(0, acc)
    res: Expr | None = None
    for corner in itertools.product((0, 1), repeat=len(dims)):
        at = [b + te.idx(c) if c else b for b, c in zip(bases, corner, strict=True)]
        weight: Expr | None = None
        for f, c in zip(fracs, corner, strict=True):
            f = f if c else one - f
            weight = f if weight is None else weight * f
        ok = all_of([e for i, d in zip(at, dims, strict=True)
                     for e in (i >= te.idx(0), i < te.idx(d))])
        safe = tuple(topi.safe_index(i, d) for i, d in zip(at, dims, strict=True))
        term = B.select(ok, B.cast(acc, x[(*lead, *safe)]) * weight, zero)
        res = term if res is None else res + term
    return res
