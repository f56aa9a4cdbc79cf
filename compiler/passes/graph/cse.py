"""cse: common-subexpression elimination on graph IR.

Within each function (`main` and every subgraph, separately), a later binding that repeats an
earlier one is replaced by it:

- constants holding the same tensor (dtype, shape and bytes);
- calls of the same deterministic op with the same arguments, the same attributes and the
  same number of outputs. A call carrying subgraphs merges only when the subgraphs are equal
  and every call inside them is deterministic.

Nondeterministic calls (`RandomNormal`, ...) never merge: each draws its own values.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from compiler.graph.ir import Binding, Call, Const, Function, Module, Var, subfunctions
from compiler.passes.base import graph_pass
from compiler.passes.graph_util import Emitter, is_pure, map_functions, replace_bindings


def deterministic(call: Call) -> bool:
    """`call` and every call nested in its subgraphs are deterministic."""
    return is_pure(call) and all(
        deterministic(b.expr)
        for sub in subfunctions(call) for b in sub.body if isinstance(b.expr, Call))


def _key(b: Binding) -> Hashable | None:
    e = b.expr
    if isinstance(e, Const):
        return e
    if isinstance(e, Call) and deterministic(e):
        return (e, len(b.outs))
    return None


def _cse_function(fn: Function) -> Function:
    seen: dict[Hashable, tuple[Var, ...]] = {}

    def rewrite(b: Binding, em: Emitter) -> Mapping[Var, Var] | None:
        key = _key(b)
        if key is None:
            return None
        first = seen.setdefault(key, b.outs)
        if first is b.outs:
            return None
        return dict(zip(b.outs, first, strict=True))

    return replace_bindings(fn, rewrite)


@graph_pass("Compute identical constants and deterministic calls once per function.")
def cse(module: Module) -> Module:
    return map_functions(module, _cse_function)
