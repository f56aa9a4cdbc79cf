"""Pooling: MaxPool, AveragePool, LpPool, their Global forms, and MaxUnpool.

Windows follow conv.py's `Window` geometry, including ceil_mode (the last window must start
inside the input or its left padding) and auto_pad. References loop over kernel taps, each a
strided view of the padded input, never over pixels. Which taps of a window count is exact:
MaxPool and count_include_pad=0 use taps inside the input; count_include_pad=1 also counts
the explicit pads (not the extra room ceil_mode adds). Narrow floats are pooled in float32.

Computes (lowering) follow the references: padding is a reduction predicate, averages divide
by a closed-form tap count, MaxPool reproduces the reference's scan (a NaN first tap sticks,
later NaNs are skipped, ties keep the first tap), and MaxUnpool's scatter is a gather.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
from compiler.ops.base import Attr, EvalCtx, InferCtx, Kind, OpDef, check_dtype, register
from compiler.ops.window import (
    FLOATS,
    Window,
    all_of,
    check_rank,
    make_window,
    need,
    padded_input,
    spatial_out,
    taps,
    work_dtype,
    work_type,
)

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

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


# ---------------------------------------------------------------------------------------
# Lowering


def window_of(ctx: LowerCtx, x: te.Tensor) -> tuple[Window, list[int], list[int], list[int]]:
    """The window, the output grid and the pads applied, for x's spatial extents."""
    win = make_window(ctx.attrs, ctx.attrs["kernel_shape"])
    return (win, *win.resolve(x.shape[2:]))


def lp_term(v: Expr, p: int) -> Expr:
    """|v| ** p, as the reference computes it."""
    a = B.call("abs", v)
    if p == 1:
        return a
    return a * a if p == 2 else B.call("pow", a, topi.scalar(p, v.dtype))


def lp_root(v: Expr, p: int) -> Expr:
    return B.call("pow", v, topi.scalar(1.0 / p, v.dtype))


def avg_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x, out_t = ins[0], ctx.out_types[0]
    win, _, begin, end = window_of(ctx, x)
    return [topi.pool(ctx.op, x, out_t.shape, win.kernel, win.strides, win.dilations, begin,
                      "avg", bool(ctx.attrs["count_include_pad"]), end, work_type(x.dtype),
                      x.dtype)]


def lp_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x, out_t = ins[0], ctx.out_types[0]
    p = ctx.attrs["p"]
    win, _, begin, _ = window_of(ctx, x)
    acc = work_type(x.dtype)
    red = topi.pool(ctx.op, x, out_t.shape, win.kernel, win.strides, win.dilations, begin,
                    "sum", acc=acc, value=lambda v: lp_term(v, p))
    return [topi.stage(f"{ctx.op}_root", out_t.shape,
                       lambda *i: topi.to_dtype(x.dtype, lp_root(red[i], p)), x.dtype)]


