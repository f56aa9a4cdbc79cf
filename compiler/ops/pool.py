"""Pooling: MaxPool, AveragePool, LpPool, their Global forms, and MaxUnpool.

Windows follow conv.py's `Window` geometry, including ceil_mode (the last window must start
inside the input or its left padding) and auto_pad. References loop over kernel taps, each a
strided view of the padded input, never over pixels. Which taps of a window count is exact:
MaxPool and count_include_pad=0 use taps inside the input; count_include_pad=1 also counts
the explicit pads (not the extra room ceil_mode adds). Narrow floats are pooled in float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.ops.base import Attr, EvalCtx, InferCtx, Kind, OpDef, check_dtype, register
from compiler.ops.window import (
    FLOATS,
    Window,
    check_rank,
    make_window,
    need,
    padded_input,
    spatial_out,
    taps,
    work_dtype,
)

D = DType
MAX_TYPES = FLOATS + (D.int8, D.uint8)

WINDOW_ATTRS = {
    "auto_pad": Attr("string", "NOTSET"),
    "ceil_mode": Attr("int", 0),
    "dilations": Attr("ints", None),
    "kernel_shape": Attr("ints"),
    "pads": Attr("ints", None),
    "strides": Attr("ints", None),
}


def pool_infer(dtypes: Sequence[DType]):
    def infer(ctx: InferCtx) -> list[TensorType]:
        x = need(ctx, 0, "X")
        check_dtype(ctx, x, dtypes, "X")
        kernel = ctx.attrs["kernel_shape"]
        xs = check_rank(ctx, x, "X", rank=len(kernel) + 2)
        win = make_window(ctx.attrs, kernel, ctx.fail)
        if "p" in ctx.attrs and ctx.attrs["p"] < 1:
            raise ctx.fail(f"p {ctx.attrs['p']} must be positive")
        if ctx.attrs.get("storage_order", 0) not in (0, 1):
            raise ctx.fail(f"storage_order {ctx.attrs['storage_order']} must be 0 or 1")
        shape = None if xs is None else xs[:2] + spatial_out(ctx, win, xs[2:])
        return [TensorType(shape, x.dtype), TensorType(shape, D.int64)][:max(1, ctx.num_outputs)]

    return infer


def tap_counts(win: Window, dims: Sequence[int], out: Sequence[int], begin: Sequence[int],
               end: Sequence[int], include_pad: bool) -> np.ndarray:
    """Number of taps of each output window that count, as a (*out) float array."""
    counts = np.ones((), dtype=np.float64)
    for i, (size, o) in enumerate(zip(dims, out, strict=True)):
        lo, hi = (-begin[i], size + end[i]) if include_pad else (0, size)
        pos = (np.arange(o) * win.strides[i] - begin[i])[:, None] + (
            np.arange(win.kernel[i]) * win.dilations[i])[None, :]
        c = np.sum((pos >= lo) & (pos < hi), axis=1).astype(np.float64)
        counts = np.multiply.outer(counts, c)
    return counts


def tap_valid(win: Window, dims: Sequence[int], out: Sequence[int], begin: Sequence[int]):
    """For each tap: (is the tap inside the input (*out bool), its spatial coordinates)."""
    for t, _ in taps(win, out):
        kk = np.unravel_index(t, win.kernel)
        coords = [np.arange(o) * s - b + k * d for o, s, b, k, d in
                  zip(out, win.strides, begin, kk, win.dilations, strict=True)]
        valid = np.ones((), dtype=bool)
        for c, size in zip(coords, dims, strict=True):
            valid = np.logical_and.outer(valid, (c >= 0) & (c < size))
        yield valid, coords


def window_sum(x: np.ndarray, win: Window, out: Sequence[int], begin: Sequence[int],
               fn=None) -> np.ndarray:
    """Sum over each window of fn(x) (zero padding), in x's dtype."""
    xp = padded_input(x, win, out, begin)
    if fn is not None:
        xp = fn(xp)
    acc = np.zeros(x.shape[:2] + tuple(out), dtype=x.dtype)
    for _, sl in taps(win, out):
        acc += xp[(slice(None), slice(None)) + sl]
    return acc


def avg_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0]
    win = make_window(ctx.attrs, ctx.attrs["kernel_shape"])
    dims = x.shape[2:]
    out, begin, end = win.resolve(dims)
    acc = window_sum(x.astype(work_dtype(x.dtype)), win, out, begin)
    counts = tap_counts(win, dims, out, begin, end, bool(ctx.attrs["count_include_pad"]))
    return [(acc / counts.astype(acc.dtype)).astype(x.dtype)]


