"""Losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Both take class scores shaped (N, C, d1, ..., dk), integer targets shaped (N, d1, ..., dk)
and optional per-class weights (C). A target equal to `ignore_index` contributes nothing
(weight 0). `reduction` is "none" (per-element losses), "sum", or "mean" (the weighted sum
divided by the sum of the weights actually used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import Dim, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
from compiler.ops.base import Attr, EvalCtx, InferCtx, Kind, OpDef, check_dtype, dim_eq, register
from compiler.ops.common import FLOATS, compute_dtype, const, need, to, work_dtype
from compiler.ops.softmax import log_softmax, log_softmax_stage

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

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


def nll_stage(ctx: LowerCtx, x: te.Tensor, target: te.Tensor,
              weight: te.Tensor | None, dtype: DType) -> te.Tensor:
    """The loop-IR twin of `nll_loss`: x (log-probabilities) and weight read as `dtype`, the
    loss cast to `ctx.out_types[0]`. A target out of range reads class 0 (the reference
    raises); never out of bounds."""
    ignore = ctx.attrs.get("ignore_index")
    c = x.shape[1]
    out = ctx.out_types[0]
    zero = const(0.0, dtype)

    def terms(t_idx: tuple[Expr, ...]) -> tuple[Expr, Expr]:
        """(loss, weight) of the target element at t_idx."""
        t = to(DType.int64, target[t_idx])
        keep = B.ne(t, te.idx(ignore)) if ignore is not None else None
        cls = topi.safe_index(B.select(keep, t, te.idx(0)) if keep is not None else t, c)
        picked = to(dtype, x[(t_idx[0], cls, *t_idx[1:])])
        w = to(dtype, weight[(cls,)]) if weight is not None else const(1.0, dtype)
        loss = -picked * w
        if keep is not None:
            w, loss = B.select(keep, w, zero), B.select(keep, loss, zero)
        return loss, w

    if ctx.attrs["reduction"] == "none":
        return te.compute("nll", out.shape, lambda *i: to(out.dtype, terms(i)[0]), out.dtype)

    def total(k: int):
        def body() -> te.Reduction:
            rs = [te.rvar(f"n{a}", d) for a, d in enumerate(target.shape)]
            return te.reduce("sum", terms(tuple(r.var for r in rs))[k], rs)
        return body

    num = te.compute("nll_sum", (), total(0), dtype)
    if ctx.attrs["reduction"] == "sum":
        return te.compute("nll", (), lambda: to(out.dtype, num[()]), out.dtype)
    den = te.compute("nll_wsum", (), total(1), dtype)
    return te.compute("nll", (), lambda: to(out.dtype, num[()] / den[()]), out.dtype)


_ATTRS = {"ignore_index": Attr("int", None), "reduction": Attr("string", "mean")}


def _nll_infer(ctx: InferCtx) -> list[TensorType]:
    return [_loss_type(ctx, "input")]


def _nll_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, target = inputs[0], inputs[1]
    weight = inputs[2] if len(inputs) > 2 else None
    cd = compute_dtype(x.dtype)
    w = None if weight is None else weight.astype(cd)
    return [np.asarray(nll_loss(ctx, x.astype(cd), target, w)).astype(x.dtype)]


def _nll_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x, target = ins[0], ins[1]
    weight = ins[2] if len(ins) > 2 else None
    return [nll_stage(ctx, x, target, weight, work_dtype(x.dtype))]


register(OpDef(
    name="NegativeLogLikelihoodLoss", infer=_nll_infer, ref=_nll_ref, attrs=dict(_ATTRS),
    compute=_nll_compute,
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


def _sce_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x, labels = ins[0], ins[1]
    weight = ins[2] if len(ins) > 2 else None
    lp = log_softmax_stage(x, (1,))
    loss = nll_stage(ctx, lp, labels, weight, work_dtype(x.dtype))
    return [loss, lp][:max(len(ctx.out_types), 1)]


register(OpDef(
    name="SoftmaxCrossEntropyLoss", infer=_sce_infer, ref=_sce_ref, attrs=dict(_ATTRS),
    compute=_sce_compute,
    kind=Kind.OPAQUE, inputs=(2, 3), outputs=(1, 2),
    doc="NegativeLogLikelihoodLoss of LogSoftmax(scores, axis=1); log_prob as output 1",
))
