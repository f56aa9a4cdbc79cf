"""Resize (opset 19 semantics) and the deprecated Upsample, imported as Resize.

The reference resamples one axis at a time (resizing is separable): each output coordinate
maps to a source coordinate by the coordinate transformation mode, then a nearest, linear or
cubic kernel (stretched by 1/scale when antialiasing a downscale) weighs the neighbouring
input samples, with indices clamped to the edge. Arithmetic is float64; the result is cast
back to the input dtype (integers rounded half to even and saturated).

Where the spec leaves room we follow ONNX's own conformance data: align_corners and
tf_crop_and_resize use the fractional target length `scale * length_original` when the
output comes from scales (onnxruntime uses the integer length); pytorch_half_pixel maps a
single output to 0 as the spec says. Resize-10 and Upsample take asymmetric coordinates and
round nearest samples down (as onnx's version converter does; onnxruntime rounds up when
downsampling).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
from compiler.lower.te import INDEX, Tensor
from compiler.ops.base import Attr, EvalCtx, InferCtx, Kind, OpDef, register
from compiler.ops.shape import fill, norm_axes, req, rt_axes, rt_fail, vec_len

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

MODES = ("nearest", "linear", "cubic")
COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
               "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
POLICIES = ("stretch", "not_larger", "not_smaller")
FLOATS = (DType.float16, DType.bfloat16, DType.float32, DType.float64)


# ---------------------------------------------------------------------------------------
# Import: older Resize and Upsample -> opset-19 Resize


def _normalize(ictx) -> None:
    """Drop empty constant scales/roi and a roi the coordinate mode ignores."""
    for i in (2, 1):
        v = ictx.const(i)
        if v is not None and v.size == 0:
            ictx.inputs[i] = ""
    if ictx.attrs.get("coordinate_transformation_mode") != "tf_crop_and_resize":
        if len(ictx.inputs) > 1:
            ictx.inputs[1] = ""


def _from_v10(ictx, mode: str) -> None:
    """Upsample and Resize-10: (X, scales), asymmetric coordinates, nearest rounds down."""
    ictx.attrs = {"mode": "linear" if mode in ("linear", "bilinear") else mode,
                  "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}


def _resize_upgrade(ictx) -> None:
    if ictx.opset < 11:
        _from_v10(ictx, ictx.attrs.get("mode", "nearest"))
        ictx.inputs[1:] = ["", ictx.inputs[1]]
    _normalize(ictx)


def _upsample_upgrade(ictx) -> None:
    mode = ictx.attrs.get("mode", "nearest")
    if "scales" in ictx.attrs:  # Upsample-7
        scales = ictx.add_const(list(ictx.attrs.pop("scales")), np.float32)
    elif len(ictx.inputs) > 1 and ictx.inputs[1]:
        scales = ictx.inputs[1]
    else:
        raise ictx.fail("scales is required")
    if ictx.attrs.keys() - {"mode"}:
        raise ictx.fail(f"unknown attributes {sorted(ictx.attrs.keys() - {'mode'})}")
    _from_v10(ictx, mode)
    ictx.inputs[1:] = ["", scales]
    ictx.op = "Resize"
    _normalize(ictx)


# ---------------------------------------------------------------------------------------
# Output sizes


def resize_plan(in_dims: list[Dim], axes: list[int], scales, sizes, policy: str):
    """(out_dims, scale per axis, output_width per axis) for the resized axes.

    `scales`/`sizes` are lists aligned with `axes`, or None. Dims may be symbolic, in which
    case the matching outputs are UNKNOWN. `output_width` is the (possibly fractional)
    target length the coordinate transforms use.
    """
    out = list(in_dims)
    scale = {a: 1.0 for a in axes}
    width: dict[int, float] = {}
    if scales is not None:
        for a, s in zip(axes, scales, strict=True):
            d = in_dims[a]
            scale[a] = float(s)
            out[a] = math.floor(d * scale[a]) if isinstance(d, int) else UNKNOWN
            if isinstance(d, int):
                width[a] = d * scale[a]
        return out, scale, width
    if policy == "stretch":
        for a, n in zip(axes, sizes, strict=True):
            d = in_dims[a]
            out[a] = int(n)
            if isinstance(d, int):
                scale[a], width[a] = (n / d if d else 1.0), float(n)
        return out, scale, width
    dims = [in_dims[a] for a in axes]
    if not all(isinstance(d, int) and d > 0 for d in dims):
        return [UNKNOWN if a in axes else d for a, d in enumerate(in_dims)], scale, width
    ratios = [n / d for n, d in zip(sizes, dims, strict=True)]
    s = min(ratios) if policy == "not_larger" else max(ratios)
    for a in axes:
        scale[a], width[a] = s, s * in_dims[a]
        out[a] = math.floor(s * in_dims[a] + 0.5)
    return out, scale, width


def _check_attrs(ctx) -> None:
    a = ctx.attrs
    for name, allowed in (("mode", MODES), ("coordinate_transformation_mode", COORD_MODES),
                          ("nearest_mode", NEAREST_MODES),
                          ("keep_aspect_ratio_policy", POLICIES)):
        if a[name] not in allowed:
            raise ctx.fail(f"{name} must be one of {', '.join(allowed)}, got {a[name]!r}")
    for name in ("antialias", "exclude_outside"):
        if a[name] not in (0, 1):
            raise ctx.fail(f"{name} must be 0 or 1, got {a[name]}")


def _resize_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0, "X")
    _check_attrs(ctx)
    if not (t.dtype.is_int or t.dtype.is_float):
        raise ctx.fail(f"X dtype {t.dtype} not supported")
    roi, sc, sz = ctx.input(1), ctx.input(2), ctx.input(3)
    for v, what, dtypes in ((roi, "roi", FLOATS), (sc, "scales", (DType.float32,)),
                            (sz, "sizes", (DType.int64,))):
        if v is not None:
            if v.dtype not in dtypes:
                raise ctx.fail(f"{what} dtype {v.dtype} not supported")
            if v.rank is not None and v.rank != 1:
                raise ctx.fail(f"{what} must be 1-D, got rank {v.rank}")
    if sc is not None and sz is not None and ctx.const(2) is None:
        sc = None  # a scales input that must be empty at run time (the opset-11 style)
    if (sc is None) == (sz is None):
        raise ctx.fail("exactly one of scales and sizes must be given")
    if ctx.attrs["coordinate_transformation_mode"] == "tf_crop_and_resize" and roi is None:
        raise ctx.fail("tf_crop_and_resize needs the roi input")
    if t.shape is None:
        return [TensorType(None, t.dtype)]
    rank = len(t.shape)
    axes = ctx.attrs.get("axes")
    axes = list(range(rank)) if axes is None else norm_axes(ctx, axes, rank)
    vals = ctx.const(2 if sc is not None else 3)
    n = vec_len(sc if sc is not None else sz) if vals is None else vals.size
    if n is not None and n != len(axes):
        raise ctx.fail(f"{'scales' if sc is not None else 'sizes'} has {n} entries, "
                       f"expected {len(axes)}")
    nroi = vec_len(roi)
    if nroi is not None and nroi != 2 * len(axes):
        raise ctx.fail(f"roi has {nroi} entries, expected {2 * len(axes)}")
    if vals is None:
        return [TensorType(tuple(UNKNOWN if i in axes else d for i, d in enumerate(t.shape)),
                           t.dtype)]
    vals = vals.reshape(-1).tolist()
    if sc is not None and any(not v > 0 for v in vals):
        raise ctx.fail(f"scales {vals} must be positive")
    if sz is not None and any(v < 0 for v in vals):
        raise ctx.fail(f"sizes {vals} must be non-negative")
    policy = ctx.attrs["keep_aspect_ratio_policy"]
    if sz is not None and policy != "stretch" and any(t.shape[a] == 0 for a in axes):
        raise ctx.fail(f"keep_aspect_ratio_policy {policy!r} needs non-empty axes, input is "
                       f"{t}")
    out, _, _ = resize_plan(list(t.shape), axes, vals if sc is not None else None,
                            vals if sz is not None else None,
                            ctx.attrs["keep_aspect_ratio_policy"])
    return [TensorType(tuple(out), t.dtype)]


# ---------------------------------------------------------------------------------------
# Reference


def source_coords(mode: str, y: np.ndarray, scale: float, n_in: int, n_out: int,
                  width: float, roi: tuple[float, float] | None) -> np.ndarray:
    """Map output coordinates y (float64) to input coordinates."""
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / width)
        return offset + (y + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (y + 0.5) / scale - 0.5 if n_out > 1 else np.zeros_like(y)
    if mode == "align_corners":
        return np.zeros_like(y) if width == 1 else y * (n_in - 1) / (width - 1)
    if mode == "asymmetric":
        return y / scale
    if mode == "tf_half_pixel_for_nn":
        return (y + 0.5) / scale
    start, end = roi if roi is not None else (0.0, 1.0)
    if width == 1:
        return np.full_like(y, (end - start) * (n_in - 1) / 2 + start * (n_in - 1))
    return y * (end - start) * (n_in - 1) / (width - 1) + start * (n_in - 1)


def _cubic(d: np.ndarray, a: float) -> np.ndarray:
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _taps(x: np.ndarray, attrs, scale: float, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights), each (n_out, taps): the input samples each output mixes."""
    mode = attrs["mode"]
    fl = np.floor(x)
    if mode == "nearest":
        frac = x - fl
        nm = attrs["nearest_mode"]
        up = {"floor": np.zeros_like(x, dtype=bool), "ceil": frac > 0,
              "round_prefer_floor": frac > 0.5, "round_prefer_ceil": frac >= 0.5}[nm]
        return (fl + up).astype(np.int64)[:, None], np.ones((len(x), 1))
    radius = 1.0 if mode == "linear" else 2.0
    s = min(scale, 1.0) if attrs["antialias"] else 1.0
    reach = int(math.ceil(radius / s))
    pos = fl[:, None] + np.arange(-reach, reach + 2)[None, :]
    d = (pos - x[:, None]) * s
    w = np.maximum(0.0, 1 - np.abs(d)) if mode == "linear" else _cubic(d, attrs["cubic_coeff_a"])
    if attrs["antialias"]:
        w = w / w.sum(axis=1, keepdims=True)
    if attrs["exclude_outside"]:
        w = np.where((pos < 0) | (pos >= n_in), 0.0, w)
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    return pos.astype(np.int64), w