def lp_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0]
    p = ctx.attrs["p"]
    win = make_window(ctx.attrs, ctx.attrs["kernel_shape"])
    out, begin, _ = win.resolve(x.shape[2:])
    acc = window_sum(x.astype(work_dtype(x.dtype)), win, out, begin, lambda v: np.abs(v) ** p)
    return [np.power(acc, acc.dtype.type(1.0 / p)).astype(x.dtype)]


def max_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0]
    win = make_window(ctx.attrs, ctx.attrs["kernel_shape"])
    dims = x.shape[2:]
    out, begin, _ = win.resolve(dims)
    xw = x if x.dtype.kind in "iuf" else x.astype(np.float32)
    xp = padded_input(xw, win, out, begin)
    shape = x.shape[:2] + tuple(out)
    y = np.zeros(shape, dtype=xw.dtype)
    idx = np.zeros(shape, dtype=np.int64)
    have = np.zeros(tuple(out), dtype=bool)
    want_idx = ctx.num_outputs > 1
    if ctx.attrs["storage_order"] == 1:
        strides = [math.prod(dims[:i]) for i in range(len(dims))]
    else:
        strides = [math.prod(dims[i + 1:]) for i in range(len(dims))]
    for (_, sl), (valid, coords) in zip(taps(win, out), tap_valid(win, dims, out, begin),
                                        strict=True):
        v = xp[(slice(None), slice(None)) + sl]
        better = valid & (~have | (v > y))
        y = np.where(better, v, y)
        if want_idx:
            flat = np.zeros((), dtype=np.int64)
            for c, st in zip(coords, strides, strict=True):
                flat = np.add.outer(flat, c * st)
            idx = np.where(better, flat, idx)
        have |= valid
    res = [y.astype(x.dtype)]
    if want_idx:
        nc = np.arange(x.shape[0] * x.shape[1], dtype=np.int64).reshape(x.shape[:2])
        res.append(idx + (nc * math.prod(dims)).reshape(x.shape[:2] + (1,) * len(dims)))
    return res


register(OpDef(
    "MaxPool", pool_infer(MAX_TYPES), max_ref, outputs=(1, 2), kind=Kind.COMPLEX_OUT_FUSABLE,
    attrs=dict(WINDOW_ATTRS, storage_order=Attr("int", 0)),
    doc="max over each window; optional flat argmax indices (row- or column-major)",
))
register(OpDef(
    "AveragePool", pool_infer(FLOATS), avg_ref, kind=Kind.COMPLEX_OUT_FUSABLE,
    attrs=dict(WINDOW_ATTRS, count_include_pad=Attr("int", 0)),
    doc="mean over each window, with or without the pads in the divisor",
))
register(OpDef(
    "LpPool", pool_infer(FLOATS), lp_ref, kind=Kind.COMPLEX_OUT_FUSABLE,
    attrs=dict(WINDOW_ATTRS, p=Attr("int", 2)), doc="p-norm over each window",
))


# ---------------------------------------------------------------------------------------
# Global pools


def global_infer(ctx: InferCtx) -> list[TensorType]:
    x = need(ctx, 0, "X")
    check_dtype(ctx, x, FLOATS, "X")
    if "p" in ctx.attrs and ctx.attrs["p"] < 1:
        raise ctx.fail(f"p {ctx.attrs['p']} must be positive")
    xs = check_rank(ctx, x, "X", min_rank=2)
    return [TensorType(None if xs is None else xs[:2] + (1,) * (len(xs) - 2), x.dtype)]


def global_pool(fn):
    def ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        x = inputs[0]
        axes = tuple(range(2, x.ndim))
        return [fn(x.astype(work_dtype(x.dtype)), axes, ctx.attrs).astype(x.dtype)]

    return ref


def _global_lp(x: np.ndarray, axes: tuple[int, ...], attrs: dict) -> np.ndarray:
    p = attrs["p"]
    return np.power(np.sum(np.abs(x) ** p, axis=axes, keepdims=True), x.dtype.type(1.0 / p))


register(OpDef("GlobalAveragePool", global_infer,
               global_pool(lambda x, a, _: np.mean(x, axis=a, keepdims=True)),
               kind=Kind.COMPLEX_OUT_FUSABLE, doc="mean over all spatial axes"))
