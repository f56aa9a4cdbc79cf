"""Detection and spatial-sampling ops: NonMaxSuppression, RoiAlign, GridSample, AffineGrid.

GridSample follows opset 20+ (modes linear/nearest/cubic, any number of spatial dims); the
opset-16 mode names (bilinear/bicubic) are renamed at import. RoiAlign before opset 16 had
no `coordinate_transformation_mode` and behaved as `output_half_pixel`.
"""

from __future__ import annotations

import itertools
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
    dim_eq,
    register,
)

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

FLOATS = (DType.bfloat16, DType.float16, DType.float32, DType.float64)


def _same(ctx: InferCtx, a: Dim, b: Dim, what: str) -> Dim:
    if dim_eq(a, b) is False:
        raise ctx.fail(f"{what} mismatch: {a} vs {b}")
    return a if isinstance(a, int) else b


def _rank(ctx: InferCtx, t: TensorType, rank: int, what: str) -> tuple[Dim, ...]:
    if t.rank is None:
        return (UNKNOWN,) * rank
    if t.rank != rank:
        raise ctx.fail(f"{what} must be {rank}-D, got shape {list(t.shape)}")
    return t.shape


# ---------------------------------------------------------------------------------------
# Lowering helpers

_BIG = 2.0**40  # float coordinates are clamped to this before an integer cast


def _c(v: float, dt: DType) -> Expr:
    return topi.scalar(v, dt)


def _int64(v: Expr) -> Expr:
    """Truncating cast of a float to int64 that is defined for NaN and huge values (they
    land far out of range, where every caller masks or clamps the index)."""
    return B.cast(DType.int64, topi.let(v, lambda u: B.select(
        B.call("isnan", u), _c(-_BIG, u.dtype), B.min_(B.max_(u, _c(-_BIG, u.dtype)),
                                                       _c(_BIG, u.dtype)))))


def _to_output(v: Expr, dt: DType) -> Expr:
    """A float result to the output dtype: ints truncate (NaN -> 0, clamped to the range),
    bool is != 0."""
    if dt.is_float:
        return B.cast(dt, v)
    if dt == DType.bool:
        return B.ne(v, _c(0.0, v.dtype))
    info, ft = np.iinfo(dt.np), v.dtype.np.type
    lo, hi = float(info.min), float(np.nextafter(ft(float(info.max) + 1.0), ft(0)))
    return B.cast(dt, topi.let(B.call("trunc", v), lambda u: B.select(
        B.call("isnan", u), _c(0.0, u.dtype), B.min_(B.max_(u, _c(lo, u.dtype)),
                                                      _c(hi, u.dtype)))))


# ---------------------------------------------------------------------------------------
# NonMaxSuppression


def _nms_infer(ctx: InferCtx) -> list[TensorType]:
    boxes, scores = ctx.input(0), ctx.input(1)
    if ctx.attrs["center_point_box"] not in (0, 1):
        raise ctx.fail(f"center_point_box must be 0 or 1, got {ctx.attrs['center_point_box']}")
    check_dtype(ctx, boxes, FLOATS, "boxes")
    if scores.dtype != boxes.dtype:
        raise ctx.fail(f"scores dtype {scores.dtype} differs from boxes dtype {boxes.dtype}")
    bshape = _rank(ctx, boxes, 3, "boxes")
    sshape = _rank(ctx, scores, 3, "scores")
    _same(ctx, bshape[2], 4, "boxes last dim (must be 4)")
    _same(ctx, bshape[0], sshape[0], "boxes/scores batch size")
    _same(ctx, bshape[1], sshape[2], "boxes/scores box count")
    for i, (what, dts) in enumerate((("max_output_boxes_per_class", (DType.int64,)),
                                     ("iou_threshold", (DType.float32,)),
                                     ("score_threshold", (DType.float32,))), start=2):
        t = ctx.input(i)
        if t is not None:
            check_dtype(ctx, t, dts, what)
            if t.rank is not None and (t.rank > 1 or (t.rank == 1 and t.shape[0] not in
                                                      (1, UNKNOWN))):
                raise ctx.fail(f"{what} must be a scalar, got shape {list(t.shape)}")
    iou = ctx.const(3)
    if iou is not None and iou.size and not 0.0 <= float(iou.reshape(-1)[0]) <= 1.0:
        raise ctx.fail(f"iou_threshold must be in [0, 1], got {float(iou.reshape(-1)[0])}")
    return [TensorType((UNKNOWN, 3), DType.int64)]


