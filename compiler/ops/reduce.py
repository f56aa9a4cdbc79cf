"""Reductions: Reduce*, ArgMax/ArgMin, CumSum/CumProd and TopK.

Canonical reductions take `axes` as an optional second input (opset 18 form; ReduceSum since
13). Older nodes carry `axes` as an attribute; their upgrade hook moves it into the input.
Reducing over an empty set of axes (`noop_with_empty_axes=1`) reduces nothing but still
applies the element-wise steps (ReduceSumSquare squares, ReduceLogSum takes the log, ...),
and reducing over an empty set of values yields the reduction's identity (0, 1, -inf, ...).
ReduceMean of an empty set, undefined in ONNX, is NaN for floats (0/0) and 0 for integers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import UNKNOWN, TensorType
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
    norm_axis,
    register,
)
from compiler.ops.cast import cast_expr
from compiler.ops.common import (
    ALL_NUMERIC,
    NUMERIC,
    compute_dtype,
    const,
    expand_index,
    keep_index,
    nan_eq,
    need,
    reduce_over,
    reduced_shape,
    scalar_input,
    to,
    work_dtype,
)

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

D = DType


# ---------------------------------------------------------------------------------------
# Reduce*


def _upgrade_axes(since: int):
    """Older opsets carry `axes` as an attribute: move it into the second input."""

    def upgrade(ictx) -> None:
        if ictx.opset < since and "axes" in ictx.attrs:
            axes = ictx.attrs.pop("axes")
            ictx.inputs[1:] = [ictx.add_const(list(axes), np.int64)]

    return upgrade


def _reduce_infer(dtypes: Sequence[DType]):
    def infer(ctx: InferCtx) -> list[TensorType]:
        x = need(ctx, 0, "data")
        check_dtype(ctx, x, dtypes)
        keep = bool(ctx.attrs["keepdims"])
        noop = bool(ctx.attrs["noop_with_empty_axes"])
        a = ctx.input(1)
        axes: tuple[int, ...] | None = ()
        count: int | None = 0
        if a is not None:
            check_dtype(ctx, a, (D.int64,), "axes")
            if a.rank is not None and a.rank != 1:
                raise ctx.fail(f"axes must be a 1-D tensor, got {a}")
            v = ctx.const(1)
            if v is not None:
                axes = tuple(int(i) for i in v.reshape(-1))
                count = len(axes)
            else:
                axes = None
                count = a.shape[0] if a.shape and isinstance(a.shape[0], int) else None
        if count == 0:
            if noop:
                return [TensorType(x.shape, x.dtype)]
            if not keep:
                return [TensorType((), x.dtype)]
            axes = None if x.rank is None else tuple(range(x.rank))
        return [TensorType(reduced_shape(ctx, x.shape, axes, count, keep), x.dtype)]

    return infer


def _ref_axes(ctx: EvalCtx, x: np.ndarray, axes: np.ndarray | None) -> tuple[int, ...]:
    if axes is None or axes.size == 0:
        return () if ctx.attrs["noop_with_empty_axes"] else tuple(range(x.ndim))
    out = []
    for a in axes.reshape(-1).tolist():
        if not -x.ndim <= a < x.ndim:
            raise ExecutionError(f"{ctx.op}: axis {a} out of range for rank {x.ndim}")
        out.append(a % x.ndim)
    if len(set(out)) != len(out):
        raise ExecutionError(f"{ctx.op}: axes {axes.reshape(-1).tolist()} repeat an axis")
    return tuple(sorted(out))


Reducer = Callable[[np.ndarray, tuple[int, ...], bool], np.ndarray]


def _identity(x: np.ndarray, high: bool) -> object:
    """The identity of max (high=False) or min (high=True) reductions."""
    if x.dtype == np.bool_:
        return high
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        return info.max if high else info.min
    return np.inf if high else -np.inf


def _mean(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    s = np.add.reduce(x, axis=axes, keepdims=keep, dtype=x.dtype)
    if x.dtype.kind in "iu":
        if n == 0:
            return np.zeros_like(s)
        q = np.abs(s) // n
        return np.where(s < 0, -q, q).astype(x.dtype)
    return s / x.dtype.type(n)


def _log_sum_exp(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    x = x.astype(np.float64)
    m = np.maximum.reduce(x, axis=axes, keepdims=True, initial=-np.inf)
    shift = np.where(np.isfinite(m), m, 0.0)
    s = np.add.reduce(np.exp(x - shift), axis=axes, keepdims=True)
    r = np.log(s) + shift
    return r if keep else np.squeeze(r, axis=axes)


def _float_post(x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a float function to an integer or float result (ints go through float64)."""
    if x.dtype.kind in "iu":
        return fn(x.astype(np.float64))
    return fn(x)


