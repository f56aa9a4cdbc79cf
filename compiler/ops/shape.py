"""Shape-manipulation ops: Reshape, Transpose, Concat, Split, Squeeze, Unsqueeze, Flatten,
Shape, Size, Expand, Tile (Pad, CenterCropPad, DepthToSpace, SpaceToDepth and Slice live in
pad_slice.py).

Where a shape-like input (a target shape, repeats, pads, slice bounds) is a compile-time
constant, the type relation computes the exact output shape; otherwise the affected dims are
unknown ("?"). Symbolic dims flow through wherever the result is still a plain symbol.
The helpers at the top are shared with the other op families of this package.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
from compiler.lower.te import Tensor
from compiler.ops.base import (
    Attr,
    EvalCtx,
    InferCtx,
    Kind,
    OpDef,
    broadcast_shapes,
    norm_axis,
    register,
    unknown_shape,
)

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

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
# Lowering helpers, shared with the other families' compute definitions


def as_index(e: Expr) -> Expr:
    """An integer expression as an int64 index."""
    return e if e.dtype is te.INDEX else B.cast(te.INDEX, e)


def wrap_index(e: Expr, n: int) -> Expr:
    """An index read from data: negative values count from the back (n + e), and the result
    is clamped into [0, n) so an out-of-range value never loads out of bounds (the numpy
    reference raises on it instead)."""
    v = as_index(e)
    return topi.safe_index(B.select(v < te.idx(0), v + te.idx(n), v), n)


def guarded_load(t: Tensor, index: Sequence[Expr], ok: Expr | None, default: Expr) -> Expr:
    """`t[index]` where `ok` holds, else `default`. The index is clamped into t's bounds so
    the unselected load stays in bounds, and an empty `t` is never read."""
    if 0 in t.shape:
        return default
    v = t[tuple(topi.safe_index(e, n) for e, n in zip(index, t.shape, strict=True))]
    return v if ok is None else B.select(ok, v, default)


def all_of(conds: Sequence[Expr | None]) -> Expr | None:
    out: Expr | None = None
    for c in conds:
        if c is not None:
            out = c if out is None else B.and_(out, c)
    return out


def fill(name: str, t: TensorType, value: float | int | bool = 0) -> Tensor:
    """A stage holding `value` everywhere."""
    return te.compute(name, t.shape, lambda *i: topi.scalar(value, t.dtype), t.dtype)


def nonempty(compute):
    """Wrap a compute so that, when every output is empty, it yields empty fills: the compute
    proper never builds index arithmetic over (or divides by) a zero-size dim."""

    def wrapped(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
        if all(0 in t.shape for t in ctx.out_types):
            return [fill(f"{ctx.op}_{k}", t) for k, t in enumerate(ctx.out_types)]
        return compute(ctx, ins)

    wrapped.__doc__ = compute.__doc__
    return wrapped


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


@nonempty
def reshape_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    """Reshape, Squeeze, Unsqueeze, Flatten: the row-major order is kept."""
    return [topi.reshape(ctx.op, ins[0], ctx.out_types[0].shape)]


register(OpDef("Reshape", _reshape_infer, _reshape_ref, attrs={"allowzero": Attr("int", 0)},
               kind=Kind.INJECTIVE, inputs=(2, 2), compute=reshape_compute, shape_inputs=(1,)))


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


def _transpose_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    x = ins[0]
    perm = ctx.attrs.get("perm")
    perm = list(range(x.ndim))[::-1] if perm is None else list(perm)
    return [topi.transpose("Transpose", x, perm)]


register(OpDef("Transpose", _transpose_infer, _transpose_ref,
               attrs={"perm": Attr("ints", None)}, kind=Kind.INJECTIVE,
               compute=_transpose_compute))


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


@nonempty
def _concat_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    """A select chain over the inputs' ranges on `axis`; each load's index is clamped so the
    unselected arms stay in bounds, and empty inputs are skipped."""
    xs = [x for x in ins if x is not None and x.shape[ctx.attrs["axis"] % x.ndim] > 0]
    axis = ctx.attrs["axis"] % xs[0].ndim

    def body(*i):
        e: Expr | None = None
        off = 0
        for x in xs:
            n = x.shape[axis]
            at = topi.safe_index(i[axis] - te.idx(off) if off else i[axis], n)
            src = tuple(at if a == axis else i[a] for a in range(x.ndim))
            e = x[src] if e is None else B.select(i[axis] >= te.idx(off), x[src], e)
            off += n
        return e

    return [te.compute("Concat", ctx.out_types[0].shape, body)]


register(OpDef("Concat", _concat_infer, _concat_ref, attrs={"axis": Attr("int")},
               kind=Kind.INJECTIVE, inputs=(1, None), compute=_concat_compute))


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


def _split_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    """Output k reads the input from the sum of the earlier outputs' extents on `axis`."""
    x = ins[0]
    axis = ctx.attrs["axis"] % x.ndim
    outs, off = [], 0
    for k, t in enumerate(ctx.out_types):
        if 0 in t.shape:
            outs.append(fill(f"Split_{k}", t))
        else:
            outs.append(te.compute(f"Split_{k}", t.shape, lambda *i, o=off: x[tuple(
                e + te.idx(o) if a == axis and o else e for a, e in enumerate(i))]))
        off += t.shape[axis]
    return outs


