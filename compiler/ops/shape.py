"""Shape-manipulation ops: Reshape, Transpose, Concat, Split, Squeeze, Unsqueeze, Flatten,
Shape, Size, Expand, Tile, Pad, DepthToSpace, SpaceToDepth, CenterCropPad, Slice.

Where a shape-like input (a target shape, repeats, pads, slice bounds) is a compile-time
constant, the type relation computes the exact output shape; otherwise the affected dims are
unknown ("?"). Symbolic dims flow through wherever the result is still a plain symbol.
The helpers at the top are shared with the other op families of this package.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.ops.base import (
    Attr,
    EvalCtx,
    InferCtx,
    Kind,
    OpDef,
    broadcast_shapes,
    norm_axis,
    numel,
    register,
    unknown_shape,
)

INDEX_TYPES = (DType.int32, DType.int64)
INT64_MAX = 2**63 - 1

# ---------------------------------------------------------------------------------------
# Shared helpers


def req(ctx: InferCtx, i: int, what: str = "") -> TensorType:
    """Input i's type; a clean error when the (required) input is absent."""
    t = ctx.input(i)
    if t is None:
        raise ctx.fail(f"input {i}{' (' + what + ')' if what else ''} is required")
    return t


def const_ints(ctx: InferCtx, i: int) -> tuple[int, ...] | None:
    """Input i's constant value as a flat tuple of Python ints, or None when not constant."""
    v = ctx.const(i)
    if v is None:
        return None
    return tuple(int(x) for x in np.asarray(v).reshape(-1))


def check_int_input(ctx: InferCtx, i: int, what: str, dtypes=(DType.int64,),
                    scalar_ok: bool = False) -> TensorType | None:
    """Check an (optional) shape-like integer input: its dtype and that it is 1-D (or a
    scalar, read as one element, where `scalar_ok`)."""
    t = ctx.input(i)
    if t is None:
        return None
    if t.dtype not in dtypes:
        raise ctx.fail(f"{what} must be {' or '.join(map(str, dtypes))}, got {t.dtype}")
    if t.rank is not None and t.rank != 1 and not (scalar_ok and t.rank == 0):
        raise ctx.fail(f"{what} must be a 1-D tensor, got rank {t.rank}")
    return t


def vec_len(t: TensorType | None) -> int | None:
    """Static length of a 1-D tensor type (1 for a scalar), else None."""
    if t is not None and t.shape == ():
        return 1
    if t is None or t.shape is None or len(t.shape) != 1 or not isinstance(t.shape[0], int):
        return None
    return t.shape[0]


def prod_dims(dims: Sequence[Dim]) -> Dim:
    """Product of dims: an int, a lone symbol (times 1), or unknown."""
    n = 1
    syms = []
    for d in dims:
        if isinstance(d, int):
            n *= d
        else:
            syms.append(d)
    if not syms:
        return n
    if n == 0:
        return 0
    if len(syms) == 1 and n == 1 and syms[0] != UNKNOWN:
        return syms[0]
    return UNKNOWN


def norm_axes(ctx: InferCtx, axes: Sequence[int], rank: int, what: str = "axes") -> list[int]:
    out = [norm_axis(ctx, int(a), rank) for a in axes]
    if len(set(out)) != len(out):
        raise ctx.fail(f"{what} {list(axes)} has duplicates")
    return out


def rt_fail(op: str, message: str) -> ExecutionError:
    """A clean runtime error from a reference implementation (bad input values)."""
    return ExecutionError(f"{op}: {message}")


def rt_axes(op: str, axes: Sequence[int], rank: int) -> list[int]:
    """Normalise axes read from run-time values; out-of-range or repeated axes raise."""
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise rt_fail(op, f"axis {a} out of range for rank {rank}")
        out.append(a + rank if a < 0 else a)
    if len(set(out)) != len(out):
        raise rt_fail(op, f"axes {list(axes)} has duplicates")
    return out


def as_ints(x: np.ndarray | None) -> list[int] | None:
    return None if x is None else [int(v) for v in np.asarray(x).reshape(-1)]


def zero_of(dtype: np.dtype):
    return "" if np.dtype(dtype).kind == "O" else np.zeros((), dtype)[()]


# ---------------------------------------------------------------------------------------
# Reshape


