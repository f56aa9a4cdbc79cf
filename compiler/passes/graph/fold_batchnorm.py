"""fold_batchnorm: remove inference-mode BatchNormalization.

BN(x) = scale * (x - mean) / sqrt(var + eps) + B is a per-channel affine map x * s + t with
s = scale / sqrt(var + eps) and t = B - mean * s (channels on axis 1). With constant
statistics:

- if x is produced by a product (Conv, ConvTranspose with any group, or a MatMul/Gemm whose
  output is 2-D [N, C]) with constant weights, used by this BN alone, the map folds into
  the product: W' = W * s per output channel, bias' = bias * s + t (a MatMul gets an Add of
  t, having no bias);
- otherwise the BN becomes `Mul(x, s) + t` with constants shaped [C, 1, ...].

Constants are computed in float64 and rounded once to the weight (or input) dtype. Training
mode (or a BN with its running-statistics outputs) and non-constant statistics stay.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from compiler.graph.ir import Binding, Call, Module, Var
from compiler.passes.base import graph_pass
from compiler.passes.graph.fold_scale import affine, finish_as, fold_sweep, product
from compiler.passes.graph_util import Emitter, map_functions

ORIGIN = "fold_batchnorm"


def _affine_of(b: Binding, consts: dict[Var, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """(s, t) of an inference-mode BN with constant statistics, float64 vectors."""
    e = b.expr
    if len(b.outs) != 1 or e.attr_dict["training_mode"]:
        return None
    params = e.args[1:5]
    if len(params) != 4 or any(p not in consts for p in params):
        return None
    scale, bias, mean, var = (consts[p].astype(np.float64).reshape(-1) for p in params)
    s = scale / np.sqrt(var + np.float64(e.attr_dict["epsilon"]))
    s, t = np.broadcast_arrays(s, bias - mean * s)
    return s, t


def _bn_rule(b: Binding, em: Emitter, prods: dict[Var, Binding],
             counts: Counter) -> tuple[list[Binding], list[Var]] | None:
    e = b.expr
    if not isinstance(e, Call) or e.op != "BatchNormalization":
        return None
    st = _affine_of(b, em.consts)
    if st is None:
        return None
    s, t = st
    x, out = e.args[0], b.outs[0]
    p = product(prods.get(x), em.consts) if counts[x] == 1 else None
    if p is not None and p.axis == 1 and len(s) in (1, p.channels):
        s_m, t_m = (np.broadcast_to(v, (p.channels,)) for v in (s, t))
        new = affine(p, em, s_m, t_m, out, ORIGIN)
        if new is not None:
            return new, [x]
    rank = x.type.rank
    if rank is None:
        return None
    shape = (len(s),) + (1,) * (rank - 2)
    dt = x.type.dtype.np
    s_c = em.const(s.reshape(shape).astype(dt), f"{out.name}_scale", ORIGIN)
    t_c = em.const(t.reshape(shape).astype(dt), f"{out.name}_shift", ORIGIN)
    y = em.call("Mul", [x, s_c], hint=f"{out.name}_mul", origin=ORIGIN)[0]
    em.call("Add", [y, t_c], origin=ORIGIN)
    new = finish_as(em, out)
    return (new, []) if new is not None else None


@graph_pass("Fold inference BatchNormalization into the Conv/Gemm before it, else Mul+Add.")
def fold_batchnorm(module: Module) -> Module:
    return map_functions(module, lambda fn: fold_sweep(fn, _bn_rule))