REDUCERS: dict[str, Reducer] = {
    "ReduceSum": lambda x, a, k: np.add.reduce(x, axis=a, keepdims=k, dtype=x.dtype),
    "ReduceMean": _mean,
    "ReduceMax": lambda x, a, k: np.maximum.reduce(x, axis=a, keepdims=k,
                                                   initial=_identity(x, False)),
    "ReduceMin": lambda x, a, k: np.minimum.reduce(x, axis=a, keepdims=k,
                                                   initial=_identity(x, True)),
    "ReduceProd": lambda x, a, k: np.multiply.reduce(x, axis=a, keepdims=k, dtype=x.dtype),
    "ReduceL1": lambda x, a, k: np.add.reduce(np.abs(x), axis=a, keepdims=k, dtype=x.dtype),
    "ReduceL2": lambda x, a, k: _float_post(
        np.add.reduce(x * x, axis=a, keepdims=k, dtype=x.dtype), np.sqrt),
    "ReduceSumSquare": lambda x, a, k: np.add.reduce(x * x, axis=a, keepdims=k, dtype=x.dtype),
    "ReduceLogSum": lambda x, a, k: _float_post(
        np.add.reduce(x, axis=a, keepdims=k, dtype=x.dtype), np.log),
    "ReduceLogSumExp": _log_sum_exp,
}


def _reduce_ref(name: str):
    fn = REDUCERS[name]

    def ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        x = inputs[0]
        axes = _ref_axes(ctx, x, inputs[1] if len(inputs) > 1 else None)
        keep = bool(ctx.attrs["keepdims"])
        r = fn(x.astype(compute_dtype(x.dtype), copy=False), axes, keep)
        return [np.asarray(r).astype(x.dtype)]

    return ref


# -- lowering: `pre` maps an element (in the compute dtype), `kind` reduces, `post` finishes
# the reduced value given the number of elements reduced; the result is cast to x's dtype.

Pre = Callable[[Expr], Expr]
Post = Callable[[Expr, int], Expr]


def _float_post_expr(fn: str) -> Post:
    """`_float_post`: the intrinsic `fn` of the reduced value, integers through float64."""

    def post(acc: Expr, n: int) -> Expr:
        return B.call(fn, B.cast(D.float64, acc) if not acc.dtype.is_float else acc)

    return post


def _mean_post(acc: Expr, n: int) -> Expr:
    if acc.dtype.is_float:
        return acc / const(n, acc.dtype)
    if n == 0:
        return const(0, acc.dtype)
    return B.truncdiv(acc, const(n, acc.dtype))  # |s| // n with s's sign


def _square(v: Expr) -> Expr:
    return v * v


LOWER_REDUCERS: dict[str, tuple[Pre | None, str, Post | None]] = {
    "ReduceSum": (None, "sum", None),
    "ReduceMean": (None, "sum", _mean_post),
    "ReduceMax": (None, "max", None),
    "ReduceMin": (None, "min", None),
    "ReduceProd": (None, "prod", None),
    "ReduceL1": (lambda v: B.call("abs", v), "sum", None),
    "ReduceL2": (_square, "sum", _float_post_expr("sqrt")),
    "ReduceSumSquare": (_square, "sum", None),
    "ReduceLogSum": (None, "sum", _float_post_expr("log")),
}


def _lower_axes(ctx: LowerCtx, rank: int) -> tuple[int, ...]:
    """`_ref_axes` at compile time (the type relation has checked the range)."""
    v = ctx.value(1)
    if v is None or v.size == 0:
        return () if ctx.attrs["noop_with_empty_axes"] else tuple(range(rank))
    return tuple(sorted({int(a) % rank for a in v.reshape(-1)}))