class _Fail(Exception):
    pass


def reshape_dims(in_dims: tuple[Dim, ...] | None, shape: Sequence[int],
                 allowzero: bool) -> tuple[Dim, ...]:
    """The Reshape output dims for a constant target `shape` (raises _Fail on bad input)."""
    out: list[Dim] = []
    neg = None
    for i, v in enumerate(shape):
        if v == -1:
            if neg is not None:
                raise _Fail("shape has more than one -1")
            neg = i
            out.append(UNKNOWN)
        elif v < -1:
            raise _Fail(f"invalid dim {v} in shape")
        elif v == 0 and not allowzero:
            if in_dims is None:
                out.append(UNKNOWN)
            elif i >= len(in_dims):
                raise _Fail(f"shape[{i}] = 0 copies a dim the rank-{len(in_dims)} input lacks")
            else:
                out.append(in_dims[i])
        else:
            out.append(v)
    if allowzero and neg is not None and 0 in shape:
        raise _Fail("shape has both 0 and -1 with allowzero=1")
    if in_dims is None:
        return tuple(out)
    in_n, in_syms, in_unk = _split_dims(in_dims)
    known = [d for k, d in enumerate(out) if k != neg]
    out_n, out_syms, out_unk = _split_dims(known)
    if in_unk or out_unk:
        return tuple(out)
    if neg is None:
        if in_syms == out_syms and in_n != out_n:
            raise _Fail(f"cannot reshape {list(in_dims)} ({in_n} elements) to {list(out)}")
        return tuple(out)
    if out_syms - in_syms:
        return tuple(out)
    rest = in_syms - out_syms
    if not rest:
        if out_n == 0:
            if in_n != 0:
                raise _Fail(f"cannot reshape {list(in_dims)} to {list(shape)}")
            return tuple(out)  # -1 is ambiguous with a zero-size tensor
        if in_n % out_n:
            raise _Fail(f"cannot reshape {list(in_dims)} ({in_n} elements) to {list(shape)}")
        out[neg] = in_n // out_n
    elif len(rest) == 1 and sum(rest.values()) == 1 and in_n == out_n:
        out[neg] = next(iter(rest))
    return tuple(out)


def _split_dims(dims) -> tuple[int, collections.Counter, bool]:
    n, syms, unk = 1, collections.Counter(), False
    for d in dims:
        if isinstance(d, int):
            n *= d
        elif d == UNKNOWN:
            unk = True
        else:
            syms[d] += 1
    return n, syms, unk


def _reshape_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0, "data")
    s = check_int_input(ctx, 1, "shape")
    shape = const_ints(ctx, 1)
    if shape is None:
        n = vec_len(s)
        return [TensorType(unknown_shape(n), t.dtype)]
    try:
        return [TensorType(reshape_dims(t.shape, shape, bool(ctx.attrs["allowzero"])), t.dtype)]
    except _Fail as e:
        raise ctx.fail(str(e)) from None


def _reshape_ref(ctx: EvalCtx, inputs):
    x, shape = inputs
    try:
        dims = reshape_dims(x.shape, as_ints(shape), bool(ctx.attrs["allowzero"]))
    except _Fail as e:
        raise rt_fail("Reshape", str(e)) from None
    if UNKNOWN in dims:  # -1 with a zero-size tensor: numpy resolves what it can
        dims = tuple(-1 if d == UNKNOWN else d for d in dims)
    try:
        return [x.reshape(dims)]
    except ValueError:
        raise rt_fail("Reshape", f"cannot reshape {list(x.shape)} to {list(dims)}") from None


register(OpDef("Reshape", _reshape_infer, _reshape_ref, attrs={"allowzero": Attr("int", 0)},
               kind=Kind.INJECTIVE, inputs=(2, 2)))


# ---------------------------------------------------------------------------------------
# Transpose, Concat, Split


def _transpose_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    perm = ctx.attrs.get("perm")
    if perm is None:
        return [TensorType(None if t.shape is None else t.shape[::-1], t.dtype)]
    if sorted(perm) != list(range(len(perm))):
        raise ctx.fail(f"perm {list(perm)} is not a permutation")
    if t.shape is None:
        return [TensorType(unknown_shape(len(perm)), t.dtype)]
    if len(perm) != len(t.shape):
        raise ctx.fail(f"perm {list(perm)} does not match input rank {len(t.shape)}")
    return [TensorType(tuple(t.shape[p] for p in perm), t.dtype)]