def _corners(boxes: np.ndarray, center: int) -> tuple[np.ndarray, ...]:
    """(y_min, x_min, y_max, x_max) in the boxes' dtype."""
    if center:
        xc, yc, w, h = (boxes[..., k] for k in range(4))
        return yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2
    y1, x1, y2, x2 = (boxes[..., k] for k in range(4))
    return np.minimum(y1, y2), np.minimum(x1, x2), np.maximum(y1, y2), np.maximum(x1, x2)


def _suppress_matrix(boxes: np.ndarray, center: int, thr) -> np.ndarray:
    """[i, j] = box i and box j overlap with IOU strictly above thr."""
    y0, x0, y1, x1 = (c[:, None] for c in _corners(boxes, center))
    Y0, X0, Y1, X1 = (c[None, :] for c in _corners(boxes, center))
    iw = np.minimum(x1, X1) - np.maximum(x0, X0)
    ih = np.minimum(y1, Y1) - np.maximum(y0, Y0)
    inter = iw * ih
    a1, a2 = (x1 - x0) * (y1 - y0), (X1 - X0) * (Y1 - Y0)
    union = a1 + a2 - inter
    ok = (iw > 0) & (ih > 0) & (inter > 0) & (a1 > 0) & (a2 > 0) & (union > 0)
    with np.errstate(all="ignore"):
        iou = inter / np.where(ok, union, 1)
    return ok & (iou > thr)


def _nms_ref(ctx: EvalCtx, ins: list) -> list[np.ndarray]:
    boxes, scores, max_out, iou_thr, score_thr = list(ins) + [None] * (5 - len(ins))
    limit = 0 if max_out is None or max_out.size == 0 else int(max_out.reshape(-1)[0])
    thr = boxes.dtype.type(0) if iou_thr is None or iou_thr.size == 0 else iou_thr.reshape(-1)[0]
    out: list[tuple[int, int, int]] = []
    if limit > 0:
        for b in range(boxes.shape[0]):
            sup = _suppress_matrix(boxes[b], ctx.attrs["center_point_box"], thr)
            for c in range(scores.shape[1]):
                s = scores[b, c]
                idx = np.arange(s.shape[0])
                if score_thr is not None and score_thr.size:
                    idx = idx[s > score_thr.reshape(-1)[0]]
                order = idx[np.lexsort((idx, -s[idx].astype(np.float64)))]
                kept: list[int] = []
                for i in order:
                    if len(kept) >= limit:
                        break
                    if not kept or not sup[i, kept].any():
                        kept.append(int(i))
                out.extend((b, c, i) for i in kept)
    return [np.array(out, dtype=np.int64).reshape(-1, 3)]


register(OpDef(
    name="NonMaxSuppression",
    attrs={"center_point_box": Attr("int", 0)},
    inputs=(2, 5),
    infer=_nms_infer,
    ref=_nms_ref,
    host=True,  # the number of kept boxes (the output's first dim) depends on the data
    kind=Kind.OPAQUE,
    doc="Greedy per-class non-maximum suppression; outputs [batch, class, box] triples.",
))


# ---------------------------------------------------------------------------------------
# RoiAlign


def _roi_upgrade(ictx) -> None:
    if ictx.opset < 16:
        ictx.attrs.setdefault("coordinate_transformation_mode", "output_half_pixel")