register(OpDef("Split", _split_infer, _split_ref,
               attrs={"axis": Attr("int", 0), "num_outputs": Attr("int", None)},
               kind=Kind.INJECTIVE, inputs=(1, 2), outputs=(1, 1 << 30),
               upgrade=_split_upgrade, compute=_split_compute, shape_inputs=(1,)))


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
               upgrade=lambda ictx: axes_attr_to_input(ictx, 13, 1),
               compute=reshape_compute, shape_inputs=(1,)))


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
               inputs=(2, 2), upgrade=lambda ictx: axes_attr_to_input(ictx, 13, 1),
               compute=reshape_compute, shape_inputs=(1,)))


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
               kind=Kind.INJECTIVE, compute=reshape_compute))


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


def select_values(i: Expr, values: Sequence[int | float], dtype: DType) -> Expr:
    """`values[i]` for a compile-time list, as a chain of selects (i within range)."""
    e = topi.scalar(values[-1], dtype)
    for k in reversed(range(len(values) - 1)):
        e = B.select(B.eq(i, te.idx(k)), topi.scalar(values[k], dtype), e)
    return e


@nonempty
def _shape_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    """The dims are compile-time constants (kernels are specialised on input shapes)."""
    x = ins[0]
    s, e = _shape_range(x.ndim, ctx.attrs["start"], ctx.attrs.get("end"))
    dims = x.shape[s:e]
    return [te.compute("Shape", (len(dims),), lambda i: select_values(i, dims, DType.int64),
                       DType.int64)]


def _size_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    return [fill("Size", ctx.out_types[0], int(np.prod(ins[0].shape, dtype=np.int64)))]


register(OpDef("Shape", _shape_infer, _shape_ref,
               attrs={"start": Attr("int", 0), "end": Attr("int", None)},
               compute=_shape_compute))


def _size_infer(ctx: InferCtx) -> list[TensorType]:
    req(ctx, 0)
    return [TensorType((), DType.int64)]


register(OpDef("Size", _size_infer, lambda ctx, xs: [np.array(xs[0].size, dtype=np.int64)],
               compute=_size_compute))


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


@nonempty
def _expand_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    x, shape = ins[0], ctx.out_types[0].shape
    return [te.compute("Expand", shape, lambda *i: topi.load_bcast(x, shape, i))]


register(OpDef("Expand", _expand_infer, _expand_ref, kind=Kind.BROADCAST, inputs=(2, 2),
               compute=_expand_compute, shape_inputs=(1,)))


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


@nonempty
def _tile_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    x, shape = ins[0], ctx.out_types[0].shape

    def body(*i):
        return x[tuple(e if n == d else B.floormod(e, te.idx(d))
                       for e, n, d in zip(i, shape, x.shape, strict=True))]

    return [te.compute("Tile", shape, body)]


register(OpDef("Tile", _tile_infer, _tile_ref, kind=Kind.INJECTIVE, inputs=(2, 2),
               compute=_tile_compute, shape_inputs=(1,)))
