"""Losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Both take class scores shaped (N, C, d1, ..., dk), integer targets shaped (N, d1, ..., dk)
and optional per-class weights (C). A target equal to `ignore_index` contributes nothing
(weight 0). `reduction` is "none" (per-element losses), "sum", or "mean" (the weighted sum
divided by the sum of the weights actually used).
"""

from __future__ import annotations

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import Dim, TensorType
from compiler.ops.base import Attr, EvalCtx, InferCtx, Kind, OpDef, check_dtype, dim_eq, register
from compiler.ops.common import FLOATS, compute_dtype, need
from compiler.ops.softmax import log_softmax

REDUCTIONS = ("none", "sum", "mean")


def _merge(a: Dim, b: Dim) -> Dim:
    return a if isinstance(a, int) else b


def _loss_type(ctx: InferCtx, what: str) -> TensorType:
    """Check input/target/weight; the type of the loss output."""
    x = need(ctx, 0, what)
    t = need(ctx, 1, "target")
    check_dtype(ctx, x, FLOATS, what)
    check_dtype(ctx, t, (DType.int32, DType.int64), "target")
    reduction = ctx.attrs["reduction"]
    if reduction not in REDUCTIONS:
        raise ctx.fail(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    if x.rank is not None and x.rank < 2:
        raise ctx.fail(f"{what} must have shape (N, C, d1, ..., dk), got {x}")
    shape = t.shape
    if x.shape is not None and t.shape is not None:
        want = (x.shape[0],) + x.shape[2:]
        if len(t.shape) != len(want) or any(
            dim_eq(a, b) is False for a, b in zip(t.shape, want, strict=True)
        ):
            raise ctx.fail(f"target {t} does not match {what} {x}: expected shape (N, d1, ...)")
        shape = tuple(_merge(a, b) for a, b in zip(t.shape, want, strict=True))
    elif x.shape is not None:
        shape = (x.shape[0],) + x.shape[2:]
    w = ctx.input(2)
    if w is not None:
        if w.dtype != x.dtype:
            raise ctx.fail(f"weight dtype {w.dtype} differs from {what} dtype {x.dtype}")
        if w.rank is not None and w.rank != 1:
            raise ctx.fail(f"weight must be 1-D (C), got {w}")
        if w.shape is not None and x.shape is not None and dim_eq(w.shape[0], x.shape[1]) is False:
            raise ctx.fail(f"weight {w} does not match the {x.shape[1]} classes of {x}")
    return TensorType(shape if reduction == "none" else (), x.dtype)


def nll_loss(ctx: EvalCtx, x: np.ndarray, target: np.ndarray,
             weight: np.ndarray | None) -> np.ndarray:
    """The loss in x's dtype; x holds log-probabilities (N, C, ...)."""
    ignore = ctx.attrs.get("ignore_index")
    c = x.shape[1]
    t = target.astype(np.int64)
    keep = t != ignore if ignore is not None else np.ones(t.shape, dtype=bool)
    tt = np.where(keep, t, 0)
    if np.any((tt < 0) | (tt >= c)):
        bad = int(tt[(tt < 0) | (tt >= c)][0])
        raise ExecutionError(f"{ctx.op}: target {bad} out of range for {c} classes")
    picked = np.take_along_axis(x, tt[:, None], axis=1)[:, 0]
    w = weight[tt] if weight is not None else np.ones(t.shape, dtype=x.dtype)
    w = np.where(keep, w, x.dtype.type(0))
    loss = np.where(keep, -picked * w, x.dtype.type(0))
    reduction = ctx.attrs["reduction"]
    if reduction == "sum":
        return np.sum(loss, dtype=x.dtype)
    if reduction == "mean":
        return np.sum(loss, dtype=x.dtype) / np.sum(w, dtype=x.dtype)
    return loss


_ATTRS = {"ignore_index": Attr("int", None), "reduction": Attr("string", "mean")}


def _nll_infer(ctx: InferCtx) -> list[TensorType]:
    return [_loss_type(ctx, "input")]


def _nll_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, target = inputs[0], inputs[1]
    weight = inputs[2] if len(inputs) > 2 else None
    cd = compute_dtype(x.dtype)
    w = None if weight is None else weight.astype(cd)
    return [np.asarray(nll_loss(ctx, x.astype(cd), target, w)).astype(x.dtype)]


register(OpDef(
    name="NegativeLogLikelihoodLoss", infer=_nll_infer, ref=_nll_ref, attrs=dict(_ATTRS),
    kind=Kind.OPAQUE, inputs=(2, 3),
    doc="-input[n, target[n, d], d] * weight[target], reduced per `reduction`",
))


def _sce_infer(ctx: InferCtx) -> list[TensorType]:
    loss = _loss_type(ctx, "scores")
    x = ctx.inputs[0]
    return [loss, TensorType(x.shape, x.dtype)][:max(ctx.num_outputs, 1)]


def _sce_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, labels = inputs[0], inputs[1]
    weight = inputs[2] if len(inputs) > 2 else None
    cd = compute_dtype(x.dtype)
    lp = log_softmax(x, (1,))  # in the input type, like LogSoftmax
    w = None if weight is None else weight.astype(cd)
    loss = np.asarray(nll_loss(ctx, lp.astype(cd), labels, w)).astype(x.dtype)
    return [loss, lp.astype(x.dtype)][:max(ctx.num_outputs, 1)]


register(OpDef(
    name="SoftmaxCrossEntropyLoss", infer=_sce_infer, ref=_sce_ref, attrs=dict(_ATTRS),
    kind=Kind.OPAQUE, inputs=(2, 3), outputs=(1, 2),
    doc="NegativeLogLikelihoodLoss of LogSoftmax(scores, axis=1); log_prob as output 1",
))
