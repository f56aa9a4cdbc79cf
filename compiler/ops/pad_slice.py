"""Padding and slicing ops: Pad, CenterCropPad, DepthToSpace, SpaceToDepth, Slice.

Split from shape.py, whose shared helpers these use. Like there, a shape-like input (pads,
a target shape, slice bounds) gives exact output dims when it is a compile-time constant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
from compiler.lower.te import Tensor, idx
from compiler.ops.base import (
    Attr,
    EvalCtx,
    InferCtx,
    Kind,
    OpDef,
    numel,
    register,
    unknown_shape,
)
from compiler.ops.shape import (
    INDEX_TYPES,
    all_of,
    as_ints,
    check_int_input,
    const_ints,
    guarded_load,
    nonempty,
    norm_axes,
    req,
    rt_axes,
    rt_fail,
    vec_len,
    zero_of,
)

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

# ---------------------------------------------------------------------------------------
# Pad, CenterCropPad


PAD_MODES = ("constant", "reflect", "edge", "wrap")


def _pad_upgrade(ictx) -> None:
    if ictx.opset >= 11:
        return
    pads = ictx.attrs.pop("pads", None)
    if pads is None:
        raise ictx.fail("attribute 'pads' is required")
    value = ictx.attrs.pop("value", 0.0)
    ictx.inputs[1:] = [ictx.add_const(list(pads), np.int64)]
    dtype = ictx.input_type(0).dtype.np
    ictx.inputs.append(ictx.add_const(np.array(value).astype(dtype), dtype))


def _pad_axes(ctx: InferCtx, rank: int, n_pads: int | None) -> list[int] | None:
    if ctx.input(3) is None:
        return list(range(rank))
    axes = const_ints(ctx, 3)
    return None if axes is None else norm_axes(ctx, axes, rank)


def _pad_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0, "data")
    check_int_input(ctx, 1, "pads")
    check_int_input(ctx, 3, "axes", INDEX_TYPES)
    if ctx.attrs["mode"] not in PAD_MODES:
        raise ctx.fail(f"mode must be one of {', '.join(PAD_MODES)}, got {ctx.attrs['mode']!r}")
    cv = ctx.input(2)
    if cv is not None:
        if cv.dtype != t.dtype:
            raise ctx.fail(f"constant_value dtype {cv.dtype} differs from data dtype {t.dtype}")
        if numel(cv.shape) not in (1, None):
            raise ctx.fail("constant_value must hold one element")
    if t.shape is None:
        return [TensorType(None, t.dtype)]
    rank = len(t.shape)
    pads = const_ints(ctx, 1)
    axes = _pad_axes(ctx, rank, None if pads is None else len(pads))
    n_axes = len(axes) if axes is not None else vec_len(ctx.input(3))
    n_pads = len(pads) if pads is not None else vec_len(ctx.input(1))
    if None not in (n_axes, n_pads) and n_pads != 2 * n_axes:
        raise ctx.fail(f"pads has {n_pads} entries, expected {2 * n_axes}")
    if axes is None:
        return [TensorType(unknown_shape(rank), t.dtype)]
    out = list(t.shape)
    if pads is None:
        for a in axes:
            out[a] = UNKNOWN
        return [TensorType(tuple(out), t.dtype)]
    for k, a in enumerate(axes):
        b, e = pads[k], pads[k + len(axes)]
        d = t.shape[a]
        if isinstance(d, int):
            if d + b + e < 0:
                raise ctx.fail(f"pads {b}, {e} make axis {a} of size {d} negative")
            out[a] = d + b + e
        elif b + e != 0:
            out[a] = UNKNOWN
    return [TensorType(tuple(out), t.dtype)]


def _pad_ref(ctx: EvalCtx, inputs):
    x, pads, cv, axes = (list(inputs) + [None] * 4)[:4]
    mode = ctx.attrs["mode"]
    rank = x.ndim
    axes = list(range(rank)) if axes is None else rt_axes("Pad", as_ints(axes), rank)
    pads = as_ints(pads)
    if len(pads) != 2 * len(axes):
        raise rt_fail("Pad", f"pads has {len(pads)} entries, expected {2 * len(axes)}")
    crop = [slice(None)] * rank
    width = [(0, 0)] * rank
    for k, a in enumerate(axes):
        b, e = pads[k], pads[k + len(axes)]
        if x.shape[a] + b + e < 0:
            raise rt_fail("Pad", f"pads {b}, {e} make axis {a} of size {x.shape[a]} negative")
        crop[a] = slice(max(-b, 0), x.shape[a] - max(-e, 0))
        width[a] = (max(b, 0), max(e, 0))
    x = x[tuple(crop)]
    if mode == "constant":
        value = zero_of(x.dtype) if cv is None else np.asarray(cv).reshape(-1)[0]
        out = np.full([d + b + e for d, (b, e) in zip(x.shape, width, strict=True)], value,
                      dtype=x.dtype)
        out[tuple(slice(b, b + d) for d, (b, _) in zip(x.shape, width, strict=True))] = x
        return [out]
    for a, (b, e) in enumerate(width):
        if (b or e) and x.shape[a] == 0:
            raise rt_fail("Pad", f"cannot {mode}-pad the empty axis {a}")
    return [np.pad(x, width, mode=mode).astype(x.dtype)]


def _pad_source(mode: str, j: Expr, n: int) -> Expr:
    """The source of padded position `j` (relative to the data's start) on an axis of `n`
    (> 0) elements, for the modes that read the data everywhere."""
    if mode == "edge":
        return topi.safe_index(j, n)
    if mode == "wrap":
        return B.floormod(j, idx(n))
    if n == 1:  # reflect
        return idx(0)
    m = B.floormod(j, idx(2 * (n - 1)))  # the reflection is periodic, of period 2 (n - 1)
    return B.select(m < idx(n), m, idx(2 * (n - 1)) - m)


@nonempty
def _pad_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    """Negative pads crop first (as the reference does), then each axis maps an output
    position to its source by the mode; constant padding is a guarded load."""
    x, cv = ins[0], ins[2] if len(ins) > 2 else None
    mode = ctx.attrs["mode"]
    rank = x.ndim
    axes = ctx.value(3)
    axes = list(range(rank)) if axes is None else rt_axes("Pad", as_ints(axes), rank)
    pads = as_ints(ctx.value(1))
    crop, size, before = [0] * rank, list(x.shape), [0] * rank
    for k, a in enumerate(axes):
        b, e = pads[k], pads[k + len(axes)]
        crop[a] = max(-b, 0)
        size[a] = x.shape[a] - crop[a] - max(-e, 0)
        before[a] = max(b, 0)
        if mode != "constant" and size[a] == 0 and (b > 0 or e > 0):
            raise ctx.fail(f"cannot {mode}-pad the empty axis {a}")
    out = ctx.out_types[0]

    def body(*i):
        src, conds = [], []
        for a in range(rank):
            j = i[a] - idx(before[a]) if before[a] else i[a]
            if out.shape[a] != size[a] or before[a]:
                if mode == "constant":
                    conds += [j >= idx(0), j < idx(size[a])]
                else:
                    j = _pad_source(mode, j, size[a])
            src.append(j + idx(crop[a]) if crop[a] else j)
        if mode != "constant":
            return x[tuple(src)]
        value = topi.scalar(0, x.dtype) if cv is None else cv[(idx(0),) * cv.ndim]
        return guarded_load(x, src, all_of(conds), value)

    return [te.compute("Pad", out.shape, body, out.dtype)]


register(OpDef("Pad", _pad_infer, _pad_ref, attrs={"mode": Attr("string", "constant")},
               kind=Kind.INJECTIVE, inputs=(2, 4), upgrade=_pad_upgrade,
               compute=_pad_compute, shape_inputs=(1, 3)))


def _ccp_axes(ctx, rank: int) -> list[int]:
    axes = ctx.attrs.get("axes")
    return list(range(rank)) if axes is None else rt_axes("CenterCropPad", axes, rank)


def _ccp_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    st = check_int_input(ctx, 1, "shape", INDEX_TYPES)
    if t.shape is None:
        return [TensorType(None, t.dtype)]
    rank = len(t.shape)
    axes = ctx.attrs.get("axes")
    axes = list(range(rank)) if axes is None else norm_axes(ctx, axes, rank)
    shape = const_ints(ctx, 1)
    n = len(shape) if shape is not None else vec_len(st)
    if n is not None and n != len(axes):
        raise ctx.fail(f"shape has {n} entries for {len(axes)} axes")
    out = list(t.shape)
    for k, a in enumerate(axes):
        out[a] = UNKNOWN if shape is None else shape[k]
        if shape is not None and shape[k] < 0:
            raise ctx.fail(f"shape {list(shape)} has negative entries")
    return [TensorType(tuple(out), t.dtype)]


def _ccp_ref(ctx: EvalCtx, inputs):
    x, shape = inputs[0], as_ints(inputs[1])
    axes = _ccp_axes(ctx, x.ndim)
    if len(shape) != len(axes):
        raise rt_fail("CenterCropPad", f"shape has {len(shape)} entries for {len(axes)} axes")
    src = [slice(None)] * x.ndim
    dst = [slice(None)] * x.ndim
    out = list(x.shape)
    for a, s in zip(axes, shape, strict=True):
        d = x.shape[a]
        out[a] = s
        if s < d:
            src[a] = slice((d - s) // 2, (d - s) // 2 + s)
        elif s > d:
            dst[a] = slice((s - d) // 2, (s - d) // 2 + d)
    res = np.full(out, zero_of(x.dtype), dtype=x.dtype)
    res[tuple(dst)] = x[tuple(src)]
    return [res]


@nonempty
def _ccp_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    """Each axis is centred: cropped by (d - s) // 2 or padded by (s - d) // 2 zeros."""
    x, out = ins[0], ctx.out_types[0]
    shift = [0] * x.ndim
    for a, s in zip(_ccp_axes(ctx, x.ndim), as_ints(ctx.value(1)), strict=True):
        d = x.shape[a]
        shift[a] = (d - s) // 2 if s < d else -((s - d) // 2)

    def body(*i):
        src = [e + idx(sh) if sh else e for e, sh in zip(i, shift, strict=True)]
        conds = [B.and_(e >= idx(0), e < idx(d))
                 for e, d, o in zip(src, x.shape, out.shape, strict=True) if o > d]
        return guarded_load(x, src, all_of(conds), topi.scalar(0, x.dtype))

    return [te.compute("CenterCropPad", out.shape, body, out.dtype)]


register(OpDef("CenterCropPad", _ccp_infer, _ccp_ref, attrs={"axes": Attr("ints", None)},
               kind=Kind.INJECTIVE, inputs=(2, 2), compute=_ccp_compute, shape_inputs=(1,)))


# ---------------------------------------------------------------------------------------
# DepthToSpace, SpaceToDepth


def _d2s_like(to_space: bool):
    def infer(ctx: InferCtx) -> list[TensorType]:
        t = req(ctx, 0)
        bs = ctx.attrs["blocksize"]
        if bs <= 0:
            raise ctx.fail(f"blocksize must be positive, got {bs}")
        if ctx.attrs["mode"] not in ("DCR", "CRD"):
            raise ctx.fail(f"mode must be DCR or CRD, got {ctx.attrs['mode']!r}")
        if t.shape is None:
            return [TensorType(unknown_shape(4), t.dtype)]
        if len(t.shape) != 4:
            raise ctx.fail(f"input must be 4-D, got rank {len(t.shape)}")
        n, c, h, w = t.shape
        if to_space:
            if isinstance(c, int) and c % (bs * bs):
                raise ctx.fail(f"channels {c} not divisible by blocksize^2 = {bs * bs}")
            dims = (n, _div(c, bs * bs), _mul(h, bs), _mul(w, bs))
        else:
            for d in (h, w):
                if isinstance(d, int) and d % bs:
                    raise ctx.fail(f"spatial dim {d} not divisible by blocksize {bs}")
            dims = (n, _mul(c, bs * bs), _div(h, bs), _div(w, bs))
        return [TensorType(dims, t.dtype)]

    def ref(ctx: EvalCtx, inputs):
        x = inputs[0]
        bs, crd = ctx.attrs["blocksize"], ctx.attrs["mode"] == "CRD"
        b, c, h, w = x.shape
        if to_space:
            if crd:
                tmp = x.reshape(b, c // (bs * bs), bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
            else:
                tmp = x.reshape(b, bs, bs, c // (bs * bs), h, w).transpose(0, 3, 4, 1, 5, 2)
            return [tmp.reshape(b, c // (bs * bs), h * bs, w * bs)]
        tmp = x.reshape(b, c, h // bs, bs, w // bs, bs)
        tmp = tmp.transpose(0, 1, 3, 5, 2, 4) if crd else tmp.transpose(0, 3, 5, 1, 2, 4)
        return [tmp.reshape(b, c * bs * bs, h // bs, w // bs)]

    @nonempty
    def compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
        """Pure index arithmetic: the (channel, row, column) of the block layout."""
        x, out = ins[0], ctx.out_types[0]
        bs, crd = ctx.attrs["blocksize"], ctx.attrs["mode"] == "CRD"
        b = idx(bs)

        def d2s(n, c, h, w):  # out (n, c, h, w) <- x (n, channel, h // bs, w // bs)
            by, bx = B.floormod(h, b), B.floormod(w, b)
            block = by * b + bx
            ch = c * idx(bs * bs) + block if crd else block * idx(out.shape[1]) + c
            return x[n, ch, B.floordiv(h, b), B.floordiv(w, b)]

        def s2d(n, c, h, w):  # out (n, c, h, w) <- x (n, channel, h * bs + by, ...)
            if crd:
                ch, block = B.floordiv(c, idx(bs * bs)), B.floormod(c, idx(bs * bs))
            else:
                ch, block = B.floormod(c, idx(x.shape[1])), B.floordiv(c, idx(x.shape[1]))
            by, bx = B.floordiv(block, b), B.floormod(block, b)
            return x[n, ch, h * b + by, w * b + bx]

        return [te.compute(ctx.op, out.shape, d2s if to_space else s2d)]

    return infer, ref, compute


def _mul(d: Dim, k: int) -> Dim:
    return d * k if isinstance(d, int) else d if k == 1 else UNKNOWN


def _div(d: Dim, k: int) -> Dim:
    return d // k if isinstance(d, int) else d if k == 1 else UNKNOWN


_D2S_ATTRS = {"blocksize": Attr("int"), "mode": Attr("string", "DCR")}
for _name, _to_space in (("DepthToSpace", True), ("SpaceToDepth", False)):
    _infer, _ref, _compute = _d2s_like(_to_space)
    register(OpDef(_name, _infer, _ref, attrs=_D2S_ATTRS, kind=Kind.INJECTIVE,
                   compute=_compute))


# ---------------------------------------------------------------------------------------
# Slice


def slice_range(dim: int, start: int, end: int, step: int) -> tuple[int, int | None, int]:
    """Clamp one axis' Slice bounds per the spec: (start, Python stop, output length)."""
    if dim == 0:
        return 0, 0, 0
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        return start, end, max(0, -(-(end - start) // step))
    start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return start, (end if end >= 0 else None), max(0, -(-(start - end) // -step))


def _slice_upgrade(ictx) -> None:
    if ictx.opset >= 10:
        return
    ins = [ictx.inputs[0]]
    for name in ("starts", "ends", "axes"):
        if name in ictx.attrs:
            ins.append(ictx.add_const(list(ictx.attrs.pop(name)), np.int64))
        elif name != "axes":
            raise ictx.fail(f"attribute {name!r} is required")
    ictx.inputs[:] = ins


def _slice_params(ctx: InferCtx, rank: int):
    """(axes, starts, ends, steps) when all constant; axes alone (or None) otherwise."""
    starts, ends = const_ints(ctx, 1), const_ints(ctx, 2)
    lengths = [(what, vec_len(ctx.input(i))) for i, what in
               enumerate(("starts", "ends", "axes", "steps"), start=1)
               if ctx.input(i) is not None]
    known = [(what, k) for what, k in lengths if k is not None]
    for what, k in known[1:]:
        if k != known[0][1]:
            raise ctx.fail(f"{what} has {k} entries, {known[0][0]} has {known[0][1]}")
    n = known[0][1] if known else None
    if ctx.input(3) is None:
        axes = None if n is None else list(range(n))
    else:
        axes = const_ints(ctx, 3)
        axes = None if axes is None else norm_axes(ctx, axes, rank)
    steps = (1,) * (n or 0) if ctx.input(4) is None else const_ints(ctx, 4)
    if steps is not None and 0 in steps:
        raise ctx.fail("steps must be non-zero")
    if None in (starts, ends, steps):
        return axes, None, None, None
    return axes, starts, ends, steps


def _slice_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0, "data")
    for i, what in enumerate(("starts", "ends", "axes", "steps"), start=1):
        check_int_input(ctx, i, what, INDEX_TYPES)
    if t.shape is None:
        return [TensorType(None, t.dtype)]
    axes, starts, ends, steps = _slice_params(ctx, len(t.shape))
    if axes is None:
        return [TensorType(unknown_shape(len(t.shape)), t.dtype)]
    out = list(t.shape)
    for k, a in enumerate(axes):
        d = t.shape[a]
        if starts is None:
            out[a] = UNKNOWN
        elif isinstance(d, int):
            out[a] = slice_range(d, starts[k], ends[k], steps[k])[2]
        elif not (steps[k] == 1 and starts[k] == 0 and ends[k] >= 2**31 - 1):
            out[a] = UNKNOWN
    return [TensorType(tuple(out), t.dtype)]


def _slice_ref(ctx: EvalCtx, inputs):
    x, starts, ends, axes, steps = (list(inputs) + [None] * 5)[:5]
    starts, ends = as_ints(starts), as_ints(ends)
    axes = rt_axes("Slice", list(range(len(starts))) if axes is None else as_ints(axes),
                   x.ndim)
    steps = [1] * len(starts) if steps is None else as_ints(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise rt_fail("Slice", f"starts, ends, axes and steps have {len(starts)}, "
                      f"{len(ends)}, {len(axes)} and {len(steps)} entries")
    if 0 in steps:
        raise rt_fail("Slice", "steps must be non-zero")
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
        b, stop, _ = slice_range(x.shape[a], s, e, st)
        index[a] = slice(b, stop, st)
    return [x[tuple(index)].copy()]


@nonempty
def _slice_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    """out[i] = x[start + i * step] on each sliced axis (the bounds clamped as in the spec)."""
    x = ins[0]
    starts, ends = as_ints(ctx.value(1)), as_ints(ctx.value(2))
    axes = ctx.value(3)
    axes = list(range(len(starts))) if axes is None else rt_axes("Slice", as_ints(axes), x.ndim)
    steps = ctx.value(4)
    steps = [1] * len(starts) if steps is None else as_ints(steps)
    first, step = [0] * x.ndim, [1] * x.ndim
    for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
        first[a], _, _ = slice_range(x.shape[a], s, e, st)
        step[a] = st

    def body(*i):
        src = []
        for e, f, st in zip(i, first, step, strict=True):
            e = e * idx(st) if st != 1 else e
            src.append(e + idx(f) if f else e)
        return x[tuple(src)]

    return [te.compute("Slice", ctx.out_types[0].shape, body)]


register(OpDef("Slice", _slice_infer, _slice_ref, kind=Kind.INJECTIVE, inputs=(3, 5),
               upgrade=_slice_upgrade, compute=_slice_compute, shape_inputs=(1, 2, 3, 4)))
