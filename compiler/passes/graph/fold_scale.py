"""fold_scale: fold constant per-channel scales and shifts into the weights of a product.

A *product* is a Conv, ConvTranspose, MatMul or Gemm with constant weights (and a constant
bias or C, if any). Its output channels lie on axis 1 (Conv, ConvTranspose: W.shape[0], resp.
W.shape[1] * group, channels) or on the last axis (MatMul, Gemm: the columns of W).

- `Mul(y, c)` with y a product output and c a constant scalar or a constant varying only along
  y's channel axis: the weights become W * c per output channel, the bias B * c;
- `Add(y, c)` with y the output of a Conv, ConvTranspose or Gemm and c such a constant: the
  bias becomes B + c (created if absent; Gemm's C becomes beta * C + c with beta = 1).
  MatMul has no bias, so an Add after it stays.

y must be used by the Mul/Add alone, and the Mul/Add must not broadcast y to another shape.
Folded constants are computed in float64 and rounded once to the weight dtype, so results
differ from the unfolded graph by rounding only. `fold_batchnorm` reuses this machinery.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from compiler.graph.ir import Binding, Call, Function, Module, Var
from compiler.graph.verifier import compatible
from compiler.passes.base import graph_pass
from compiler.passes.graph_util import (
    Emitter,
    map_functions,
    producers,
    remove_unused,
    replace_bindings,
    use_counts,
)

PRODUCTS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
BIASED = ("Conv", "ConvTranspose", "Gemm")


@dataclass(frozen=True)
class Product:
    """A product binding whose output channels can absorb a per-channel affine map."""

    binding: Binding
    weight: np.ndarray
    channels: int  # number of output channels
    axis: int  # output channel axis
    rank: int  # output rank


def product(b: Binding | None, consts: Mapping[Var, np.ndarray]) -> Product | None:
    """`b` as a product with constant weights, or None."""
    if b is None or not isinstance(b.expr, Call) or b.expr.op not in PRODUCTS:
        return None
    e, out = b.expr, b.outs[0]
    if len(b.outs) != 1 or not out.type.dtype.is_float or len(e.args) < 2:
        return None
    if e.args[1] not in consts or any(a is not None and a not in consts for a in e.args[2:]):
        return None
    w = consts[e.args[1]]
    if e.op == "Conv":
        return Product(b, w, w.shape[0], 1, w.ndim)
    if e.op == "ConvTranspose":
        return Product(b, w, w.shape[1] * int(e.attr_dict["group"]), 1, w.ndim)
    if e.op == "MatMul":
        rank = out.type.rank
        if w.ndim < 2 or rank is None:
            return None
        return Product(b, w, w.shape[-1], rank - 1, rank)
    m = w.shape[0] if e.attr_dict["transB"] else w.shape[1]
    return Product(b, w, m, 1, 2)


def per_channel(c: np.ndarray, p: Product) -> np.ndarray | None:
    """The constant `c` as a float64 vector over `p`'s output channels, if it broadcasts
    against the output as a scalar or along the channel axis only (never widening it)."""
    if c.ndim > p.rank:
        return None
    shape = (1,) * (p.rank - c.ndim) + c.shape
    if any(d != 1 for i, d in enumerate(shape) if i != p.axis):
        return None
    if shape[p.axis] not in (1, p.channels):
        return None
    return np.broadcast_to(c.astype(np.float64).reshape(-1), (p.channels,))


def _scaled_weight(p: Product, scale: np.ndarray) -> np.ndarray:
    e = p.binding.expr
    w = p.weight.astype(np.float64)
    if e.op == "Conv":
        return w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    if e.op == "ConvTranspose":  # W: [C, M / group, k...], output channel g * M/group + j
        g = int(e.attr_dict["group"])
        grouped = w.reshape((g, w.shape[0] // g) + w.shape[1:])
        s = scale.reshape((g, 1, w.shape[1]) + (1,) * (w.ndim - 2))
        return (grouped * s).reshape(w.shape)
    if e.op == "Gemm" and e.attr_dict["transB"]:
        return w * scale[:, None]
    return w * scale  # MatMul, Gemm: columns


def affine(p: Product, em: Emitter, scale: np.ndarray | None, shift: np.ndarray | None,
           out: Var, origin: str) -> list[Binding] | None:
    """Bindings computing `out = product * scale + shift` (per output channel, float64
    vectors of length `p.channels`) by rewriting the product's constants. A shift after a
    MatMul becomes an Add of a constant vector. None if the result would not type as `out`."""
    e = p.binding.expr
    consts = em.consts
    dt = p.weight.dtype
    args = list(e.args)
    attrs = e.attr_dict
    w_var = args[1]
    if scale is not None:
        args[1] = em.const(_scaled_weight(p, scale).astype(dt), w_var.name, origin)
    if e.op in ("Conv", "ConvTranspose"):
        bias = args[2] if len(args) > 2 else None
        b = consts[bias].astype(np.float64) if bias is not None else np.zeros(p.channels)
        if scale is not None:
            b = b * scale
        if shift is not None:
            b = b + shift
        if bias is not None or shift is not None:
            args[2:] = [em.const(b.astype(dt), bias.name if bias is not None else "B", origin)]
    elif e.op == "Gemm":
        c_var = args[2] if len(args) > 2 and attrs["beta"] != 0 else None
        if c_var is not None or shift is not None:
            c = (np.float64(attrs["beta"]) * consts[c_var].astype(np.float64)
                 if c_var is not None else np.zeros(p.channels))
            if scale is not None:
                c = c * scale
            if shift is not None:
                c = c + shift
            args[2:] = [em.const(c.astype(dt), c_var.name if c_var is not None else "C", origin)]
            attrs["beta"] = 1.0
    elif shift is not None:  # MatMul
        y = em.call("MatMul", args, attrs, origin=origin)[0]
        em.call("Add", [y, em.const(shift.astype(dt), "shift", origin)], origin=origin)
        return finish_as(em, out)
    em.call(e.op, args, attrs, origin=origin)
    return finish_as(em, out)


def finish_as(em: Emitter, out: Var) -> list[Binding] | None:
    """The bindings emitted so far, the last one renamed to define `out` (name and type
    kept), or None (and nothing emitted) if its inferred type does not fit `out`."""
    bindings = em.take()
    last = bindings[-1]
    if len(last.outs) != 1 or not compatible(out.type, last.outs[0].type):
        return None
    return bindings[:-1] + [Binding((out,), last.expr, last.origin)]


# A rule sees a binding, the emitter, the producers and use counts of the values so far; it
# returns (replacement bindings, values it absorbed, values it made dead) or None.
Rule = Callable[[Binding, Emitter, dict[Var, Binding], Counter],
                tuple[list[Binding], list[Var]] | None]


def fold_sweep(fn: Function, rule: Rule) -> Function:
    """One forward sweep of `rule` over `fn`. A rule replaces a binding by bindings that
    define the same outputs and returns the product values it absorbed: those (and the
    constants only they used) are removed. Replacements are visible to later bindings, so
    chains (Conv -> Mul -> Add) fold in one sweep."""
    prods = producers(fn)
    counts = use_counts(fn)
    freed: set[Var] = set()

    def rewrite(b: Binding, em: Emitter) -> list[Binding] | None:
        r = rule(b, em, prods, counts)
        if r is None:
            return None
        new, absorbed = r
        for nb in new:
            for o in nb.outs:
                prods[o] = nb
        for v in absorbed:
            counts[v] -= 1
            freed.add(v)
            freed.update(a for a in prods[v].expr.args if a is not None)
        freed.update(a for a in b.expr.args if a is not None)
        return new

    out = replace_bindings(fn, rewrite)
    if not freed:
        return out
    return remove_unused(out, keep=lambda b: not any(o in freed for o in b.outs))


def _fold_rule(b: Binding, em: Emitter, prods: dict[Var, Binding],
               counts: Counter) -> tuple[list[Binding], list[Var]] | None:
    e = b.expr
    if not isinstance(e, Call) or e.op not in ("Mul", "Add") or len(e.args) != 2:
        return None
    out = b.outs[0]
    for y, c in (e.args, e.args[::-1]):
        if c not in em.consts or counts[y] != 1 or y.type != out.type:
            continue
        p = product(prods.get(y), em.consts)
        if p is None or (e.op == "Add" and p.binding.expr.op not in BIASED):
            continue
        vec = per_channel(em.consts[c], p)
        if vec is None:
            continue
        scale, shift = (vec, None) if e.op == "Mul" else (None, vec)
        new = affine(p, em, scale, shift, out, "fold_scale")
        if new is not None:
            return new, [y]
    return None


@graph_pass("Fold constant per-channel Mul/Add after Conv, MatMul and Gemm into their weights.")
def fold_scale(module: Module) -> Module:
    return map_functions(module, lambda fn: fold_sweep(fn, _fold_rule))