def _reduce_compute(name: str):
    def compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
        x = ins[0]
        out = ctx.out_types[0]
        axes = _lower_axes(ctx, x.ndim)
        keep = bool(ctx.attrs["keepdims"])
        if name == "ReduceLogSumExp":
            return [_log_sum_exp_compute(x, axes, keep, out.dtype)]
        pre, kind, post = LOWER_REDUCERS[name]
        # bools reduce (max/min only) as uint8
        cd = D.uint8 if x.dtype is D.bool else work_dtype(x.dtype)
        n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))

        def elem(v: Expr) -> Expr:
            v = to(cd, v)
            return pre(v) if pre is not None else v

        def finish(v: Expr) -> Expr:
            if post is not None:
                v = post(v, n)
            return cast_expr(v, out.dtype)

        if not axes:  # noop_with_empty_axes: the element-wise steps only
            return [te.compute(name, out.shape, lambda *i: finish(elem(x[i])), out.dtype)]
        red = topi.reduce_axes(f"{name}_acc", x, axes, keep, kind, elem, cd)
        if post is None and cd == out.dtype:
            return [red]
        return [te.compute(name, out.shape, lambda *i: finish(red[i]), out.dtype)]

    return compute


def _log_sum_exp_compute(x: te.Tensor, axes: tuple[int, ...], keep: bool,
                         dtype: DType) -> te.Tensor:
    """log(sum(exp(x - m))) + m in float64, with m the max (0 where it is not finite)."""
    f64 = D.float64

    m = reduce_over("lse_max", x.shape, axes, True, "max", lambda s, k: to(f64, x[s]))

    def shift(k: tuple[Expr, ...]) -> Expr:
        return topi.let(m[k], lambda v: B.select(B.call("isfinite", v), v, const(0.0, f64)))

    s = reduce_over("lse_sum", x.shape, axes, True, "sum",
                    lambda s, k: B.call("exp", to(f64, x[s]) - shift(k)))

    def body(*i: Expr) -> Expr:
        k = keep_index(i, axes) if keep else expand_index(i, axes)
        return cast_expr(B.call("log", s[k]) + shift(k), dtype)

    shape = [1 if a in axes else d for a, d in enumerate(x.shape)] if keep else \
        [d for a, d in enumerate(x.shape) if a not in axes]
    return te.compute("ReduceLogSumExp", shape, body, dtype)


_REDUCE_ATTRS = {"keepdims": Attr("int", 1), "noop_with_empty_axes": Attr("int", 0)}
_MAXMIN = NUMERIC + (D.uint8, D.int8, D.bool)

for _name, _dtypes, _since in (
    ("ReduceSum", NUMERIC, 13),
    ("ReduceMean", NUMERIC, 18),
    ("ReduceMax", _MAXMIN, 18),
    ("ReduceMin", _MAXMIN, 18),
    ("ReduceProd", NUMERIC, 18),
    ("ReduceL1", NUMERIC, 18),
    ("ReduceL2", NUMERIC, 18),
    ("ReduceSumSquare", NUMERIC, 18),
    ("ReduceLogSum", NUMERIC, 18),  # integer types: opsets before 28
    ("ReduceLogSumExp", NUMERIC, 18),
):
    register(OpDef(
        name=_name, infer=_reduce_infer(_dtypes), ref=_reduce_ref(_name),
        attrs=dict(_REDUCE_ATTRS), kind=Kind.REDUCTION, inputs=(1, 2),
        upgrade=_upgrade_axes(_since), compute=_reduce_compute(_name), shape_inputs=(1,),
        doc=f"{_name} over the axes in input 1 (all axes when absent or empty)",
    ))


# ---------------------------------------------------------------------------------------
# ArgMax / ArgMin


def _arg_infer(ctx: InferCtx) -> list[TensorType]:
    x = need(ctx, 0, "data")
    check_dtype(ctx, x, ALL_NUMERIC)
    if x.shape is None:
        return [TensorType(None, D.int64)]
    if x.rank == 0:
        raise ctx.fail("input must have rank >= 1")
    ax = norm_axis(ctx, ctx.attrs["axis"], len(x.shape))
    if x.shape[ax] == 0:
        raise ctx.fail(f"cannot take {ctx.op} over the empty axis {ax} of {x}")
    shape = reduced_shape(ctx, x.shape, (ax,), 1, bool(ctx.attrs["keepdims"]))
    return [TensorType(shape, D.int64)]


def _arg_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0]
    ax = ctx.attrs["axis"] % x.ndim
    if x.shape[ax] == 0:
        raise ExecutionError(f"{ctx.op}: axis {ax} of shape {list(x.shape)} is empty")
    xc = x.astype(compute_dtype(x.dtype), copy=False)
    pick = np.argmax if ctx.op == "ArgMax" else np.argmin
    if ctx.attrs["select_last_index"]:
        idx = x.shape[ax] - 1 - pick(np.flip(xc, axis=ax), axis=ax)
    else:
        idx = pick(xc, axis=ax)
    if ctx.attrs["keepdims"]:
        idx = np.expand_dims(idx, ax)
    return [np.asarray(idx, dtype=np.int64)]


