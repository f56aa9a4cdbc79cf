"""Lowering a graph-IR subgraph (an attribute Function) inline into tensor-expression stages.

Values known at compile time are folded with the ops' numpy references; the rest use the
ops' compute definitions. Used by ops whose attributes carry small functions (FlexAttention's
score and probability modifiers) and, later, by control flow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import TensorType
from compiler.loop import build as B
from compiler.lower import te, topi
from compiler.lower.te import idx
from compiler.ops.base import EvalCtx

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

_MAX_CONST = 4096  # elements of a folded constant that a subgraph may feed to a compute


def const_stage(name: str, value: np.ndarray) -> te.Tensor:
    """A compute stage holding a small constant array (a select over its flat index)."""
    value = np.asarray(value)
    dt = DType.from_np(value.dtype)
    flat = value.reshape(-1)
    if flat.size and (flat == flat[0]).all() and not np.isnan(flat[0:1].astype(float)).any():
        return te.compute(name, value.shape, lambda *i: topi.scalar(flat[0].item(), dt), dt)
    if flat.size > _MAX_CONST:
        raise ValueError(f"constant of {flat.size} elements")

    def body(*i):
        f = topi.flat_index(value.shape, i)
        e = topi.scalar(flat[-1].item(), dt)
        for n in range(flat.size - 2, -1, -1):
            e = B.select(B.eq(f, idx(n)), topi.scalar(flat[n].item(), dt), e)
        return e

    return te.compute(name, value.shape, body, dt)


def inline_function(ctx: LowerCtx, fn, args: list[te.Tensor]) -> list[te.Tensor]:
    """Lower a subgraph's bindings into stages at the concrete shapes of `args`: values known
    at compile time (constants, shapes, and ops of them) are folded with the ops' numpy
    references; the other calls use their ops' compute definitions."""
    from compiler.graph.ir import Const
    from compiler.lower.lowering import LowerCtx as LCtx
    from compiler.ops.base import InferCtx as ICtx
    from compiler.ops.base import get_op

    env: dict = {p: (a, None) for p, a in zip(fn.params, args, strict=True)}

    def typ(entry):
        t, val = entry
        if val is not None:
            return TensorType(tuple(int(d) for d in val.shape), DType.from_np(val.dtype))
        return TensorType(t.shape, t.dtype)

    for n, bnd in enumerate(fn.body):
        e = bnd.expr
        where = f"{ctx.where} subgraph @{fn.name} binding {n}"
        if isinstance(e, Const):
            env[bnd.outs[0]] = (None, e.value.array)
            continue
        op = get_op(e.op)
        if op is None or any(x is not None and x not in env for x in e.args):
            raise ctx.fail(f"{where}: cannot lower {e.op} (unknown op or outer-scope value)")
        vals = [env[x] if x is not None else None for x in e.args]
        in_types = [typ(x) if x is not None else None for x in vals]
        known = [None if x is None else x[1] for x in vals]
        if e.op in ("Shape", "Size") and vals[0] is not None:
            known[0] = np.zeros(in_types[0].shape, in_types[0].dtype.np)
        attrs = e.attr_dict
        ictx = ICtx(op.name, where, attrs, in_types, known, len(bnd.outs))
        out_types = list(op.infer(ictx))[: len(bnd.outs)]
        if all(v is None or k is not None for v, k in zip(vals, known, strict=True)) \
                and not op.nondeterministic and not op.host:
            ectx = EvalCtx(op.name, attrs, len(bnd.outs), out_types)
            with np.errstate(all="ignore"):
                res = [np.asarray(r) for r in op.ref(ectx, known)]
            for o, r in zip(bnd.outs, res, strict=False):
                env[o] = (None, r)
            continue
        if op.compute is None or op.host:
            raise ctx.fail(f"{where}: {e.op} has no compute definition")
        holders = []
        for k, x in enumerate(vals):
            if x is None or x[0] is not None:
                holders.append(None if x is None else x[0])
                continue
            try:
                holders.append(const_stage(f"c{n}_{k}", x[1]))
            except ValueError:
                raise ctx.fail(f"{where}: constant input {k} of {e.op} is too large "
                               f"({x[1].size} elements) to inline") from None
        lctx = LCtx(op.name, attrs, in_types, out_types,
                    {i: known[i] for i in op.shape_inputs
                     if i < len(known) and known[i] is not None}, where)
        for o, r in zip(bnd.outs, op.compute(lctx, holders), strict=False):
            env[o] = (r, None)
    out = []
    for r in fn.results:
        t, val = env[r]
        out.append(t if t is not None else const_stage("result", val))
    return out