def resample_axis(data: np.ndarray, axis: int, n_out: int, scale: float, width: float,
                  roi: tuple[float, float] | None, attrs) -> np.ndarray:
    n_in = data.shape[axis]
    if n_out == 0:
        return np.take(data, np.zeros(0, np.int64), axis=axis)
    if n_in == 0:
        raise rt_fail("Resize", f"cannot resize an empty axis {axis} to {n_out}")
    y = np.arange(n_out, dtype=np.float64)
    cmode = attrs["coordinate_transformation_mode"]
    x = source_coords(cmode, y, scale, n_in, n_out, width, roi)
    idx, w = _taps(x, attrs, scale, n_in)
    idx = np.clip(idx, 0, n_in - 1)
    shape = [1] * data.ndim
    shape[axis] = n_out
    if attrs["mode"] == "nearest":
        out = np.take(data, idx[:, 0], axis=axis)
    else:
        out = sum(np.take(data, idx[:, k], axis=axis) * w[:, k].reshape(shape)
                  for k in range(idx.shape[1]))
    if cmode == "tf_crop_and_resize":
        outside = ((x < 0) | (x > n_in - 1)).reshape(shape)
        out = np.where(outside, attrs["extrapolation_value"], out)
    return out


def _passes(x_shape: tuple[int, ...], roi, scales, sizes, attrs):
    """The per-axis resampling passes, in order: (axis, n_out, scale, width, roi)."""
    rank = len(x_shape)
    axes = attrs.get("axes")
    axes = list(range(rank)) if axes is None else rt_axes("Resize", axes, rank)
    if scales is not None and scales.size == 0:
        scales = None
    if scales is not None and sizes is not None:
        raise rt_fail("Resize", "scales and sizes are both given")
    sc = None if scales is None else [float(v) for v in scales.reshape(-1)]
    sz = None if sizes is None else [int(v) for v in sizes.reshape(-1)]
    vals = sc if sc is not None else sz
    if vals is None or len(vals) != len(axes):
        raise rt_fail("Resize", f"expected {len(axes)} scales or sizes, got {vals}")
    if sc is not None and any(not v > 0 for v in sc):
        raise rt_fail("Resize", f"scales {sc} must be positive")
    if sz is not None and any(v < 0 for v in sz):
        raise rt_fail("Resize", f"sizes {sz} must be non-negative")
    policy = attrs["keep_aspect_ratio_policy"]
    if sz is not None and policy != "stretch" and any(x_shape[a] == 0 for a in axes):
        raise rt_fail("Resize", f"keep_aspect_ratio_policy {policy!r} needs non-empty axes, "
                                f"input is {list(x_shape)}")
    out, scale, width = resize_plan(list(x_shape), axes, sc, sz, policy)
    rois = None
    if attrs["coordinate_transformation_mode"] == "tf_crop_and_resize" and roi is not None:
        r = [float(v) for v in roi.reshape(-1)]
        if len(r) != 2 * len(axes):
            raise rt_fail("Resize", f"roi has {len(r)} entries, expected {2 * len(axes)}")
        rois = {a: (r[i], r[i + len(axes)]) for i, a in enumerate(axes)}
    passes = []
    for a in sorted(axes):
        roi_a = None if rois is None else rois[a]
        if out[a] == x_shape[a] and scale[a] == 1.0 and roi_a in (None, (0.0, 1.0)):
            continue
        passes.append((a, out[a], scale[a], width.get(a, float(out[a])), roi_a))
    return passes