def _transpose_ref(ctx: EvalCtx, inputs):
    perm = ctx.attrs.get("perm")
    return [np.ascontiguousarray(np.transpose(inputs[0], perm))]


register(OpDef("Transpose", _transpose_infer, _transpose_ref,
               attrs={"perm": Attr("ints", None)}, kind=Kind.INJECTIVE))


def _concat_infer(ctx: InferCtx) -> list[TensorType]:
    ts = [req(ctx, i) for i in range(len(ctx.inputs))]
    dtype = ts[0].dtype
    for k, t in enumerate(ts):
        if t.dtype != dtype:
            raise ctx.fail(f"input {k} has dtype {t.dtype}, input 0 has {dtype}")
    ranks = {t.rank for t in ts if t.rank is not None}
    if len(ranks) > 1:
        raise ctx.fail(f"inputs have different ranks {sorted(ranks)}")
    if not ranks:
        return [TensorType(None, dtype)]
    rank = ranks.pop()
    if rank == 0:
        raise ctx.fail("cannot concatenate scalars")
    axis = norm_axis(ctx, ctx.attrs["axis"], rank)
    shapes = [t.shape for t in ts if t.shape is not None]
    out: list[Dim] = []
    for i in range(rank):
        dims = [s[i] for s in shapes]
        if i == axis:
            out.append(sum(dims) if len(shapes) == len(ts) and all(
                isinstance(d, int) for d in dims) else UNKNOWN)
            continue
        ints = {d for d in dims if isinstance(d, int)}
        if len(ints) > 1:
            raise ctx.fail(f"inputs differ in dim {i}: {sorted(ints)}")
        syms = {d for d in dims if not isinstance(d, int) and d != UNKNOWN}
        out.append(ints.pop() if ints else syms.pop() if len(syms) == 1 else UNKNOWN)
    return [TensorType(tuple(out), dtype)]


def _concat_ref(ctx: EvalCtx, inputs):
    (axis,) = rt_axes("Concat", [ctx.attrs["axis"]], inputs[0].ndim)
    try:
        return [np.concatenate(inputs, axis=axis)]
    except ValueError:
        shapes = " and ".join(str(list(x.shape)) for x in inputs)
        raise rt_fail("Concat", f"cannot concatenate {shapes} on axis {axis}") from None


register(OpDef("Concat", _concat_infer, _concat_ref, attrs={"axis": Attr("int")},
               kind=Kind.INJECTIVE, inputs=(1, None)))


