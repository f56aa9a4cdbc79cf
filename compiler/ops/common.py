"""Helpers shared by the reduction, normalization, softmax, loss and misc op families.

Type-relation helpers (dtype groups, required inputs, scalar inputs, reduced shapes), the
numpy compute dtype, and their loop-IR twins for compute definitions. Registers no op.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
from compiler.ops.base import InferCtx, check_dtype, norm_axis

D = DType
FLOATS = (D.float16, D.bfloat16, D.float32, D.float64)
WIDE_INTS = (D.int32, D.int64, D.uint32, D.uint64)
ALL_INTS = (D.int8, D.int16, D.int32, D.int64, D.uint8, D.uint16, D.uint32, D.uint64)
NUMERIC = WIDE_INTS + FLOATS
ALL_NUMERIC = ALL_INTS + FLOATS


def compute_dtype(dt: np.dtype) -> np.dtype:
    """The dtype a reference computes in: float16 and bfloat16 widen to float32."""
    dt = np.dtype(dt)
    if dt in (np.dtype(np.float16), D.bfloat16.np):
        return np.dtype(np.float32)
    return dt


def need(ctx: InferCtx, i: int, name: str) -> TensorType:
    """Input i's type; a clean error when the (required) input is absent."""
    t = ctx.input(i)
    if t is None:
        raise ctx.fail(f"input {i} ({name}) is required")
    return t


def scalar_input(ctx: InferCtx, i: int, name: str, dtypes: Sequence[DType]) -> int | None:
    """Check a 0-D or one-element 1-D integer input; its value when constant."""
    t = need(ctx, i, name)
    check_dtype(ctx, t, dtypes, name)
    if t.shape is not None and (len(t.shape) > 1 or t.shape[:1] not in ((), (1,))
                                and isinstance(t.shape[0], int)):
        raise ctx.fail(f"{name} must be a scalar or a one-element 1-D tensor, got {t}")
    v = ctx.const(i)
    if v is None:
        return None
    if v.size != 1:
        raise ctx.fail(f"{name} must hold exactly one value, got {v.size}")
    return int(v.reshape(-1)[0])


def reduced_shape(ctx: InferCtx, shape: tuple[Dim, ...] | None, axes: Sequence[int] | None,
                  count: int | None, keepdims: bool) -> tuple[Dim, ...] | None:
    """Shape after reducing `axes` (None: values unknown, `count` of them if known)."""
    if axes is None:
        if shape is None:
            return None
        if keepdims:
            return tuple(1 if d == 1 else UNKNOWN for d in shape)
        if count is None:
            return None
        if count > len(shape):
            raise ctx.fail(f"{count} axes for rank {len(shape)}")
        return (UNKNOWN,) * (len(shape) - count)
    if shape is None:
        return None
    norm = [norm_axis(ctx, a, len(shape)) for a in axes]
    if len(set(norm)) != len(norm):
        raise ctx.fail(f"axes {list(axes)} repeat an axis")
    if keepdims:
        return tuple(1 if i in norm else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in norm)


# ---------------------------------------------------------------------------------------
# loop-IR twins


def work_dtype(dtype: DType) -> DType:
    """The loop-IR twin of `compute_dtype`: float16 and bfloat16 compute in float32."""
    return D.float32 if dtype in (D.float16, D.bfloat16) else dtype


def promote(*dtypes: DType) -> DType:
    """numpy's result type of the float `dtypes` (each widened by `work_dtype` first)."""
    return DType.from_np(np.result_type(*(work_dtype(d).np for d in dtypes)))


def to(dtype: DType, e: Expr) -> Expr:
    """`e` cast to `dtype` (no node when it already has it)."""
    return topi.to_dtype(dtype, e)


def const(value: float | int | bool, dtype: DType) -> Expr:
    """A literal of `dtype` (rounded to it, as numpy's `dtype.type(value)` does)."""
    return topi.scalar(value, dtype)


def rounded(dtype: DType, e: Expr) -> Expr:
    """`e` rounded to `dtype` and widened back to `e`'s dtype: a step of numpy math done in
    a narrow float type, computed wide."""
    return e if dtype == e.dtype else B.cast(e.dtype, B.cast(dtype, e))


Index = tuple[Expr, ...]


def reduce_over(name: str, shape: Sequence[int], axes: Sequence[int], keepdims: bool,
                kind: str, value: Callable[[Index, Index], Expr],
                where: Callable[[Index, Index], Expr] | None = None,
                dtype: DType | None = None, init: Expr | None = None) -> te.Tensor:
    """A stage reducing a tensor of `shape` over `axes` with `kind` (sum/prod/max/min).

    `value(src, kidx)` is the element reduced: `src` indexes the full input (reduction
    variables at `axes`), `kidx` the same element's keepdims-shaped statistics (0 at `axes`),
    so a later pass can read a statistic computed before, as in a variance. `where(src,
    kidx)` skips elements."""
    rank = len(shape)
    axes = sorted({a % rank for a in axes}) if rank else []
    out_shape = [1 if k in axes else d for k, d in enumerate(shape)] if keepdims else \
        [d for k, d in enumerate(shape) if k not in axes]

    def body(*i: Expr) -> te.Reduction:
        rv = {a: te.rvar(f"{name}_r{a}", shape[a]) for a in axes}
        src: list[Expr] = []
        kidx: list[Expr] = []
        j = 0
        for k in range(rank):
            if k in rv:
                src.append(rv[k].var)
                kidx.append(te.idx(0))
                j += int(keepdims)
            else:
                src.append(i[j])
                kidx.append(i[j])
                j += 1
        v = value(tuple(src), tuple(kidx))
        if dtype is not None:
            v = to(dtype, v)
        cond = where(tuple(src), tuple(kidx)) if where is not None else None
        return te.reduce(kind, v, [rv[a] for a in axes], where=cond, init=init)

    return te.compute(name, out_shape, body, dtype)


def keep_index(index: Index, axes: Sequence[int]) -> Index:
    """The keepdims-statistics index of the element at `index`: 0 at the reduced `axes`."""
    return tuple(te.idx(0) if k in axes else e for k, e in enumerate(index))


def nan_eq(a: Expr, b: Expr) -> Expr:
    """a == b, where NaN equals NaN (floats)."""
    e = B.eq(a, b)
    if a.dtype.is_float:
        e = B.or_(e, B.and_(B.call("isnan", a), B.call("isnan", b)))
    return e


def expand_index(index: Index, axes: Sequence[int]) -> Index:
    """A reduced (keepdims=0) index with 0 re-inserted at the reduced `axes` (sorted)."""
    out = list(index)
    for a in sorted(axes):
        out.insert(a, te.idx(0))
    return tuple(out)