def _arg_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """The extreme value along the axis, then the first (or last) index holding it. NaN is
    the extreme when present (max/min propagate it), so the index is that of a NaN."""
    x = ins[0]
    ax = ctx.attrs["axis"] % x.ndim
    keep = bool(ctx.attrs["keepdims"])
    m = reduce_over("arg_ext", x.shape, (ax,), True, "max" if ctx.op == "ArgMax" else "min",
                    lambda s, k: x[s])
    last = bool(ctx.attrs["select_last_index"])
    n = x.shape[ax]
    return [reduce_over(ctx.op, x.shape, (ax,), keep, "max" if last else "min",
                        lambda s, k: s[ax], where=lambda s, k: nan_eq(x[s], m[k]),
                        init=te.idx(0 if last else n - 1))]


for _name in ("ArgMax", "ArgMin"):
    register(OpDef(
        name=_name, infer=_arg_infer, ref=_arg_ref, kind=Kind.REDUCTION, compute=_arg_compute,
        attrs={"axis": Attr("int", 0), "keepdims": Attr("int", 1),
               "select_last_index": Attr("int", 0)},
        doc=f"{_name} along one axis, ties to the first (or last) index; int64 indices",
    ))


# ---------------------------------------------------------------------------------------
# CumSum / CumProd


def _cum_infer(ctx: InferCtx) -> list[TensorType]:
    x = need(ctx, 0, "x")
    check_dtype(ctx, x, NUMERIC)
    axis = scalar_input(ctx, 1, "axis", (D.int32, D.int64))
    if axis is not None and x.rank is not None:
        if x.rank == 0:
            raise ctx.fail("input must have rank >= 1")
        norm_axis(ctx, axis, x.rank)
    return [TensorType(x.shape, x.dtype)]


def _cum_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, axis_arr = inputs[0], inputs[1]
    axis = int(axis_arr.reshape(-1)[0])
    if not -x.ndim <= axis < x.ndim:
        raise ExecutionError(f"{ctx.op}: axis {axis} out of range for rank {x.ndim}")
    cd = compute_dtype(x.dtype)
    xc = np.moveaxis(x.astype(cd, copy=False), axis, -1)
    if ctx.attrs["reverse"]:
        xc = xc[..., ::-1]
    acc = np.cumsum if ctx.op == "CumSum" else np.cumprod
    y = acc(xc, axis=-1, dtype=cd)
    if ctx.attrs["exclusive"]:
        shifted = np.full_like(y, 0 if ctx.op == "CumSum" else 1)
        shifted[..., 1:] = y[..., :-1]
        y = shifted
    if ctx.attrs["reverse"]:
        y = y[..., ::-1]
    return [np.ascontiguousarray(np.moveaxis(y, -1, axis)).astype(x.dtype)]


def _cum_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """Each output element reduces the prefix (or suffix) of its row along the axis: a
    reduction over the whole row with a predicate, in the reference's order."""
    x = ins[0]
    ax = int(ctx.value(1).reshape(-1)[0]) % x.ndim
    n = x.shape[ax]
    cd = work_dtype(x.dtype)
    kind = "sum" if ctx.op == "CumSum" else "prod"
    reverse, exclusive = bool(ctx.attrs["reverse"]), bool(ctx.attrs["exclusive"])

    def body(*i: Expr) -> te.Reduction:
        r = te.rvar("r", n)
        pos = te.idx(n - 1) - r.var if reverse else r.var  # the reference's summation order
        src = i[:ax] + (pos,) + i[ax + 1:]
        if reverse:
            cond = pos > i[ax] if exclusive else pos >= i[ax]
        else:
            cond = pos < i[ax] if exclusive else pos <= i[ax]
        return te.reduce(kind, to(cd, x[src]), [r], where=cond)

    acc = te.compute(f"{ctx.op}_acc", x.shape, body, cd)
    if cd == x.dtype:
        return [acc]
    return [te.compute(ctx.op, x.shape, lambda *i: to(x.dtype, acc[i]), x.dtype)]


for _name in ("CumSum", "CumProd"):
    register(OpDef(
        name=_name, infer=_cum_infer, ref=_cum_ref, kind=Kind.OPAQUE, inputs=(2, 2),
        compute=_cum_compute, shape_inputs=(1,),
        attrs={"exclusive": Attr("int", 0), "reverse": Attr("int", 0)},
        doc=f"{_name} along the axis in input 1 (optionally exclusive and/or reversed)",
    ))


# ---------------------------------------------------------------------------------------
# TopK