def split_sizes(dim: int, n: int) -> list[int]:
    """Split-18 `num_outputs` chunks: ceil(dim / n) each, the last one smaller."""
    chunk = -(-dim // n)
    sizes = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
    if sizes[-1] < 0:
        raise _Fail(f"cannot split a dim of {dim} into {n} outputs")
    return sizes


def _split_upgrade(ictx) -> None:
    if ictx.opset < 13 and "split" in ictx.attrs:
        split = ictx.attrs.pop("split")
        ictx.inputs[1:] = [ictx.add_const(list(split), np.int64)]
    has_split = len(ictx.inputs) > 1 and ictx.inputs[1]
    if ictx.opset < 18 and not has_split:
        ictx.attrs["num_outputs"] = ictx.num_outputs


def _split_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    st = check_int_input(ctx, 1, "split")
    n = ctx.num_outputs
    num = ctx.attrs.get("num_outputs")
    if (st is None) == (num is None):
        raise ctx.fail("exactly one of the 'split' input and 'num_outputs' must be given")
    if num is not None and num != n:
        raise ctx.fail(f"num_outputs={num} but the node has {n} outputs")
    if num is not None and num < 1:
        raise ctx.fail(f"num_outputs must be positive, got {num}")
    if t.shape is None:
        return [TensorType(None, t.dtype)] * n
    axis = norm_axis(ctx, ctx.attrs["axis"], len(t.shape))
    dim = t.shape[axis]
    sizes: list[Dim]
    if st is not None:
        split = const_ints(ctx, 1)
        k = len(split) if split is not None else vec_len(st)
        if k is not None and k != n:
            raise ctx.fail(f"split has {k} entries but the node has {n} outputs")
        if split is None:
            sizes = [UNKNOWN] * n
        else:
            if any(s < 0 for s in split):
                raise ctx.fail(f"split {list(split)} has negative entries")
            if isinstance(dim, int) and sum(split) != dim:
                raise ctx.fail(f"split {list(split)} does not sum to dim {axis} = {dim}")
            sizes = list(split)
    elif isinstance(dim, int):
        try:
            sizes = list(split_sizes(dim, n))
        except _Fail:  # fails at run time if ever run (ONNX's own functions hold such
            sizes = [UNKNOWN] * n  # splits in If branches that are never taken)
    else:
        sizes = [UNKNOWN] * n
    return [TensorType(t.shape[:axis] + (s,) + t.shape[axis + 1:], t.dtype) for s in sizes]


def _split_ref(ctx: EvalCtx, inputs):
    x = inputs[0]
    (axis,) = rt_axes("Split", [ctx.attrs["axis"]], x.ndim)
    split = as_ints(inputs[1] if len(inputs) > 1 else None)
    if split is None:
        try:
            split = split_sizes(x.shape[axis], ctx.num_outputs)
        except _Fail as e:
            raise rt_fail("Split", str(e)) from None
    if sum(split) != x.shape[axis] or len(split) != ctx.num_outputs or min(split) < 0:
        raise rt_fail("Split", f"split {split} does not fit dim {x.shape[axis]}")
    return np.split(x, np.cumsum(split)[:-1], axis=axis)


register(OpDef("Split", _split_infer, _split_ref,
               attrs={"axis": Attr("int", 0), "num_outputs": Attr("int", None)},
               kind=Kind.INJECTIVE, inputs=(1, 2), outputs=(1, 1 << 30),
               upgrade=_split_upgrade))


# ---------------------------------------------------------------------------------------
# Squeeze, Unsqueeze, Flatten


def axes_attr_to_input(ictx, before: int, index: int) -> None:
    """Older opsets took `axes` as an attribute: move it to input `index`."""
    if ictx.opset < before and "axes" in ictx.attrs:
        axes = ictx.attrs.pop("axes")
        while len(ictx.inputs) < index:
            ictx.inputs.append("")
        ictx.inputs[index:] = [ictx.add_const(list(axes), np.int64)]


def _squeeze_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    at = check_int_input(ctx, 1, "axes", scalar_ok=True)
    axes = const_ints(ctx, 1)
    if at is not None and axes is None:
        n = vec_len(at)
        rank = None if t.rank is None or n is None else t.rank - n
        return [TensorType(unknown_shape(rank), t.dtype)]
    if t.shape is None:
        return [TensorType(None, t.dtype)]
    if axes is None:
        if any(not isinstance(d, int) for d in t.shape):
            return [TensorType(None, t.dtype)]
        return [TensorType(tuple(d for d in t.shape if d != 1), t.dtype)]
    ax = norm_axes(ctx, axes, len(t.shape))
    for a in ax:
        if isinstance(t.shape[a], int) and t.shape[a] != 1:
            raise ctx.fail(f"cannot squeeze axis {a} of size {t.shape[a]}")
    return [TensorType(tuple(d for i, d in enumerate(t.shape) if i not in ax), t.dtype)]


def _squeeze_ref(ctx: EvalCtx, inputs):
    x = inputs[0]
    axes = as_ints(inputs[1] if len(inputs) > 1 else None)
    if axes is None:
        return [x.reshape(tuple(d for d in x.shape if d != 1))]
    ax = set(rt_axes("Squeeze", axes, x.ndim))
    if any(x.shape[a] != 1 for a in ax):
        raise rt_fail("Squeeze", f"cannot squeeze axes {axes} of shape {list(x.shape)}")
    return [x.reshape(tuple(d for i, d in enumerate(x.shape) if i not in ax))]


register(OpDef("Squeeze", _squeeze_infer, _squeeze_ref, kind=Kind.INJECTIVE, inputs=(1, 2),
               upgrade=lambda ictx: axes_attr_to_input(ictx, 13, 1)))


def _unsqueeze_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    at = check_int_input(ctx, 1, "axes", scalar_ok=True)
    axes = const_ints(ctx, 1)
    if axes is None:
        n = vec_len(at)
        rank = None if t.rank is None or n is None else t.rank + n
        return [TensorType(unknown_shape(rank), t.dtype)]
    if t.shape is None:
        return [TensorType(None, t.dtype)]
    rank = len(t.shape) + len(axes)
    ax = norm_axes(ctx, axes, rank)
    dims = iter(t.shape)
    return [TensorType(tuple(1 if i in ax else next(dims) for i in range(rank)), t.dtype)]


def _unsqueeze_ref(ctx: EvalCtx, inputs):
    x, axes = inputs[0], as_ints(inputs[1])
    rank = x.ndim + len(axes)
    ax = set(rt_axes("Unsqueeze", axes, rank))
    dims = iter(x.shape)
    return [x.reshape(tuple(1 if i in ax else next(dims) for i in range(rank)))]


register(OpDef("Unsqueeze", _unsqueeze_infer, _unsqueeze_ref, kind=Kind.INJECTIVE,
               inputs=(2, 2), upgrade=lambda ictx: axes_attr_to_input(ictx, 13, 1)))


def _flatten_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    if t.shape is None:
        return [TensorType(unknown_shape(2), t.dtype)]
    rank, axis = len(t.shape), ctx.attrs["axis"]
    if not -rank <= axis <= rank:
        raise ctx.fail(f"axis {axis} out of range for rank {rank}")
    axis = axis + rank if axis < 0 else axis
    return [TensorType((prod_dims(t.shape[:axis]), prod_dims(t.shape[axis:])), t.dtype)]


def _flatten_ref(ctx: EvalCtx, inputs):
    x = inputs[0]
    axis = ctx.attrs["axis"]
    if not -x.ndim <= axis <= x.ndim:
        raise rt_fail("Flatten", f"axis {axis} out of range for rank {x.ndim}")
    axis = axis + x.ndim if axis < 0 else axis
    return [x.reshape(int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))]


