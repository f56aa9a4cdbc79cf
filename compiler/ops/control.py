"""Control flow: If, Loop, Scan. Their bodies are graph IR Functions held as attributes."""

from __future__ import annotations

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import UNKNOWN, Function, TensorType
from compiler.ops.base import (
    REQUIRED,
    Attr,
    EvalCtx,
    InferCtx,
    Kind,
    OpDef,
    norm_axis,
    numel,
    register,
)


def _merge(a: TensorType, b: TensorType) -> TensorType:
    if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
        return TensorType(None, a.dtype)
    return TensorType(tuple(x if x == y else UNKNOWN for x, y in zip(a.shape, b.shape,
                                                                      strict=True)), a.dtype)


def _check_scalar(ctx: InferCtx, i: int, what: str, dtype: DType) -> None:
    """Input i, when present, must be a one-element tensor of `dtype`."""
    t = ctx.input(i)
    if t is None:
        return
    if t.dtype != dtype:
        raise ctx.fail(f"{what} must be {dtype}, got {t.dtype}")
    if numel(t.shape) not in (1, None):
        raise ctx.fail(f"{what} must hold one element, got {t}")


def _check_dtype(ctx: InferCtx, what: str, got: TensorType, want: TensorType) -> None:
    if got.dtype != want.dtype:
        raise ctx.fail(f"{what} is {got.dtype}, the body expects {want.dtype}")


def _scalar_true(ctx_op: str, x: np.ndarray) -> bool:
    if x.size != 1:
        raise ExecutionError(f"{ctx_op}: condition must hold one element, got shape {x.shape}")
    return bool(x.reshape(()))


# -- If ---------------------------------------------------------------------------------


def _if_infer(ctx: InferCtx) -> list[TensorType]:
    then_b: Function = ctx.attrs["then_branch"]
    else_b: Function = ctx.attrs["else_branch"]
    _check_scalar(ctx, 0, "cond", DType.bool)
    if len(then_b.results) != len(else_b.results):
        raise ctx.fail("then and else branches return different numbers of values")
    if len(then_b.results) != ctx.num_outputs:
        raise ctx.fail(f"branches return {len(then_b.results)} values, {ctx.num_outputs} bound")
    out = []
    for t, e in zip(then_b.results, else_b.results, strict=True):
        if t.type.dtype != e.type.dtype:
            raise ctx.fail(f"branches return {t.type.dtype} and {e.type.dtype}")
        out.append(_merge(t.type, e.type))
    return out


def _if_ref(ctx: EvalCtx, inputs):
    branch = "then_branch" if _scalar_true("If", inputs[0]) else "else_branch"
    return ctx.run_subgraph(ctx.attrs[branch], [])


register(OpDef(
    "If", _if_infer, _if_ref,
    attrs={"then_branch": Attr("graph"), "else_branch": Attr("graph")},
    inputs=(1, 1), outputs=(1, 1 << 16), kind=Kind.OPAQUE, host=True,
    doc="Run one of two subgraphs on a scalar boolean condition.",
))


# -- Loop -------------------------------------------------------------------------------


def _loop_infer(ctx: InferCtx) -> list[TensorType]:
    body: Function = ctx.attrs["body"]
    n_carried = len(ctx.inputs) - 2
    if len(body.params) != n_carried + 2:
        raise ctx.fail(f"body takes {len(body.params)} inputs, expected {n_carried + 2}")
    n_scan = len(body.results) - 1 - n_carried
    if n_scan < 0:
        raise ctx.fail("body returns fewer values than the loop carries")
    _check_scalar(ctx, 0, "trip count M", DType.int64)
    _check_scalar(ctx, 1, "cond", DType.bool)
    out = []
    for k in range(n_carried):
        init = ctx.inputs[2 + k]
        res = body.results[1 + k].type
        if init is not None:
            _check_dtype(ctx, f"carried value {k}", init, body.params[2 + k].type)
        _check_dtype(ctx, f"body result {1 + k}", res, body.params[2 + k].type)
        out.append(_merge(init, res) if init is not None else res)
    for k in range(n_scan):
        t = body.results[1 + n_carried + k].type
        out.append(TensorType(None if t.shape is None else (UNKNOWN, *t.shape), t.dtype))
    return out[: ctx.num_outputs]


