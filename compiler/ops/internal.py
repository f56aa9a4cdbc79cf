"""Anvil-internal ops that graph passes introduce (never imported from ONNX).

`anvil.Fused`: a fusion group made by the `fuse_ops` pass. Its `body` attribute is a graph
function over the group's inputs; the call means "run the body". Lowering composes the
computes of the body's ops into one kernel: injective stages are inlined into their
consumers, reductions materialise inside the kernel, so a group is one launch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from compiler.graph.ir import Call, Const, Function
from compiler.ops.base import Attr, EvalCtx, InferCtx, Kind, OpDef, get_op, register

FUSED = "anvil.Fused"


def _fused_infer(ctx: InferCtx):
    from compiler.graph.verifier import compatible

    body: Function = ctx.attrs["body"]
    if len(ctx.inputs) != len(body.params):
        raise ctx.fail(f"body takes {len(body.params)} inputs, got {len(ctx.inputs)}")
    for k, (t, p) in enumerate(zip(ctx.inputs, body.params, strict=True)):
        if t is None or not compatible(p.type, t):
            raise ctx.fail(f"input {k} is {t}, body parameter %{p.name} is {p.type}")
    if ctx.num_outputs != len(body.results):
        raise ctx.fail(f"body has {len(body.results)} results, {ctx.num_outputs} bound")
    return [r.type for r in body.results]


def _fused_ref(ctx: EvalCtx, inputs: Sequence[np.ndarray | None]):
    assert ctx.run_subgraph is not None
    return ctx.run_subgraph(ctx.attrs["body"], list(inputs))


def const_tensor(te, arr: np.ndarray, name: str = "const"):
    """A small constant as a te stage: a select chain over the flattened index."""
    from compiler.dtypes import DType
    from compiler.loop import build as B
    from compiler.loop.ir import const

    dt = DType.from_np(arr.dtype)
    flat = arr.reshape(-1)
    shape = arr.shape
    strides = [int(np.prod(shape[k + 1:])) for k in range(len(shape))]

    def body(*axes):
        value = const(flat[-1].item(), dt) if flat.size else const(0, dt)
        if flat.size <= 1 or not axes:
            return value
        pos = None
        for a, s in zip(axes, strides, strict=True):
            term = a * te.idx(s) if s != 1 else a
            pos = term if pos is None else pos + term
        for k in range(flat.size - 2, -1, -1):
            value = B.select(B.eq(pos, te.idx(k)), const(flat[k].item(), dt), value)
        return value

    return te.compute(name, shape, body, dtype=dt)


def _fused_compute(ctx, holders):
    from compiler.lower import te
    from compiler.lower.lowering import LowerCtx

    body: Function = ctx.attrs["body"]
    env = dict(zip(body.params, holders, strict=True))
    values: dict = {}
    for i, b in enumerate(body.body):
        e = b.expr
        if isinstance(e, Const):
            arr = e.value.array
            values[b.outs[0]] = arr
            env[b.outs[0]] = const_tensor(te, arr, b.outs[0].name)
            continue
        assert isinstance(e, Call)
        op = get_op(e.op)
        if op is None or op.compute is None or op.host:
            raise ctx.fail(f"fused op {e.op} cannot be lowered")
        known = {k: values[a] for k, a in enumerate(e.args)
                 if k in op.shape_inputs and a is not None and a in values}
        missing = [k for k in op.shape_inputs if k < len(e.args) and e.args[k] is not None
                   and k not in known]
        if missing:
            raise ctx.fail(f"fused op {e.op} needs the value of input {missing[0]}")
        sub = LowerCtx(e.op, e.attr_dict, [a.type if a is not None else None for a in e.args],
                       [o.type for o in b.outs], known, f"{ctx.where} body binding {i}")
        outs = list(op.compute(sub, [env[a] if a is not None else None for a in e.args]))
        for o, t in zip(b.outs, outs, strict=False):
            env[o] = t
    return [env[r] for r in body.results]


register(OpDef(
    FUSED, _fused_infer, _fused_ref, attrs={"body": Attr("graph")}, kind=Kind.OPAQUE,
    inputs=(0, None), outputs=(1, 1 << 16), domain="anvil", compute=_fused_compute,
    doc="A fusion group (fuse_ops): one kernel computing its body.",
))
