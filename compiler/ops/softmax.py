"""Softmax, LogSoftmax and Hardmax.

Since opset 13 these normalise along the single axis `axis` (default -1). Before 13 the input
was coerced to 2-D at `axis` (default 1): the op normalised over all of the dimensions from
`axis` to the end together. The upgrade hook keeps that meaning by setting the internal
attribute `coerce_2d=1`, which ONNX models themselves cannot set.

Softmax and LogSoftmax compute step by step in the input type, like their ONNX function
bodies (ReduceMax, Sub, Exp, ReduceSum, Div / Log, Sub), so float16/bfloat16 results round
where the spec rounds; the sum accumulates as ReduceSum does (in float32 for those types).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from compiler.graph.ir import TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
from compiler.ops.base import Attr, EvalCtx, InferCtx, Kind, OpDef, check_dtype, norm_axis, register
from compiler.ops.common import (
    FLOATS,
    compute_dtype,
    const,
    keep_index,
    nan_eq,
    need,
    reduce_over,
    to,
    work_dtype,
)

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx


def _upgrade(ictx) -> None:
    if "coerce_2d" in ictx.attrs:
        raise ictx.fail("attribute 'coerce_2d' is internal to Anvil, not an ONNX attribute")
    if ictx.opset < 13:
        ictx.attrs.setdefault("axis", 1)
        ictx.attrs["coerce_2d"] = 1


def _infer(ctx: InferCtx) -> list[TensorType]:
    x = need(ctx, 0, "input")
    check_dtype(ctx, x, FLOATS)
    if x.rank is not None:
        if x.rank == 0:
            raise ctx.fail("input must have rank >= 1")
        norm_axis(ctx, ctx.attrs["axis"], x.rank)
    return [TensorType(x.shape, x.dtype)]


def _axes(ctx: EvalCtx, x: np.ndarray) -> tuple[int, ...]:
    ax = ctx.attrs["axis"] % x.ndim
    return tuple(range(ax, x.ndim)) if ctx.attrs.get("coerce_2d", 0) else (ax,)


def _sum(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """ReduceSum's meaning: float16/bfloat16 accumulate in float32, then round once."""
    return np.sum(x.astype(compute_dtype(x.dtype)), axis=axes, keepdims=True).astype(x.dtype)


def softmax(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axes, keepdims=True))
    return e / _sum(e, axes)


def log_softmax(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    d = x - np.max(x, axis=axes, keepdims=True)
    return d - np.log(_sum(np.exp(d), axes))


def hardmax(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """One-hot of the first maximum over `axes` (consecutive axes, flattened together)."""
    lo, hi = axes[0], axes[-1] + 1
    moved = np.moveaxis(x, list(range(lo, hi)), list(range(x.ndim - (hi - lo), x.ndim)))
    n = int(np.prod(x.shape[lo:hi], dtype=np.int64))
    flat = moved.reshape(moved.shape[:moved.ndim - (hi - lo)] + (n,))
    out = np.zeros_like(flat)
    if n:
        idx = np.argmax(flat, axis=-1)[..., None]
        np.put_along_axis(out, idx, 1, axis=-1)
    out = out.reshape(moved.shape)
    return np.moveaxis(out, list(range(x.ndim - (hi - lo), x.ndim)), list(range(lo, hi)))


_FNS = {"Softmax": softmax, "LogSoftmax": log_softmax, "Hardmax": hardmax}


def _ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0]
    return [_FNS[ctx.op](x, _axes(ctx, x)).astype(x.dtype)]


# ---------------------------------------------------------------------------------------
# Lowering: each step rounds to x's dtype as the numpy body does (loop-IR float16/bfloat16
# arithmetic and intrinsics compute in float32 and round once, like numpy's); the sum
# accumulates in float32 for those types and rounds once.


def _stats(x: te.Tensor, axes: Sequence[int]) -> tuple[te.Tensor, te.Tensor]:
    """max(x) and sum(exp(x - max)) over axes (keepdims), the sum rounded to x's dtype."""
    m = reduce_over("sm_max", x.shape, axes, True, "max", lambda s, k: x[s])
    acc = work_dtype(x.dtype)
    total = reduce_over("sm_sum", x.shape, axes, True, "sum",
                        lambda s, k: to(acc, B.call("exp", x[s] - m[k])))
    if acc != x.dtype:
        wide = total
        total = te.compute("sm_sum_r", wide.shape, lambda *i: to(x.dtype, wide[i]), x.dtype,
                           inline=False)
    return m, total


def softmax_stage(x: te.Tensor, axes: Sequence[int]) -> te.Tensor:
    m, total = _stats(x, axes)
    return te.compute("Softmax", x.shape, lambda *i: B.call(
        "exp", x[i] - m[keep_index(i, axes)]) / total[keep_index(i, axes)], x.dtype)


def log_softmax_stage(x: te.Tensor, axes: Sequence[int]) -> te.Tensor:
    m, total = _stats(x, axes)

    def body(*i: Expr) -> Expr:
        k = keep_index(i, axes)
        return (x[i] - m[k]) - B.call("log", total[k])

    return te.compute("LogSoftmax", x.shape, body, x.dtype)


def hardmax_stage(x: te.Tensor, axes: Sequence[int]) -> te.Tensor:
    """1 at the first maximum (in row-major order over `axes`), 0 elsewhere."""
    lo, hi = axes[0], axes[-1] + 1
    sub = x.shape[lo:hi]
    m = reduce_over("hm_max", x.shape, axes, True, "max", lambda s, k: x[s])
    first = reduce_over("hm_first", x.shape, axes, True, "min",
                        lambda s, k: topi.flat_index(sub, s[lo:hi]),
                        where=lambda s, k: nan_eq(x[s], m[k]))

    def body(*i: Expr) -> Expr:
        hit = B.eq(topi.flat_index(sub, i[lo:hi]), first[keep_index(i, axes)])
        return B.select(hit, const(1.0, x.dtype), const(0.0, x.dtype))

    return te.compute("Hardmax", x.shape, body, x.dtype)


_STAGES = {"Softmax": softmax_stage, "LogSoftmax": log_softmax_stage, "Hardmax": hardmax_stage}


def _compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x = ins[0]
    ax = ctx.attrs["axis"] % x.ndim
    axes = tuple(range(ax, x.ndim)) if ctx.attrs.get("coerce_2d", 0) else (ax,)
    return [_STAGES[ctx.op](x, axes)]


for _name in _FNS:
    register(OpDef(
        name=_name, infer=_infer, ref=_ref, kind=Kind.OPAQUE, upgrade=_upgrade,
        compute=_compute,
        attrs={"axis": Attr("int", -1), "coerce_2d": Attr("int", 0)},
        doc=f"{_name} along `axis` (along all axes from `axis` on when coerce_2d=1)",
    ))