def _roi_infer(ctx: InferCtx) -> list[TensorType]:
    x, rois, idx = ctx.input(0), ctx.input(1), ctx.input(2)
    a = ctx.attrs
    check_dtype(ctx, x, FLOATS, "X")
    if rois.dtype != x.dtype:
        raise ctx.fail(f"rois dtype {rois.dtype} differs from X dtype {x.dtype}")
    check_dtype(ctx, idx, (DType.int64,), "batch_indices")
    if a["mode"] not in ("avg", "max"):
        raise ctx.fail(f"mode {a['mode']!r} is not avg or max")
    if a["coordinate_transformation_mode"] not in ("half_pixel", "output_half_pixel"):
        raise ctx.fail(f"coordinate_transformation_mode {a['coordinate_transformation_mode']!r}"
                       " is not half_pixel or output_half_pixel")
    for k in ("output_height", "output_width"):
        if a[k] < 1:
            raise ctx.fail(f"{k} must be positive, got {a[k]}")
    if a["sampling_ratio"] < 0:
        raise ctx.fail(f"sampling_ratio must be nonnegative, got {a['sampling_ratio']}")
    xs = _rank(ctx, x, 4, "X")
    rs = _rank(ctx, rois, 2, "rois")
    (n_idx,) = _rank(ctx, idx, 1, "batch_indices")
    _same(ctx, rs[1], 4, "rois last dim (must be 4)")
    n = _same(ctx, rs[0], n_idx, "rois/batch_indices count")
    return [TensorType((n, xs[1], a["output_height"], a["output_width"]), x.dtype)]


def _bilinear_taps(c: np.ndarray, size: int):
    """Low/high indices and weights along one axis, ORT/Caffe2 style (clamped at the end)."""
    c = np.maximum(c, 0)
    low = c.astype(np.int64)
    edge = low >= size - 1
    low = np.where(edge, size - 1, low)
    high = np.where(edge, size - 1, low + 1)
    frac = np.where(edge, 0, c - low.astype(c.dtype)).astype(c.dtype)
    return low, high, 1 - frac, frac


def _roi_ref(ctx: EvalCtx, ins: list) -> list[np.ndarray]:
    x, rois, bidx = ins
    a = ctx.attrs
    ph, pw = a["output_height"], a["output_width"]
    half = a["coordinate_transformation_mode"] == "half_pixel"
    _, ch, height, width = x.shape
    # coordinates in the input precision (at least float32), as the spec's kernels do
    ct = np.dtype(np.float64 if x.dtype == np.float64 else np.float32).type
    data = x.astype(ct)
    if bidx.size and (bidx.min() < 0 or bidx.max() >= x.shape[0]):
        raise ExecutionError(f"RoiAlign: batch_indices must lie in [0, {x.shape[0]})")
    y = np.zeros((rois.shape[0], ch, ph, pw), ct)
    for r in range(rois.shape[0]):
        x0, y0, x1, y1 = rois[r].astype(ct) * ct(a["spatial_scale"]) - ct(0.5 if half else 0)
        rw, rh = x1 - x0, y1 - y0
        if not half:
            rw, rh = max(rw, ct(1)), max(rh, ct(1))
        bh, bw = rh / ct(ph), rw / ct(pw)
        gh = a["sampling_ratio"] or int(np.ceil(rh / ph))
        gw = a["sampling_ratio"] or int(np.ceil(rw / pw))
        # sample coordinates: (ph, gh) along y and (pw, gw) along x
        ys = (y0 + np.arange(ph, dtype=ct)[:, None] * bh
              + (np.arange(gh, dtype=ct)[None, :] + ct(0.5)) * bh / ct(gh))
        xs = (x0 + np.arange(pw, dtype=ct)[:, None] * bw
              + (np.arange(gw, dtype=ct)[None, :] + ct(0.5)) * bw / ct(gw))
        yv = np.broadcast_to(ys[:, None, :, None], (ph, pw, gh, gw))
        xv = np.broadcast_to(xs[None, :, None, :], (ph, pw, gh, gw))
        inside = (yv >= -1.0) & (yv <= height) & (xv >= -1.0) & (xv <= width)
        yl, yh, hy, ly = _bilinear_taps(yv, height)
        xl, xh, hx, lx = _bilinear_taps(xv, width)
        img = data[int(bidx[r])]  # (C, H, W)
        terms = [(hy * hx, yl, xl), (hy * lx, yl, xh), (ly * hx, yh, xl), (ly * lx, yh, xh)]
        vals = [np.where(inside, w, ct(0)) * img[:, yi, xi] for w, yi, xi in terms]
        if a["mode"] == "avg":
            s = vals[0] + vals[1] + vals[2] + vals[3]
            y[r] = s.sum(axis=(-2, -1)) / max(gh * gw, 1)
        else:
            m = np.maximum(np.maximum(np.maximum(vals[0], vals[1]), vals[2]), vals[3])
            y[r] = m.max(axis=(-2, -1)) if gh * gw else 0
    return [y.astype(x.dtype)]


