"""simplify: the rewrite simplifier, to a fixpoint.

Integer expressions get a canonical linear form (exact modulo 2**bits), constant folding by
the interpreter's own semantics, division/modulo/min/max/comparison rules decided by interval
analysis over loop ranges and let values, bit-exact float identities, and statement cleanup
(constant branches, empty and single-iteration loops, trivial lets). See `simplifier.py`.
"""

from __future__ import annotations

from compiler.loop.ir import PrimFunc
from compiler.passes.arith import Bounds
from compiler.passes.base import loop_pass
from compiler.passes.simplifier import simplify_node


@loop_pass("Rewrite-rule simplifier with constant folding and interval analysis, to a fixpoint.")
def simplify(func: PrimFunc) -> PrimFunc:
    out = simplify_node(func, Bounds(func))
    assert isinstance(out, PrimFunc)
    return out
