"""dce: dead-code elimination on graph IR.

Bindings whose values nothing uses (no argument, result or subgraph capture) are removed, in
`main` and in every subgraph, innermost first, so that a subgraph that stops capturing a value
frees it in the enclosing function. Calls of nondeterministic ops go too: they have no side
effects, so an unused random value is unobservable. Parameters and results always stay.
"""

from __future__ import annotations

from compiler.graph.ir import Module
from compiler.passes.base import graph_pass
from compiler.passes.graph_util import map_functions, remove_unused


@graph_pass("Remove bindings whose values are unused, in main and every subgraph.")
def dce(module: Module) -> Module:
    return map_functions(module, remove_unused)