def _roi_compute(ctx: LowerCtx, ins: list) -> list[te.Tensor]:
    x, rois, bidx = ins
    a = ctx.attrs
    ph, pw, ratio = a["output_height"], a["output_width"], a["sampling_ratio"]
    if ratio == 0:
        raise ctx.fail("sampling_ratio=0 (adaptive sampling grids, sized by each roi at run "
                       "time) needs dynamic loop extents")
    half = a["coordinate_transformation_mode"] == "half_pixel"
    _, _, height, width = x.shape
    ct = DType.float64 if x.dtype == DType.float64 else DType.float32

    def body(r, ch, py, px):
        iy, ix = te.rvar("iy", ratio), te.rvar("ix", ratio)

        def roi(k: int) -> Expr:
            v = rois[r, te.idx(k)]
            v = (v if v.dtype == ct else B.cast(ct, v)) * _c(a["spatial_scale"], ct)
            return v - _c(0.5, ct) if half else v

        def coord(lo_k: int, hi_k: int, p: Expr, pn: int, i: Expr) -> Expr:
            def go(c0):
                size = roi(hi_k) - c0
                if not half:
                    size = B.max_(size, _c(1.0, ct))
                return topi.let(size / _c(float(pn), ct), lambda bsz: c0 + B.cast(ct, p) * bsz
                                + (B.cast(ct, i) + _c(0.5, ct)) * bsz / _c(float(ratio), ct))
            return topi.let(roi(lo_k), go, "c0")

        def taps(c: Expr, size: int):
            c = B.max_(c, _c(0.0, ct))
            c = B.select(c < _c(float(size), ct), c, _c(float(size), ct))  # NaN -> edge
            low = B.cast(DType.int64, c)
            edge = low >= te.idx(size - 1)
            lo = B.select(edge, te.idx(size - 1), low)
            hi = B.select(edge, te.idx(size - 1), low + te.idx(1))
            frac = B.select(edge, _c(0.0, ct), c - B.cast(ct, low))
            return lo, hi, _c(1.0, ct) - frac, frac

        def sample(yv: Expr, xv: Expr) -> Expr:
            inside = B.and_(B.and_(yv >= _c(-1.0, ct), yv <= _c(float(height), ct)),
                            B.and_(xv >= _c(-1.0, ct), xv <= _c(float(width), ct)))
            yl, yh, hy, ly = taps(yv, height)
            xl, xh, hx, lx = taps(xv, width)
            n = topi.safe_index(bidx[(r,)], x.shape[0])

            def px_(yi, xi):
                v = x[n, ch, yi, xi]
                return v if v.dtype == ct else B.cast(ct, v)

            terms = [(hy * hx, yl, xl), (hy * lx, yl, xh), (ly * hx, yh, xl), (ly * lx, yh, xh)]
            vals = [B.select(inside, w, _c(0.0, ct)) * px_(yi, xi) for w, yi, xi in terms]
            if a["mode"] == "avg":
                return vals[0] + vals[1] + vals[2] + vals[3]
            return B.max_(B.max_(B.max_(vals[0], vals[1]), vals[2]), vals[3])

        yv = coord(1, 3, py, ph, iy.var)
        xv = coord(0, 2, px, pw, ix.var)
        v = topi.let(yv, lambda yy: topi.let(xv, lambda xx: sample(yy, xx), "xv"), "yv")
        return te.reduce("sum" if a["mode"] == "avg" else "max", v, [iy, ix])

    acc = te.compute("roi", ctx.out_types[0].shape, body, ct)
    div = _c(float(ratio * ratio), ct)
    return [te.compute("roi_out", acc.shape, lambda *i: B.cast(
        x.dtype, acc[i] / div if a["mode"] == "avg" else acc[i]), x.dtype)]


register(OpDef(
    name="RoiAlign",
    attrs={
        "coordinate_transformation_mode": Attr("string", "half_pixel"),
        "mode": Attr("string", "avg"),
        "output_height": Attr("int", 1),
        "output_width": Attr("int", 1),
        "sampling_ratio": Attr("int", 0),
        "spatial_scale": Attr("float", 1.0),
    },
    inputs=(3, 3),
    infer=_roi_infer,
    ref=_roi_ref,
    compute=_roi_compute,
    upgrade=_roi_upgrade,
    kind=Kind.OPAQUE,
    doc="Region-of-interest align pooling (Mask R-CNN) with bilinear sampling.",
))