def max_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """As the reference's scan over taps with `v > best`: the max over the taps inside the
    input, except that a NaN first tap sticks (later NaNs are skipped); zero for a window
    with no tap inside. Indices: the first tap holding the max, as a flat offset."""
    x, out_t = ins[0], ctx.out_types[0]
    win, out, begin, _ = window_of(ctx, x)
    dims, kernel, nk = x.shape[2:], win.kernel, math.prod(win.kernel)
    isf = x.dtype.is_float

    def taps_at(o: Sequence[Expr], kk: Sequence[Expr]) -> tuple[list[Expr], Expr | None]:
        pos = topi.window_positions(o, kk, win.strides, win.dilations, begin)
        return pos, topi.window_guard(pos, dims, out, kernel, win.strides, win.dilations,
                                      begin)

    def best(*i: Expr) -> te.Reduction:
        rs = [te.rvar(f"rk{j}", k) for j, k in enumerate(kernel)]
        pos, cond = taps_at(i[2:], [r.var for r in rs])
        v = x[(i[0], i[1], *pos)]
        if isf:  # NaNs are skipped here; a NaN first tap is put back below
            v = B.select(B.call("isnan", v), topi.scalar(float("-inf"), x.dtype), v)
        return te.reduce("max", v, rs, where=cond)

    m = topi.stage(f"{ctx.op}_max", out_t.shape, best, x.dtype)

    def first_tap(o: Sequence[Expr]) -> tuple[list[Expr], Expr]:
        """Per-axis coordinates of the first tap inside the input, and the number inside."""
        kk, count = [], None
        for j, k in enumerate(kernel):
            base = o[j] * te.idx(win.strides[j]) - te.idx(begin[j])
            lo = te.idx(0) - B.floordiv(base, te.idx(win.dilations[j]))
            kk.append(B.min_(B.max_(te.idx(0), lo), te.idx(k - 1)))
            c = topi.window_count(o[j], k, win.strides[j], win.dilations[j], begin[j], 0,
                                  dims[j])
            count = c if count is None else count * c
        return kk, count

    def value(*i: Expr) -> Expr:
        kk, count = first_tap(i[2:])
        v = m[i]
        if isf:
            pos, _ = taps_at(i[2:], kk)
            first = x[(i[0], i[1], *(topi.safe_index(p, d) for p, d in zip(pos, dims,
                                                                          strict=True)))]
            v = B.select(B.call("isnan", first), first, v)
        return B.select(count > te.idx(0), v, topi.scalar(0, x.dtype))

    y = topi.stage(ctx.op, out_t.shape, value, x.dtype)
    if len(ctx.out_types) < 2:
        return [y]

    def arg(*i: Expr) -> te.Reduction:
        rs = [te.rvar(f"rk{j}", k) for j, k in enumerate(kernel)]
        pos, cond = taps_at(i[2:], [r.var for r in rs])
        tap = topi.flat_index(kernel, [r.var for r in rs])
        hit = B.eq(x[(i[0], i[1], *pos)], m[i])
        if isf:  # y is NaN only when the first tap is: then that tap
            hit = B.or_(hit, B.call("isnan", y[i]))
        return te.reduce("min", B.select(hit, tap, te.idx(nk)), rs, where=cond,
                         init=te.idx(nk))

    t = topi.stage(f"{ctx.op}_arg", out_t.shape, arg, D.int64)
    if ctx.attrs["storage_order"] == 1:
        strides = [math.prod(dims[:j]) for j in range(len(dims))]
    else:
        strides = [math.prod(dims[j + 1:]) for j in range(len(dims))]

    def index(*i: Expr) -> Expr:
        kk = topi.unflatten(kernel, topi.safe_index(t[i], nk))
        pos, _ = taps_at(i[2:], kk)
        base = (i[0] * te.idx(x.shape[1]) + i[1]) * te.idx(math.prod(dims))
        flat = base
        for p, st in zip(pos, strides, strict=True):
            flat = flat + p * te.idx(st)
        return B.select(t[i] < te.idx(nk), flat, base)

    return [y, topi.stage(f"{ctx.op}_idx", out_t.shape, index, D.int64)]