def _loop_ref(ctx: EvalCtx, inputs):
    body: Function = ctx.attrs["body"]
    trip = None if inputs[0] is None else int(inputs[0].reshape(()))
    cond = True if len(inputs) < 2 or inputs[1] is None else _scalar_true("Loop", inputs[1])
    carried = list(inputs[2:])
    n_scan = len(body.results) - 1 - len(carried)
    scans: list[list[np.ndarray]] = [[] for _ in range(n_scan)]
    i = 0
    while cond and (trip is None or i < trip):
        outs = ctx.run_subgraph(body, [np.array(i, np.int64), np.array(cond), *carried])
        cond = _scalar_true("Loop", outs[0])
        carried = list(outs[1: 1 + len(carried)])
        for k in range(n_scan):
            scans[k].append(outs[1 + len(carried) + k])
        i += 1
    res = carried
    for k in range(n_scan):
        t = body.results[1 + len(carried) + k].type
        if scans[k]:
            res.append(np.stack(scans[k]))
        else:
            shape = [0] + [d if isinstance(d, int) else 0 for d in (t.shape or ())]
            res.append(np.zeros(shape, t.dtype.np))
    return res


register(OpDef(
    "Loop", _loop_infer, _loop_ref,
    attrs={"body": Attr("graph")},
    inputs=(2, None), outputs=(1, 1 << 16), kind=Kind.OPAQUE, host=True,
    doc="Generic loop with a trip count, a condition, carried values and scan outputs.",
))


# -- Scan (opset 9+) ----------------------------------------------------------------------


def _scan_axes(attrs, key: str, n: int) -> list[int]:
    v = attrs.get(key)
    return list(v) if v else [0] * n


def _scan_attr(ctx: InferCtx, key: str, n: int) -> list[int]:
    """`_scan_axes` with its length checked (and directions checked to be 0 or 1)."""
    v = _scan_axes(ctx.attrs, key, n)
    if len(v) != n:
        raise ctx.fail(f"{key} has {len(v)} entries, expected {n}")
    if key.endswith("directions") and any(d not in (0, 1) for d in v):
        raise ctx.fail(f"{key} must hold 0 (forward) or 1 (reverse), got {v}")
    return v


def _scan_infer(ctx: InferCtx) -> list[TensorType]:
    body: Function = ctx.attrs["body"]
    n_in = ctx.attrs["num_scan_inputs"]
    n_state = len(ctx.inputs) - n_in
    if not 1 <= n_in <= len(ctx.inputs):
        raise ctx.fail(f"num_scan_inputs={n_in} must be in [1, {len(ctx.inputs)}]")
    if len(body.params) != len(ctx.inputs):
        raise ctx.fail(f"body takes {len(body.params)} inputs, Scan has {len(ctx.inputs)}")
    n_out = len(body.results) - n_state
    if n_out < 0:
        raise ctx.fail(f"body returns {len(body.results)} values for {n_state} state values")
    in_axes = _scan_attr(ctx, "scan_input_axes", n_in)
    _scan_attr(ctx, "scan_input_directions", n_in)
    out_axes = _scan_attr(ctx, "scan_output_axes", n_out)
    _scan_attr(ctx, "scan_output_directions", n_out)
    out = []
    for k in range(n_state):
        init = ctx.inputs[k]
        if init is None:
            raise ctx.fail(f"state input {k} is required")
        res = body.results[k].type
        _check_dtype(ctx, f"state input {k}", init, body.params[k].type)
        _check_dtype(ctx, f"body result {k}", res, body.params[k].type)
        out.append(_merge(init, res))
    for k in range(n_in):
        x = ctx.inputs[n_state + k]
        if x is None:
            raise ctx.fail(f"scan input {k} is required")
        p = body.params[n_state + k].type
        _check_dtype(ctx, f"scan input {k}", x, p)
        if x.shape is None:
            continue
        if not x.shape:
            raise ctx.fail(f"scan input {k} must have rank >= 1, got {x}")
        norm_axis(ctx, in_axes[k], len(x.shape))
        if p.shape is not None and len(p.shape) != len(x.shape) - 1:
            raise ctx.fail(f"scan input {k} {x} has rank {len(x.shape)}, the body takes "
                           f"slices of rank {len(p.shape)}")
    for k in range(n_out):
        t = body.results[n_state + k].type
        if t.shape is None:
            out.append(t)
            continue
        ax = norm_axis(ctx, out_axes[k], len(t.shape), inclusive=True)
        shape = list(t.shape)
        shape.insert(ax, UNKNOWN)
        out.append(TensorType(tuple(shape), t.dtype))
    return out