# ---------------------------------------------------------------------------------------
# GridSample

GS_MODES = ("linear", "nearest", "cubic")
GS_PADDING = ("zeros", "border", "reflection")
GS_DTYPES = FLOATS + (
    DType.bool, DType.int8, DType.int16, DType.int32, DType.int64,
    DType.uint8, DType.uint16, DType.uint32, DType.uint64, DType.complex64, DType.complex128,
)


def _gs_upgrade(ictx) -> None:
    mode = ictx.attrs.get("mode", "bilinear" if ictx.opset < 20 else "linear")
    ictx.attrs["mode"] = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)


def _gs_infer(ctx: InferCtx) -> list[TensorType]:
    x, grid = ctx.input(0), ctx.input(1)
    a = ctx.attrs
    check_dtype(ctx, x, GS_DTYPES, "X")
    check_dtype(ctx, grid, FLOATS, "grid")
    if a["mode"] not in GS_MODES:
        raise ctx.fail(f"mode {a['mode']!r} is not one of {', '.join(GS_MODES)}")
    if a["padding_mode"] not in GS_PADDING:
        raise ctx.fail(f"padding_mode {a['padding_mode']!r} is not one of {', '.join(GS_PADDING)}")
    if a["align_corners"] not in (0, 1):
        raise ctx.fail("align_corners must be 0 or 1")
    rank = x.rank if x.rank is not None else grid.rank
    if rank is None:
        return [TensorType(None, x.dtype)]
    if rank < 3:
        raise ctx.fail(f"X must have rank >= 3 (N, C, spatial...), got {rank}")
    xs = _rank(ctx, x, rank, "X")
    gs = _rank(ctx, grid, rank, "grid")
    _same(ctx, gs[-1], rank - 2, "grid last dim (number of spatial dims)")
    n = _same(ctx, xs[0], gs[0], "X/grid batch size")
    out = (n, xs[1], *gs[1:-1])
    if 0 in xs[2:] and all(isinstance(d, int) and d > 0 for d in out):
        raise ctx.fail(f"X spatial shape {list(xs[2:])} is empty, nothing to sample")
    return [TensorType(out, x.dtype)]