def _resize_ref(ctx: EvalCtx, inputs):
    x, roi, scales, sizes = (list(inputs) + [None] * 4)[:4]
    data = x.astype(np.float64)
    for a, n_out, scale, width, roi_a in _passes(x.shape, roi, scales, sizes, ctx.attrs):
        data = resample_axis(data, a, n_out, scale, width, roi_a, ctx.attrs)
    return [_cast_back(data, x.dtype)]


def _cast_back(data: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.round(data), info.min, info.max).astype(dtype)
    return data.astype(dtype)


# ---------------------------------------------------------------------------------------
# Compute: the reference's passes as float64 stages, the same operations in the same order

F64 = DType.float64


def _f(v: float) -> Expr:
    return topi.scalar(v, F64)


def source_coord(mode: str, y: Expr, scale: float, n_in: int, n_out: int, width: float,
                 roi: tuple[float, float] | None) -> Expr:
    """`source_coords` for one float64 output coordinate `y`, operation for operation."""
    if mode in ("half_pixel", "pytorch_half_pixel"):
        if mode == "pytorch_half_pixel" and n_out <= 1:
            return _f(0.0)
        return (y + _f(0.5)) / _f(scale) - _f(0.5)
    if mode == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / width)
        return _f(offset) + (y + _f(0.5)) / _f(scale) - _f(0.5)
    if mode == "align_corners":
        return _f(0.0) if width == 1 else y * _f(n_in - 1) / _f(width - 1)
    if mode == "asymmetric":
        return y / _f(scale)
    if mode == "tf_half_pixel_for_nn":
        return (y + _f(0.5)) / _f(scale)
    start, end = roi if roi is not None else (0.0, 1.0)
    if width == 1:
        return _f((end - start) * (n_in - 1) / 2 + start * (n_in - 1))
    return y * _f(end - start) * _f(n_in - 1) / _f(width - 1) + _f(start * (n_in - 1))


