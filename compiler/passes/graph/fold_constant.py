"""fold_constant: evaluate calls whose inputs are all known at compile time.

- A call of a deterministic op without subgraphs whose inputs are all constants (or absent
  optional inputs) runs its numpy reference, exactly as the interpreter runs it, and becomes
  one `Const` binding per output, under the same names.
- Shape queries (`Shape`, `Size`) fold when their value follows from the input's static type,
  whatever the input's data.
- An output larger than `max_bytes` keeps the call. A reference that rejects its inputs (an
  `AnvilError`, such as an index out of range) keeps the call too: the error belongs to run
  time, and the call may sit in a branch that never runs.
- After each sweep the function is re-typed (a `Reshape` whose shape became constant gets a
  static type, which may make more shape queries static) and the pure bindings left unused
  are dropped; this repeats until nothing changes. Subgraphs fold with the constants of the
  enclosing functions visible.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from compiler.errors import AnvilError
from compiler.graph.interp import Interpreter
from compiler.graph.ir import Binding, Call, Const, Function, Module, Tensor, TensorType, Var
from compiler.ops.base import numel
from compiler.passes.base import Arg, graph_pass
from compiler.passes.graph_util import (
    Emitter,
    const_values,
    is_pure,
    remove_unused,
    replace_bindings,
    retype,
)

# Ops whose value depends only on their first input's type, never on its data.
SHAPE_QUERIES = ("Shape", "Size")


def _too_big(t: TensorType, max_bytes: int) -> bool:
    n = numel(t.shape)
    return n is not None and n * max(t.dtype.bits // 8, 1) > max_bytes


def _evaluate(b: Binding, known: Mapping[Var, np.ndarray]) -> list[np.ndarray] | None:
    """The binding's output values by the interpreter's own evaluation, or None if the
    reference rejects its inputs."""
    assert isinstance(b.expr, Call)
    try:
        return Interpreter().eval_call(b.expr, b.outs, known, f"fold_constant ({b.expr.op})")
    except AnvilError:
        return None


def _shape_query(b: Binding) -> list[np.ndarray] | None:
    """A `Shape`/`Size` value when the input's static dims alone decide it: evaluated on
    two stand-in inputs that differ in every non-static dim, it must come out the same."""
    e = b.expr
    assert isinstance(e, Call)
    t = e.args[0].type if e.args and e.args[0] is not None else None
    if t is None or t.shape is None:
        return None
    results = []
    for fill in (0, 1):
        dims = tuple(d if isinstance(d, int) else fill for d in t.shape)
        stand_in = np.broadcast_to(np.zeros((), t.dtype.np), dims)
        vals = _evaluate(b, {e.args[0]: stand_in})
        if vals is None:
            return None
        results.append(vals)
    same = all(np.array_equal(x, y) for x, y in zip(*results, strict=True))
    return results[0] if same else None


def _has_subgraph(call: Call) -> bool:
    return any(isinstance(v, Function) for _, v in call.attrs)


def _fold_values(b: Binding, known: Mapping[Var, np.ndarray],
                 max_bytes: int) -> list[np.ndarray] | None:
    e = b.expr
    if not isinstance(e, Call) or _has_subgraph(e) or not is_pure(e):
        return None
    if any(_too_big(o.type, max_bytes) for o in b.outs):
        return None
    if all(a is None or a in known for a in e.args):
        vals = _evaluate(b, known)
    elif e.op in SHAPE_QUERIES:
        vals = _shape_query(b)
    else:
        return None
    if vals is None or any(np.asarray(v).nbytes > max_bytes for v in vals):
        return None
    return vals


def _sweep(fn: Function, outer: Mapping[Var, np.ndarray], max_bytes: int) -> Function:
    """One forward sweep folding every foldable call (subgraphs first, with the constants
    known where they are used)."""
    known: dict[Var, np.ndarray] = {**outer, **const_values(fn)}

    def rewrite(b: Binding, em: Emitter) -> Mapping[Var, Var] | list[Binding] | None:
        e = b.expr
        if not isinstance(e, Call):
            return None
        if _has_subgraph(e):
            attrs = tuple((k, _fold_function(v, known, max_bytes) if isinstance(v, Function)
                           else v) for k, v in e.attrs)
            if attrs == e.attrs:
                return None
            return [Binding(b.outs, Call(e.op, e.args, attrs), b.origin)]
        vals = _fold_values(b, known, max_bytes)
        if vals is None:
            return None
        mapping: dict[Var, Var] = {}
        for o, v in zip(b.outs, vals, strict=False):
            t = Tensor(np.asarray(v))
            new = Var(o.name, t.type)
            em.bindings.append(Binding((new,), Const(t), b.origin))
            known[new] = t.array
            mapping[o] = new
        return mapping

    return replace_bindings(fn, rewrite)


def _fold_function(fn: Function, outer: Mapping[Var, np.ndarray], max_bytes: int) -> Function:
    while True:
        new = _sweep(fn, outer, max_bytes)
        new = retype(new, consts=outer)
        new = remove_unused(new, keep=lambda b: isinstance(b.expr, Call)
                            and not is_pure(b.expr))
        if new == fn:
            return fn
        fn = new


@graph_pass("Evaluate calls whose inputs are constants, and static shape queries.",
            Arg("max_bytes", int, 1 << 20, "largest folded output, in bytes", low=0))
def fold_constant(module: Module, max_bytes: int) -> Module:
    return Module(tuple(_fold_function(f, {}, max_bytes) for f in module.functions),
                  module.opset)
