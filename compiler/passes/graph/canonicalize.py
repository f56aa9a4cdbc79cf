"""canonicalize: rewrite composite ops into core ops, so later passes see fewer kinds.

- `Gemm(A, B, C)` -> `MatMul(A', B')` (a transposed operand through `Transpose`, or a
  transposed constant), then `* alpha` if alpha != 1, then `+ beta * C` if C is present
  and beta != 0 (a constant C is pre-scaled; otherwise `Mul(C, beta)` if beta != 1);
- `Sum` / `Mean` / `Max` / `Min` of n inputs -> a chain of binary `Add` / `Max` / `Min`
  (`Mean`: then `Div` by n); one input is the input itself;
- `Flatten` of a statically shaped input -> `Reshape` to a constant shape.

Every rewrite computes what the reference computes, rounding included. Where the reference
works in float32 for a 16-bit float type and rounds once (Gemm with alpha or C, Sum of three
or more inputs, Mean), the chain runs in float32 between two `Cast`s. Integer Gemm is
rewritten only with alpha = beta = 1 (otherwise the reference works in float64).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import Binding, Call, Function, Module, Var
from compiler.passes.base import graph_pass
from compiler.passes.graph.fold_scale import finish_as
from compiler.passes.graph_util import Emitter, map_functions, remove_unused, replace_bindings

ORIGIN = "canonicalize"
NARROW = (DType.float16, DType.bfloat16)
BINARY = {"Sum": "Add", "Mean": "Add", "Max": "Max", "Min": "Min"}


def _cast(em: Emitter, v: Var, to: DType) -> Var:
    if v in em.consts:
        return em.const(em.consts[v].astype(to.np, copy=False), v.name, ORIGIN)
    return em.call("Cast", [v], {"to": to.onnx}, origin=ORIGIN)[0]


def _gemm(b: Binding, em: Emitter) -> list[Binding] | None:
    e = b.expr
    attrs = e.attr_dict
    alpha, beta = float(attrs["alpha"]), float(attrs["beta"])
    a, bm = e.args[0], e.args[1]
    c = e.args[2] if len(e.args) > 2 and beta != 0 else None
    dt = b.outs[0].type.dtype
    if not dt.is_float and (alpha != 1 or beta != 1):
        return None
    narrow = dt in NARROW and (alpha != 1 or c is not None)
    wt = DType.float32 if narrow else dt

    def operand(v: Var, trans: int) -> Var:
        if v in em.consts and trans:
            return em.const(np.ascontiguousarray(em.consts[v].T, dtype=wt.np), v.name, ORIGIN)
        if narrow:
            v = _cast(em, v, wt)
        if trans:
            v = em.call("Transpose", [v], {"perm": (1, 0)}, origin=ORIGIN)[0]
        return v

    y = em.call("MatMul", [operand(a, attrs["transA"]), operand(bm, attrs["transB"])],
                origin=ORIGIN)[0]
    if alpha != 1:
        y = em.call("Mul", [y, em.const(wt.np.type(alpha), "alpha", ORIGIN)], origin=ORIGIN)[0]
    if c is not None:
        if c in em.consts and (beta != 1 or narrow):
            cw = em.consts[c].astype(wt.np)
            c = em.const(cw * wt.np.type(beta) if beta != 1 else cw, c.name, ORIGIN)
        else:
            if narrow:
                c = _cast(em, c, wt)
            if beta != 1:
                c = em.call("Mul", [c, em.const(wt.np.type(beta), "beta", ORIGIN)],
                            origin=ORIGIN)[0]
        y = em.call("Add", [y, c], origin=ORIGIN)[0]
    if narrow:
        _cast(em, y, dt)
    return finish_as(em, b.outs[0])


def _variadic(b: Binding, em: Emitter) -> list[Binding] | Mapping[Var, Var] | None:
    e = b.expr
    xs = list(e.args)
    out = b.outs[0]
    if len(xs) == 1:
        return {out: xs[0]} if out.type == xs[0].type else None
    if len(xs) == 2 and e.op in ("Max", "Min"):
        return None
    dt = out.type.dtype
    narrow = dt in NARROW and (e.op == "Mean" or e.op == "Sum" and len(xs) > 2)
    wt = DType.float32 if narrow else dt
    if narrow:
        cast: dict[Var, Var] = {}
        xs = [cast[x] if x in cast else cast.setdefault(x, _cast(em, x, wt)) for x in xs]
    acc = xs[0]
    for x in xs[1:]:
        acc = em.call(BINARY[e.op], [acc, x], origin=ORIGIN)[0]
    if e.op == "Mean":
        n = em.const(wt.np.type(len(xs)), "n", ORIGIN)
        acc = em.call("Div", [acc, n], origin=ORIGIN)[0]
    if narrow:
        _cast(em, acc, dt)
    return finish_as(em, out)


def _flatten(b: Binding, em: Emitter) -> list[Binding] | None:
    x = b.expr.args[0]
    if not x.type.is_static or not x.type.shape:
        return None
    shape = x.type.shape
    axis = int(b.expr.attr_dict["axis"])
    axis = axis + len(shape) if axis < 0 else axis
    dims = np.array([np.prod(shape[:axis], dtype=np.int64),
                     np.prod(shape[axis:], dtype=np.int64)], dtype=np.int64)
    target = em.const(dims, "shape", ORIGIN)
    em.call("Reshape", [x, target], {"allowzero": int(0 in dims)}, origin=ORIGIN)
    return finish_as(em, b.outs[0])


RULES = {"Gemm": _gemm, "Sum": _variadic, "Mean": _variadic, "Max": _variadic,
         "Min": _variadic, "Flatten": _flatten}


def _canonicalize_function(fn: Function) -> Function:
    freed: set[Var] = set()

    def rewrite(b: Binding, em: Emitter) -> list[Binding] | Mapping[Var, Var] | None:
        e = b.expr
        if not isinstance(e, Call) or e.op not in RULES or len(b.outs) != 1:
            return None
        r = RULES[e.op](b, em)
        if r is not None:
            freed.update(a for a in e.args if a is not None)
        return r

    out = replace_bindings(fn, rewrite)
    if not freed:
        return out
    return remove_unused(out, keep=lambda b: not any(o in freed for o in b.outs))


@graph_pass("Rewrite Gemm, Sum/Mean/Max/Min and static Flatten into MatMul, binary ops, Reshape.")
def canonicalize(module: Module) -> Module:
    return map_functions(module, _canonicalize_function)