def _scan_ref(ctx: EvalCtx, inputs):
    a = ctx.attrs
    body: Function = a["body"]
    n_in = a["num_scan_inputs"]
    n_state = len(inputs) - n_in
    in_axes = _scan_axes(a, "scan_input_axes", n_in)
    in_dirs = _scan_axes(a, "scan_input_directions", n_in)
    n_out = len(body.results) - n_state
    out_axes = _scan_axes(a, "scan_output_axes", n_out)
    out_dirs = _scan_axes(a, "scan_output_directions", n_out)
    xs = []
    for k in range(n_in):
        x = inputs[n_state + k]
        if not -x.ndim <= in_axes[k] < x.ndim:
            raise ExecutionError(f"Scan: axis {in_axes[k]} out of range for scan input {k} "
                                 f"of shape {list(x.shape)}")
        x = np.moveaxis(x, in_axes[k] % x.ndim, 0)
        xs.append(x[::-1] if in_dirs[k] else x)
    steps = {x.shape[0] for x in xs}
    if len(steps) > 1:
        raise ExecutionError(f"Scan: scan inputs have different lengths {sorted(steps)}")
    n = steps.pop() if steps else 0
    state = list(inputs[:n_state])
    ys: list[list[np.ndarray]] = [[] for _ in range(n_out)]
    for i in range(n):
        outs = ctx.run_subgraph(body, [*state, *(x[i] for x in xs)])
        state = list(outs[:n_state])
        for k in range(n_out):
            ys[k].append(outs[n_state + k])
    res = state
    for k in range(n_out):
        t = body.results[n_state + k].type
        if ys[k]:
            y = np.stack(ys[k][::-1] if out_dirs[k] else ys[k])
        else:
            y = np.zeros([0] + [d if isinstance(d, int) else 0 for d in (t.shape or ())],
                         t.dtype.np)
        res.append(np.moveaxis(y, 0, out_axes[k] % y.ndim))
    return res


def _scan_upgrade(ictx) -> None:
    if ictx.opset < 9:
        raise ictx.fail("the opset-8 form of Scan (batched, with sequence_lens) is not supported")


register(OpDef(
    "Scan", _scan_infer, _scan_ref,
    attrs={
        "body": Attr("graph"),
        "num_scan_inputs": Attr("int", REQUIRED),
        "scan_input_axes": Attr("ints", None),
        "scan_input_directions": Attr("ints", None),
        "scan_output_axes": Attr("ints", None),
        "scan_output_directions": Attr("ints", None),
    },
    inputs=(1, None), outputs=(1, 1 << 16), kind=Kind.OPAQUE, upgrade=_scan_upgrade,
    host=True,
    doc="Iterate a body over slices of scan inputs, threading state.",
))
