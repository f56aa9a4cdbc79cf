"""const_fold: evaluate operations whose operands are all immediates.

The value is computed by the loop interpreter itself, so folding agrees with the IR's
semantics bit for bit (wrapping integers, float rounding per dtype, IEEE min/max). Undefined
operations (`1 // 0`) and NaNs other than the canonical one are left alone. Lets bound to
immediates are propagated so that their uses fold too.
"""

from __future__ import annotations

from compiler.loop.ir import FloatImm, IntImm, Let, LetStmt, Node, PrimFunc
from compiler.loop.traverse import rewrite, substitute
from compiler.passes.base import loop_pass
from compiler.passes.simplifier import fold_constant


def propagate_const_let(node: Node) -> Node | None:
    if isinstance(node, (Let, LetStmt)) and isinstance(node.value, (IntImm, FloatImm)):
        return substitute(node.body, {node.var: node.value})
    return None


@loop_pass("Fold operations on immediates (evaluated by the interpreter) and constant lets.")
def const_fold(func: PrimFunc) -> PrimFunc:
    out = rewrite(func, [fold_constant, propagate_const_let])
    assert isinstance(out, PrimFunc)
    return out