register(OpDef("Flatten", _flatten_infer, _flatten_ref, attrs={"axis": Attr("int", 1)},
               kind=Kind.INJECTIVE))


# ---------------------------------------------------------------------------------------
# Shape, Size, Expand, Tile


def _shape_range(rank: int, start: int, end: int | None) -> tuple[int, int]:
    def clamp(v: int) -> int:
        return min(max(v + rank if v < 0 else v, 0), rank)

    s, e = clamp(start), clamp(rank if end is None else end)
    return s, max(e, s)


def _shape_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    if t.rank is None:
        return [TensorType((UNKNOWN,), DType.int64)]
    s, e = _shape_range(t.rank, ctx.attrs["start"], ctx.attrs.get("end"))
    return [TensorType((e - s,), DType.int64)]


def _shape_ref(ctx: EvalCtx, inputs):
    x = inputs[0]
    s, e = _shape_range(x.ndim, ctx.attrs["start"], ctx.attrs.get("end"))
    return [np.array(x.shape[s:e], dtype=np.int64)]


register(OpDef("Shape", _shape_infer, _shape_ref,
               attrs={"start": Attr("int", 0), "end": Attr("int", None)}))


def _size_infer(ctx: InferCtx) -> list[TensorType]:
    req(ctx, 0)
    return [TensorType((), DType.int64)]


register(OpDef("Size", _size_infer, lambda ctx, xs: [np.array(xs[0].size, dtype=np.int64)]))


def _expand_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    st = check_int_input(ctx, 1, "shape")
    shape = const_ints(ctx, 1)
    if shape is not None:
        if any(d < 0 for d in shape):
            raise ctx.fail(f"shape {list(shape)} has negative dims")
        return [TensorType(broadcast_shapes(ctx, t.shape, tuple(shape)), t.dtype)]
    n = vec_len(st)
    if n is None or t.shape is None:
        return [TensorType(None, t.dtype)]
    rank = max(n, len(t.shape))
    dims = (UNKNOWN,) * (rank - len(t.shape)) + t.shape
    return [TensorType(tuple(d if isinstance(d, int) and d != 1 else UNKNOWN for d in dims),
                       t.dtype)]