def _lets(values: Sequence[Expr], body: Callable[[list[Expr]], Expr]) -> Expr:
    """`body(values)`, each value bound once (see `topi.let`)."""
    if not values:
        return body([])
    return topi.let(values[0], lambda v: _lets(values[1:], lambda rest: body([v, *rest])))


def _cubic_expr(d: Expr, a: float) -> Expr:
    def weight(ad: Expr) -> Expr:
        near = ((_f(a + 2) * ad - _f(a + 3)) * ad) * ad + _f(1.0)
        far = ((_f(a) * ad - _f(5 * a)) * ad + _f(8 * a)) * ad - _f(4 * a)
        return B.select(ad <= _f(1.0), near, B.select(ad < _f(2.0), far, _f(0.0)))

    return topi.let(B.call("abs", d), weight, "ad")


def _tap_weights(x: Expr, fl: Expr, attrs, scale: float, n_in: int):
    """(positions, weights) of the taps, as `_taps` computes one row."""
    mode = attrs["mode"]
    radius = 1.0 if mode == "linear" else 2.0
    s = min(scale, 1.0) if attrs["antialias"] else 1.0
    reach = int(math.ceil(radius / s))
    pos = [fl + _f(k) for k in range(-reach, reach + 2)]
    ws = []
    for p in pos:
        d = (p - x) * _f(s)
        if mode == "linear":
            ws.append(B.max_(_f(0.0), _f(1.0) - B.call("abs", d)))
        else:
            ws.append(_cubic_expr(d, attrs["cubic_coeff_a"]))
    return pos, ws