def _topk_upgrade(ictx) -> None:
    if ictx.opset < 10 and "k" in ictx.attrs:
        ictx.inputs[1:] = [ictx.add_const([ictx.attrs.pop("k")], np.int64)]


def _topk_infer(ctx: InferCtx) -> list[TensorType]:
    x = need(ctx, 0, "X")
    check_dtype(ctx, x, ALL_NUMERIC)
    k = scalar_input(ctx, 1, "K", (D.int64,))
    if x.shape is None:
        return [TensorType(None, x.dtype), TensorType(None, D.int64)]
    if x.rank == 0:
        raise ctx.fail("input must have rank >= 1")
    ax = norm_axis(ctx, ctx.attrs["axis"], len(x.shape))
    if k is not None:
        if k < 0:
            raise ctx.fail(f"K must be >= 0, got {k}")
        if isinstance(x.shape[ax], int) and k > x.shape[ax]:
            raise ctx.fail(f"K={k} exceeds dimension {x.shape[ax]} of axis {ax} in {x}")
    shape = list(x.shape)
    shape[ax] = UNKNOWN if k is None else k
    return [TensorType(tuple(shape), x.dtype), TensorType(tuple(shape), D.int64)]


def _topk_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0]
    k = int(inputs[1].reshape(-1)[0])
    ax = ctx.attrs["axis"] % x.ndim
    n = x.shape[ax]
    if not 0 <= k <= n:
        raise ExecutionError(f"TopK: K={k} out of range for axis {ax} of {list(x.shape)}")
    xa = np.moveaxis(x.astype(compute_dtype(x.dtype), copy=False), ax, -1)
    if ctx.attrs["largest"]:
        # a stable ascending sort of the reversed row, reversed again: descending values
        # with ties in ascending index order
        order = np.argsort(xa[..., ::-1], axis=-1, kind="stable")[..., ::-1]
        order = n - 1 - order
    else:
        order = np.argsort(xa, axis=-1, kind="stable")
    idx = order[..., :k]
    vals = np.take_along_axis(np.moveaxis(x, ax, -1), idx, axis=-1)
    return [np.ascontiguousarray(np.moveaxis(vals, -1, ax)),
            np.ascontiguousarray(np.moveaxis(idx, -1, ax)).astype(np.int64)]


def _beats(a: Expr, b: Expr, largest: bool) -> Expr:
    """Whether value a sorts strictly before value b (NaN sorts first when largest, last
    when smallest, as in the reference's stable argsort)."""
    if not a.dtype.is_float:
        return a > b if largest else a < b
    if not largest:
        a, b = b, a
    return B.or_(a > b, B.and_(B.call("isnan", a), B.not_(B.call("isnan", b))))


def _topk_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """The rank of each element is the number of elements sorting before it (ties by index);
    output position j gathers the element of rank j."""
    x = ins[0]
    ax = ctx.attrs["axis"] % x.ndim
    n = x.shape[ax]
    largest = bool(ctx.attrs["largest"])
    out_shape = ctx.out_types[0].shape

    def at(i: tuple[Expr, ...], pos: Expr) -> tuple[Expr, ...]:
        return i[:ax] + (pos,) + i[ax + 1:]

    def rank_body(*i: Expr) -> te.Reduction:
        q = te.rvar("q", n)
        a, b = x[at(i, q.var)], x[i]
        first = B.or_(_beats(a, b, largest), B.and_(nan_eq(a, b), q.var < i[ax]))
        return te.reduce("sum", te.idx(1), [q], where=first)

    rank = te.compute("topk_rank", x.shape, rank_body, D.int64)

    def index_body(*i: Expr) -> te.Reduction:
        p = te.rvar("p", n)
        return te.reduce("sum", p.var, [p], where=B.eq(rank[at(i, p.var)], i[ax]))

    index = te.compute("topk_index", out_shape, index_body, D.int64)
    values = te.compute("topk_values", out_shape,
                        lambda *i: x[at(i, topi.safe_index(index[i], n))], x.dtype)
    return [values, index]


register(OpDef(
    name="TopK", infer=_topk_infer, ref=_topk_ref, kind=Kind.OPAQUE, inputs=(2, 2),
    compute=_topk_compute, shape_inputs=(1,),
    outputs=(2, 2), upgrade=_topk_upgrade,
    attrs={"axis": Attr("int", -1), "largest": Attr("int", 1), "sorted": Attr("int", 1)},
    doc="the K largest (or smallest) values along an axis and their int64 indices",
))