def _expand_ref(ctx: EvalCtx, inputs):
    x, shape = inputs[0], as_ints(inputs[1])
    try:
        out = np.broadcast_shapes(x.shape, tuple(shape))
    except ValueError:
        raise rt_fail("Expand", f"cannot expand {list(x.shape)} to {shape}") from None
    return [np.broadcast_to(x, out).copy()]


register(OpDef("Expand", _expand_infer, _expand_ref, kind=Kind.BROADCAST, inputs=(2, 2)))


def _tile_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    check_int_input(ctx, 1, "repeats")
    reps = const_ints(ctx, 1)
    if t.shape is None:
        return [TensorType(unknown_shape(None if reps is None else len(reps)), t.dtype)]
    if reps is None:
        return [TensorType(unknown_shape(len(t.shape)), t.dtype)]
    if len(reps) != len(t.shape):
        raise ctx.fail(f"repeats has {len(reps)} entries for an input of rank {len(t.shape)}")
    if any(r < 0 for r in reps):
        raise ctx.fail(f"repeats {list(reps)} has negative entries")
    dims = tuple(d * r if isinstance(d, int) else d if r == 1 else 0 if r == 0 else UNKNOWN
                 for d, r in zip(t.shape, reps, strict=True))
    return [TensorType(dims, t.dtype)]


def _tile_ref(ctx: EvalCtx, inputs):
    x, reps = inputs[0], as_ints(inputs[1])
    if len(reps) != x.ndim or min(reps, default=0) < 0:
        raise rt_fail("Tile", f"bad repeats {reps} for shape {list(x.shape)}")
    return [np.tile(x, reps) if x.ndim else x.copy()]


register(OpDef("Tile", _tile_infer, _tile_ref, kind=Kind.INJECTIVE, inputs=(2, 2)))


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
    if axes is None:
        return [TensorType(unknown_shape(rank), t.dtype)]
    out = list(t.shape)
    if pads is None:
        for a in axes:
            out[a] = UNKNOWN
        return [TensorType(tuple(out), t.dtype)]
    if len(pads) != 2 * len(axes):
        raise ctx.fail(f"pads has {len(pads)} entries, expected {2 * len(axes)}")
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


register(OpDef("Pad", _pad_infer, _pad_ref, attrs={"mode": Attr("string", "constant")},
               kind=Kind.INJECTIVE, inputs=(2, 4), upgrade=_pad_upgrade))


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


register(OpDef("CenterCropPad", _ccp_infer, _ccp_ref, attrs={"axes": Attr("ints", None)},
               kind=Kind.INJECTIVE, inputs=(2, 2)))


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

    return infer, ref


def _mul(d: Dim, k: int) -> Dim:
    return d * k if isinstance(d, int) else d if k == 1 else UNKNOWN


def _div(d: Dim, k: int) -> Dim:
    return d // k if isinstance(d, int) else d if k == 1 else UNKNOWN


_D2S_ATTRS = {"blocksize": Attr("int"), "mode": Attr("string", "DCR")}
register(OpDef("DepthToSpace", *_d2s_like(True), attrs=_D2S_ATTRS, kind=Kind.INJECTIVE))
register(OpDef("SpaceToDepth", *_d2s_like(False), attrs=_D2S_ATTRS, kind=Kind.INJECTIVE))


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
    n = len(starts) if starts is not None else vec_len(ctx.input(1))
    if ctx.input(3) is None:
        axes = None if n is None else list(range(n))
    else:
        axes = const_ints(ctx, 3)
        axes = None if axes is None else norm_axes(ctx, axes, rank)
    steps = (1,) * (n or 0) if ctx.input(4) is None else const_ints(ctx, 4)
    if axes is not None:
        for what, v in (("starts", starts), ("ends", ends), ("steps", steps)):
            if v is not None and len(v) != len(axes):
                raise ctx.fail(f"{what} has {len(v)} entries, axes has {len(axes)}")
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
    if 0 in steps:
        raise rt_fail("Slice", "steps must be non-zero")
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
        b, stop, _ = slice_range(x.shape[a], s, e, st)
        index[a] = slice(b, stop, st)
    return [x[tuple(index)].copy()]


register(OpDef("Slice", _slice_infer, _slice_ref, kind=Kind.INJECTIVE, inputs=(3, 5),
               upgrade=_slice_upgrade))