def _total(ws: Sequence[Expr]) -> Expr:
    t = ws[0]
    for w in ws[1:]:
        t = t + w
    return t


def _index(p: Expr, n_in: int) -> Expr:
    """A float64 sample position as an index clamped to the edge (clamped before the cast, so
    the cast is always defined)."""
    return B.cast(INDEX, B.max_(B.min_(p, _f(n_in - 1)), _f(0.0)))


def _resample(data: Tensor, a: int, n_out: int, scale: float, width: float,
              roi: tuple[float, float] | None, attrs, inline: bool) -> Tensor:
    n_in = data.shape[a]
    shape = data.shape[:a] + (n_out,) + data.shape[a + 1:]
    cmode, mode = attrs["coordinate_transformation_mode"], attrs["mode"]

    def load(i: Sequence[Expr], p: Expr) -> Expr:
        return data[(*i[:a], _index(p, n_in), *i[a + 1:])]

    def at(i: Sequence[Expr], x: Expr, fl: Expr) -> Expr:
        if mode == "nearest":
            frac = x - fl
            nm = attrs["nearest_mode"]
            up = {"floor": None, "ceil": frac > _f(0.0), "round_prefer_floor": frac > _f(0.5),
                  "round_prefer_ceil": frac >= _f(0.5)}[nm]
            return load(i, fl if up is None else B.select(up, fl + _f(1.0), fl))
        pos, ws = _tap_weights(x, fl, attrs, scale, n_in)

        def mix(ws: list[Expr]) -> Expr:
            return _total([load(i, p) * w for p, w in zip(pos, ws, strict=True)])

        def exclude(ws: list[Expr]) -> Expr:
            if not attrs["exclude_outside"]:
                return mix(ws)
            ws = [B.select(B.or_(p < _f(0.0), p >= _f(n_in)), _f(0.0), w)
                  for p, w in zip(pos, ws, strict=True)]
            return _lets(ws, lambda ws: topi.let(_total(ws), lambda t: _lets(
                [w / B.select(B.eq(t, _f(0.0)), _f(1.0), t) for w in ws], mix), "t"))

        def antialias(ws: list[Expr]) -> Expr:
            if not attrs["antialias"]:
                return exclude(ws)
            return topi.let(_total(ws), lambda t: _lets([w / t for w in ws], exclude), "t")

        return _lets(ws, antialias)

    def body(*i):
        y = B.cast(F64, i[a])
        x = source_coord(cmode, y, scale, n_in, n_out, width, roi)

        def value(x: Expr) -> Expr:
            v = topi.let(B.call("floor", x), lambda fl: at(i, x, fl), "fl")
            if cmode == "tf_crop_and_resize":
                outside = B.or_(x < _f(0.0), x > _f(n_in - 1))
                v = B.select(outside, _f(attrs["extrapolation_value"]), v)
            return v

        return topi.let(x, value, "x")

    return te.compute(f"Resize_{a}", shape, body, F64, inline=inline)


