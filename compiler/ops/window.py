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
from compiler.ops.base import InferCtx, dim_eq

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