register(OpDef(
    "MaxPool", pool_infer(MAX_TYPES), max_ref, outputs=(1, 2), kind=Kind.COMPLEX_OUT_FUSABLE,
    compute=max_compute,
    attrs=dict(WINDOW_ATTRS, storage_order=Attr("int", 0)),
    doc="max over each window; optional flat argmax indices (row- or column-major)",
))
register(OpDef(
    "AveragePool", pool_infer(FLOATS), avg_ref, kind=Kind.COMPLEX_OUT_FUSABLE,
    compute=avg_compute,
    attrs=dict(WINDOW_ATTRS, count_include_pad=Attr("int", 0)),
    doc="mean over each window, with or without the pads in the divisor",
))
register(OpDef(
    "LpPool", pool_infer(FLOATS), lp_ref, kind=Kind.COMPLEX_OUT_FUSABLE, compute=lp_compute,
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


def global_compute(kind: str):
    """Global pooling lowered as one reduction over the spatial axes, in work precision."""

    def compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
        x, out_t = ins[0], ctx.out_types[0]
        acc = work_type(x.dtype)
        p = ctx.attrs.get("p", 2)
        spatial = x.shape[2:]

        def body(n: Expr, c: Expr, *_: Expr) -> te.Reduction:
            rs = [te.rvar(f"r{j}", d) for j, d in enumerate(spatial)]
            v = topi.to_dtype(acc, x[(n, c, *(r.var for r in rs))])
            return te.reduce("max" if kind == "max" else "sum",
                             lp_term(v, p) if kind == "lp" else v, rs)

        red = topi.stage(ctx.op, out_t.shape, body, acc)

        def final(*i: Expr) -> Expr:
            v = red[i]
            if kind == "avg":
                v = v / topi.scalar(math.prod(spatial), acc)
            elif kind == "lp":
                v = lp_root(v, p)
            return topi.to_dtype(x.dtype, v)

        return [topi.stage(f"{ctx.op}_out", out_t.shape, final, x.dtype)]

    return compute


register(OpDef("GlobalAveragePool", global_infer,
               global_pool(lambda x, a, _: np.mean(x, axis=a, keepdims=True)),
               kind=Kind.COMPLEX_OUT_FUSABLE, compute=global_compute("avg"),
               doc="mean over all spatial axes"))
register(OpDef("GlobalMaxPool", global_infer,
               # over an empty spatial extent: -inf, the identity the compute starts from
               global_pool(lambda x, a, _: np.max(x, axis=a, keepdims=True, initial=-np.inf)),
               kind=Kind.COMPLEX_OUT_FUSABLE, compute=global_compute("max"),
               doc="max over all spatial axes"))
register(OpDef("GlobalLpPool", global_infer, global_pool(_global_lp), attrs={"p": Attr("int", 2)},
               kind=Kind.COMPLEX_OUT_FUSABLE, compute=global_compute("lp"),
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


def unpool_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """A scatter as a gather: each output position takes the last input element whose index
    names it (the reference's last write wins), zero where none does. Indices address the
    inferred shape; `output_shape` pads or crops it at the end. A reduction over every input
    element per output element: quadratic, meant for modest sizes."""
    x, ind = ins[0], ins[1]
    out_t = ctx.out_types[0]
    win = make_window(ctx.attrs, ctx.attrs["kernel_shape"])
    inferred = tuple(x.shape[:2]) + tuple(unpool_dims(win, x.shape[2:]))
    if len(out_t.shape) != len(inferred):
        raise ctx.fail(f"output_shape {list(out_t.shape)} must have rank {len(inferred)}")
    total = math.prod(x.shape)

    def source(*i: Expr) -> te.Reduction:
        r = te.rvar("j", total)
        hit = B.eq(ind[topi.unflatten(x.shape, r.var)], topi.flat_index(inferred, i))
        return te.reduce("max", B.select(hit, r.var, te.idx(-1)), [r], init=te.idx(-1))

    src = topi.stage(f"{ctx.op}_src", out_t.shape, source, D.int64)

    def body(*i: Expr) -> Expr:
        conds = [src[i] >= te.idx(0)] + [i[k] < te.idx(d) for k, d in enumerate(inferred)
                                          if out_t.shape[k] > d]
        v = x[topi.unflatten(x.shape, topi.safe_index(src[i], total))]
        return B.select(all_of(conds), v, topi.scalar(0, x.dtype))

    return [topi.stage(ctx.op, out_t.shape, body, x.dtype)]


register(OpDef(
    "MaxUnpool", unpool_infer, unpool_ref, inputs=(2, 3), kind=Kind.OPAQUE,
    compute=unpool_compute, shape_inputs=(2,),
    attrs={"kernel_shape": Attr("ints"), "pads": Attr("ints", None),
           "strides": Attr("ints", None)},
    doc="scatter pooled values back to their argmax positions, zeros elsewhere",
))