def _reflect(c: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect coordinates at the borders [lo, hi] until they fall inside."""
    span = hi - lo
    if span <= 0:
        return np.full_like(c, lo)
    below, above = c < lo, c > hi
    d = np.where(below, lo - c, c - hi)
    flips = np.floor(d / span)
    r = d - flips * span
    even = flips % 2 == 0
    from_lo, from_hi = lo + r, hi - r
    return np.where(below, np.where(even, from_lo, from_hi),
                    np.where(above, np.where(even, from_hi, from_lo), c))


def _keys_cubic(s: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with A = -0.75 at distance s."""
    A = -0.75
    s = np.abs(s)
    near = ((A + 2) * s - (A + 3)) * s * s + 1
    far = ((A * s - 5 * A) * s + 8 * A) * s - 4 * A
    return np.where(s <= 1, near, np.where(s < 2, far, 0))


def _gs_ref(ctx: EvalCtx, ins: list) -> list[np.ndarray]:
    x, grid = ins
    a = ctx.attrs
    mode, pad, align = a["mode"], a["padding_mode"], a["align_corners"]
    n, ch, *dims = x.shape
    r = len(dims)
    out_sp = grid.shape[1:-1]
    ct = np.float64 if np.float64 in (x.dtype, grid.dtype) else np.float32
    if grid.shape[0] != n or grid.shape[-1] != r:
        raise ExecutionError(f"GridSample: grid shape {list(grid.shape)} does not fit X "
                             f"shape {list(x.shape)}")
    if n * ch * int(np.prod(out_sp)) == 0:
        return [np.zeros((n, ch, *out_sp), x.dtype)]
    if 0 in dims:
        raise ExecutionError(f"GridSample: X spatial shape {dims} is empty, nothing to sample")
    # (N, P, r), coords innermost-dim first
    g = grid.reshape(n, int(np.prod(out_sp)), r).astype(ct)
    vt = x.dtype if x.dtype.kind == "c" else ct
    flat = x.reshape(n, ch, int(np.prod(dims))).astype(vt)
    # per spatial axis: list of (index, weight) taps, each (N, P)
    axes = []
    for i, d in enumerate(dims):
        gc = g[..., r - 1 - i]
        c = (gc + 1) / 2 * (d - 1) if align else ((gc + 1) * d - 1) / 2
        c = c.astype(ct)
        lo, hi = (0.0, d - 1.0) if align else (-0.5, d - 0.5)
        if mode == "nearest":
            c = np.rint(c)
        out = (c < lo) | (c > hi)
        if pad == "border":
            c = np.where(out, np.clip(c, 0, d - 1), c)
        elif pad == "reflection":
            c = np.where(out, _reflect(c, lo, hi), c)
        if mode == "nearest":
            taps = [(np.trunc(c).astype(np.int64), np.ones_like(c))]
        else:
            base = np.floor(c)
            t = c - base
            base = base.astype(np.int64)
            if mode == "linear":
                taps = [(base, 1 - t), (base + 1, t)]
            else:
                taps = [(base + k, _keys_cubic(t - k).astype(ct)) for k in (-1, 0, 1, 2)]
        axes.append([(_pad_index(idx, d, pad, lo, hi), w) for idx, w in taps])
    strides = [int(np.prod(dims[i + 1:])) for i in range(r)]
    acc = np.zeros((n, ch, g.shape[1]), vt)
    for combo in itertools.product(*axes):
        lin = np.zeros_like(combo[0][0][0])
        w = np.ones(lin.shape, ct)
        valid = np.ones(lin.shape, bool)
        for ((idx, ok), wt), s in zip(combo, strides, strict=True):
            lin = lin + idx * s
            w = w * wt
            valid &= ok
        v = np.take_along_axis(flat, lin[:, None, :], axis=2)
        acc = acc + np.where(valid[:, None, :], v * w[:, None, :], 0)
    y = acc.reshape(n, ch, *out_sp)
    if x.dtype.kind in "iub":
        y = np.trunc(y) if x.dtype.kind != "b" else y != 0
    return [y.astype(x.dtype)]


def _pad_index(idx: np.ndarray, d: int, pad: str, lo: float, hi: float):
    """(index clamped into range, in-range flag) for one tap under the padding mode."""
    if pad == "zeros":
        ok = (idx >= 0) & (idx < d)
        return np.clip(idx, 0, d - 1), ok
    if pad == "border":
        return np.clip(idx, 0, d - 1), np.ones(idx.shape, bool)
    ref = np.trunc(_reflect(idx.astype(np.float64), lo, hi)).astype(np.int64)
    return np.clip(ref, 0, d - 1), np.ones(idx.shape, bool)


def _reflect_expr(c: Expr, lo: float, hi: float) -> Expr:
    """`_reflect` on one coordinate."""
    dt = c.dtype
    span = hi - lo
    if span <= 0:
        return _c(lo, dt)

    def go(c: Expr) -> Expr:
        below, above = c < _c(lo, dt), c > _c(hi, dt)
        d = B.select(below, _c(lo, dt) - c, c - _c(hi, dt))

        def fl(d: Expr) -> Expr:
            flips = B.call("floor", d / _c(span, dt))
            r = d - flips * _c(span, dt)
            even = B.eq(B.call("fmod", flips, _c(2.0, dt)), _c(0.0, dt))
            from_lo, from_hi = _c(lo, dt) + r, _c(hi, dt) - r
            return B.select(below, B.select(even, from_lo, from_hi),
                            B.select(above, B.select(even, from_hi, from_lo), c))

        return topi.let(d, fl, "d")

    return topi.let(c, go, "c")


def _keys_expr(s: Expr) -> Expr:
    """`_keys_cubic` at distance s."""
    dt = s.dtype
    A = -0.75

    def go(s: Expr) -> Expr:
        near = ((_c(A + 2, dt) * s - _c(A + 3, dt)) * s * s + _c(1.0, dt))
        far = ((_c(A, dt) * s - _c(5 * A, dt)) * s + _c(8 * A, dt)) * s - _c(4 * A, dt)
        return B.select(s <= _c(1.0, dt), near, B.select(s < _c(2.0, dt), far, _c(0.0, dt)))

    return topi.let(B.call("abs", s), go, "s")


def _gs_compute(ctx: LowerCtx, ins: list) -> list[te.Tensor]:
    x, grid = ins
    a = ctx.attrs
    mode, pad, align = a["mode"], a["padding_mode"], a["align_corners"]
    dims = x.shape[2:]
    r = len(dims)
    ct = DType.float64 if DType.float64 in (x.dtype, grid.dtype) else DType.float32
    ntaps = {"nearest": 1, "linear": 2, "cubic": 4}[mode]
    out = ctx.out_types[0]

    def body(n, ch, *p):
        rv = [te.rvar(f"t{i}", ntaps) for i in range(r)]
        index, weight, valid = [], None, None
        for i, d in enumerate(dims):
            g = grid[(n, *p, te.idx(r - 1 - i))]
            gc = g if g.dtype == ct else B.cast(ct, g)
            if align:
                c = (gc + _c(1.0, ct)) / _c(2.0, ct) * _c(float(d - 1), ct)
            else:
                c = ((gc + _c(1.0, ct)) * _c(float(d), ct) - _c(1.0, ct)) / _c(2.0, ct)
            lo, hi = (0.0, d - 1.0) if align else (-0.5, d - 0.5)
            if mode == "nearest":
                c = B.call("round", c)
            ix, w, ok = _gs_axis(c, rv[i].var, d, lo, hi, mode, pad)
            index.append(ix)
            weight = w if weight is None else weight * w
            if ok is not None:
                valid = ok if valid is None else B.and_(valid, ok)
        v = x[(n, ch, *index)]
        v = v if v.dtype == ct else B.cast(ct, v)
        term = v * weight
        if valid is not None:
            term = B.select(valid, term, _c(0.0, ct))
        return te.reduce("sum", term, rv)

    acc = te.compute("gs", out.shape, body, ct)
    return [te.compute("gs_out", out.shape, lambda *i: _to_output(acc[i], out.dtype),
                       out.dtype)]


def _gs_axis(c: Expr, k: Expr, d: int, lo: float, hi: float, mode: str, pad: str):
    """(index, weight, in-range flag or None) of tap k along one axis."""
    ct = c.dtype

    def padded(c: Expr):
        outside = B.or_(c < _c(lo, ct), c > _c(hi, ct))
        if pad == "border":
            return B.select(outside, B.min_(B.max_(c, _c(0.0, ct)), _c(d - 1.0, ct)), c)
        if pad == "reflection":
            return B.select(outside, _reflect_expr(c, lo, hi), c)
        return c

    def taps(c: Expr):
        if mode == "nearest":
            return _int64(B.call("trunc", c)), _c(1.0, ct)
        base = B.call("floor", c)
        t = c - base
        bi = _int64(base)
        if mode == "linear":
            return bi + k, B.select(B.eq(k, te.idx(0)), _c(1.0, ct) - t, t)
        kf = B.cast(ct, k - te.idx(1))
        return bi + k - te.idx(1), _keys_expr(t - kf)

    ix, w = taps(padded(c))
    if pad == "zeros":
        ok = B.and_(ix >= te.idx(0), ix < te.idx(d))
        return topi.safe_index(ix, d), w, ok
    if pad == "border":
        return topi.safe_index(ix, d), w, None
    f64 = DType.float64
    ref = _int64(B.call("trunc", _reflect_expr(B.cast(f64, ix), lo, hi)))
    return topi.safe_index(ref, d), w, None


register(OpDef(
    name="GridSample",
    attrs={
        "align_corners": Attr("int", 0),
        "mode": Attr("string", "linear"),
        "padding_mode": Attr("string", "zeros"),
    },
    inputs=(2, 2),
    infer=_gs_infer,
    ref=_gs_ref,
    compute=_gs_compute,
    upgrade=_gs_upgrade,
    kind=Kind.OPAQUE,
    doc="Samples X at normalized grid locations (N-linear, nearest or N-cubic).",
))


# ---------------------------------------------------------------------------------------
# AffineGrid


def _ag_infer(ctx: InferCtx) -> list[TensorType]:
    theta, size = ctx.input(0), ctx.input(1)
    check_dtype(ctx, theta, FLOATS, "theta")
    check_dtype(ctx, size, (DType.int64,), "size")
    if ctx.attrs["align_corners"] not in (0, 1):
        raise ctx.fail("align_corners must be 0 or 1")
    ts = _rank(ctx, theta, 3, "theta")
    (slen,) = _rank(ctx, size, 1, "size")
    sv = ctx.const(1)
    if sv is not None:
        slen = len(sv)
    if slen == UNKNOWN and isinstance(ts[1], int):
        slen = ts[1] + 2
    if slen == UNKNOWN:
        return [TensorType(None, theta.dtype)]
    if slen not in (4, 5):
        raise ctx.fail(f"size must have 4 (2-D) or 5 (3-D) elements, got {slen}")
    sp = slen - 2
    _same(ctx, ts[1], sp, "theta rows (spatial dims)")
    _same(ctx, ts[2], sp + 1, "theta columns (spatial dims + 1)")
    if sv is not None:
        if (sv < 1).any():
            raise ctx.fail(f"size must be positive, got {sv.tolist()}")
        n = _same(ctx, ts[0], int(sv[0]), "theta/size batch size")
        return [TensorType((n, *(int(v) for v in sv[2:]), sp), theta.dtype)]
    return [TensorType((ts[0],) + (UNKNOWN,) * sp + (sp,), theta.dtype)]


def _ag_ref(ctx: EvalCtx, ins: list) -> list[np.ndarray]:
    theta, size = ins
    sp = theta.shape[1]
    if size.shape != (sp + 2,) or size[0] != theta.shape[0] or (size < 1).any():
        raise ExecutionError(f"AffineGrid: size {size.tolist()} does not fit theta "
                             f"{list(theta.shape)}")
    dims = [int(v) for v in size[2:]]
    align = ctx.attrs["align_corners"]

    def axis(d: int) -> np.ndarray:
        if d == 1 and align:
            return np.array([-1.0])  # as onnxruntime and the ONNX reference (torch gives 0)
        i = np.arange(d, dtype=np.float64)
        return i * 2 / (d - 1) - 1 if align else (2 * i + 1) / d - 1

    # homogeneous base coordinates, innermost spatial dim first: (x, y[, z], 1)
    mesh = np.meshgrid(*[axis(d) for d in dims], indexing="ij")
    base = np.stack([*mesh[::-1], np.ones(dims)], axis=-1).reshape(-1, len(dims) + 1)
    grid = np.einsum("pk,njk->npj", base, theta.astype(np.float64))
    return [grid.reshape(theta.shape[0], *dims, len(dims)).astype(theta.dtype)]


def _ag_compute(ctx: LowerCtx, ins: list) -> list[te.Tensor]:
    theta = ins[0]
    out = ctx.out_types[0]
    dims = out.shape[1:-1]
    sp = len(dims)
    align = ctx.attrs["align_corners"]
    f64 = DType.float64

    def axis(i: Expr, d: int) -> Expr:
        if d == 1 and align:
            return _c(-1.0, f64)
        fi = B.cast(f64, i)
        if align:
            return fi * _c(2.0, f64) / _c(float(d - 1), f64) - _c(1.0, f64)
        return (_c(2.0, f64) * fi + _c(1.0, f64)) / _c(float(d), f64) - _c(1.0, f64)

    def body(n, *rest):
        p, j = rest[:-1], rest[-1]
        base = [axis(p[sp - 1 - k], dims[sp - 1 - k]) for k in range(sp)] + [_c(1.0, f64)]
        acc = None
        for k, bk in enumerate(base):
            t = theta[n, j, te.idx(k)]
            term = bk * (t if t.dtype == f64 else B.cast(f64, t))
            acc = term if acc is None else acc + term
        return B.cast(out.dtype, acc)

    return [te.compute("affine_grid", out.shape, body, out.dtype)]


register(OpDef(
    name="AffineGrid",
    attrs={"align_corners": Attr("int", 0)},
    inputs=(2, 2),
    infer=_ag_infer,
    ref=_ag_ref,
    compute=_ag_compute,
    shape_inputs=(1,),
    kind=Kind.OPAQUE,
    doc="Sampling grid of an affine transform (for GridSample).",
))