register(OpDef("GlobalMaxPool", global_infer,
               global_pool(lambda x, a, _: np.max(x, axis=a, keepdims=True)),
               kind=Kind.COMPLEX_OUT_FUSABLE, doc="max over all spatial axes"))
register(OpDef("GlobalLpPool", global_infer, global_pool(_global_lp), attrs={"p": Attr("int", 2)},
               kind=Kind.COMPLEX_OUT_FUSABLE,
               doc="p-norm over all spatial axes"))


# ---------------------------------------------------------------------------------------
# MaxUnpool


def unpool_dims(win: Window, dims: Sequence[Dim]) -> tuple[Dim, ...]:
    n = win.n
    return tuple((d - 1) * win.strides[i] + win.kernel[i] - win.pads[i] - win.pads[n + i]
                 if isinstance(d, int) else UNKNOWN for i, d in enumerate(dims))


def unpool_infer(ctx: InferCtx) -> list[TensorType]:
    x, ind = need(ctx, 0, "X"), need(ctx, 1, "I")
    check_dtype(ctx, x, FLOATS, "X")
    if ind.dtype != D.int64:
        raise ctx.fail(f"I must be int64, got {ind.dtype}")
    kernel = ctx.attrs["kernel_shape"]
    win = make_window(ctx.attrs, kernel, ctx.fail)
    xs = check_rank(ctx, x, "X", rank=len(kernel) + 2)
    ist = check_rank(ctx, ind, "I", rank=len(kernel) + 2)
    if xs is not None and ist is not None:
        for a, b in zip(xs, ist, strict=True):
            if isinstance(a, int) and isinstance(b, int) and a != b:
                raise ctx.fail(f"I shape {list(ist)} != X shape {list(xs)}")
    rank = len(kernel) + 2
    out = unpool_dims(win, xs[2:]) if xs is not None else (UNKNOWN,) * len(kernel)
    if any(isinstance(d, int) and d < 1 for d in out):
        raise ctx.fail(f"output spatial shape {list(out)} is not positive")
    shp = ctx.input(2)
    if shp is not None:
        if shp.dtype != D.int64:
            raise ctx.fail(f"output_shape must be int64, got {shp.dtype}")
        check_rank(ctx, shp, "output_shape", rank=1)
        if shp.shape is not None and isinstance(shp.shape[0], int) and shp.shape[0] != rank:
            raise ctx.fail(f"output_shape has {shp.shape[0]} values, expected {rank}")
        val = ctx.const(2)
        if val is None:
            return [TensorType((UNKNOWN,) * rank, x.dtype)]
        if any(v < 0 for v in val):
            raise ctx.fail(f"output_shape {val.tolist()} must be non-negative")
        return [TensorType(tuple(int(v) for v in val), x.dtype)]
    if xs is None:
        return [TensorType((UNKNOWN,) * rank, x.dtype)]
    return [TensorType(xs[:2] + out, x.dtype)]


def unpool_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, ind, shape = (list(inputs) + [None])[:3]
    win = make_window(ctx.attrs, ctx.attrs["kernel_shape"])
    inferred = x.shape[:2] + unpool_dims(win, x.shape[2:])
    flat = np.zeros(math.prod(inferred), dtype=x.dtype)
    if ind.size and (ind.min() < 0 or ind.max() >= flat.size):
        raise ExecutionError(f"MaxUnpool: indices must lie in [0, {flat.size}), got "
                             f"[{ind.min()}, {ind.max()}]")
    flat[ind.reshape(-1)] = x.reshape(-1)
    y = flat.reshape(inferred)
    if shape is None:
        return [y]
    if len(shape) != x.ndim or (shape < 0).any():
        raise ExecutionError(f"MaxUnpool: bad output_shape {shape.tolist()}")
    # indices address the inferred shape; output_shape pads (or crops) it at the end
    res = np.zeros(tuple(int(v) for v in shape), dtype=x.dtype)
    common = tuple(slice(0, min(a, int(b))) for a, b in zip(inferred, shape, strict=True))
    res[common] = y[common]
    return [res]


register(OpDef(
    "MaxUnpool", unpool_infer, unpool_ref, inputs=(2, 3), kind=Kind.OPAQUE,
    attrs={"kernel_shape": Attr("ints"), "pads": Attr("ints", None),
           "strides": Attr("ints", None)},
    doc="scatter pooled values back to their argmax positions, zeros elsewhere",
))