def _cast_back_expr(v: Expr, dtype: DType) -> Expr:
    if not dtype.is_int:
        return B.cast(dtype, v)
    info = np.iinfo(dtype.np)
    hi = float(info.max)
    if hi >= 2.0**63:  # 2^63 - 1 and 2^64 - 1 round up: stay below so the cast is defined
        hi = float(np.nextafter(hi, 0.0))
    r = B.call("round", v)
    return B.cast(dtype, B.max_(B.min_(r, _f(hi)), _f(float(info.min))))


def _resize_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    """The reference's separable passes in float64; linear and cubic passes other than the
    last are materialised (each output mixes several samples), nearest ones are inlined."""
    x = ins[0]
    out = ctx.out_types[0]
    if 0 in out.shape:
        return [fill("Resize", out)]
    passes = _passes(x.shape, ctx.value(1), ctx.value(2), ctx.value(3), ctx.attrs)
    data = te.compute("Resize_in", x.shape, lambda *i: B.cast(F64, x[i]), F64)
    stages = [data]
    for k, (a, n_out, scale, width, roi) in enumerate(passes):
        if data.shape[a] == 0:
            raise ctx.fail(f"cannot resize an empty axis {a} to {n_out}")
        inline = ctx.attrs["mode"] == "nearest" or k == len(passes) - 1
        data = _resample(data, a, n_out, scale, width, roi, ctx.attrs, inline)
        stages.append(data)
    res = te.compute("Resize", out.shape, lambda *i: _cast_back_expr(data[i], out.dtype),
                     out.dtype)
    res.extra["keep"] = stages  # te finds producers through weak references
    return [res]


_RESIZE_ATTRS = {
    "antialias": Attr("int", 0),
    "axes": Attr("ints", None),
    "coordinate_transformation_mode": Attr("string", "half_pixel"),
    "cubic_coeff_a": Attr("float", -0.75),
    "exclude_outside": Attr("int", 0),
    "extrapolation_value": Attr("float", 0.0),
    "keep_aspect_ratio_policy": Attr("string", "stretch"),
    "mode": Attr("string", "nearest"),
    "nearest_mode": Attr("string", "round_prefer_floor"),
}

register(OpDef("Resize", _resize_infer, _resize_ref, attrs=_RESIZE_ATTRS, kind=Kind.INJECTIVE,
               inputs=(1, 4), upgrade=_resize_upgrade, compute=_resize_compute,
               shape_inputs=(1, 2, 3)))
register(OpDef("Upsample", _resize_infer, _resize_ref,
               attrs={**_RESIZE_ATTRS, "scales": Attr("floats", None)}, kind=Kind.INJECTIVE,
               inputs=(1, 2), upgrade=_upsample_upgrade,
               doc="deprecated; imported as Resize"))
