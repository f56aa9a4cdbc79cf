"""inline_let: substitute let-bound values into their uses.

A `let` (statement or expression) is inlined when its value is trivial (a variable, an
immediate, or a broadcast/ramp of those), or when it is used exactly once, outside any loop
nested in its body, and its value loads no buffer the body writes (so the value cannot change
between the binding and the use). With `all=true`, every let whose value loads nothing the
body writes is inlined, whatever the number of uses. Moving an evaluation later or dropping
it can only remove undefined behaviour.
"""

from __future__ import annotations

from compiler.loop.ir import For, Let, LetStmt, Node, PrimFunc, Var
from compiler.loop.traverse import rewrite, substitute, walk
from compiler.passes.base import Arg, loop_pass
from compiler.passes.loop_util import loaded, stored, trivial


def _uses(body: Node, var: Var) -> tuple[int, bool]:
    """(number of uses of `var`, whether one sits inside a loop within `body`)."""
    count = sum(1 for n in walk(body, binders=False) if n == var)
    in_loop = any(isinstance(lp, For) and any(n == var for n in walk(lp, binders=False))
                  for lp in walk(body) if isinstance(lp, For))
    return count, in_loop


def inlinable(n: Node, everything: bool) -> bool:
    if not isinstance(n, (Let, LetStmt)):
        return False
    if trivial(n.value):
        return True
    if loaded(n.value) & stored(n.body):
        return False
    if everything:
        return True
    count, in_loop = _uses(n.body, n.var)
    return count <= 1 and not in_loop


@loop_pass("Inline lets with trivial values, or used once outside loops.",
           Arg("all", bool, False, "inline every let whose value the body cannot change"))
def inline_let(func: PrimFunc, **args: bool) -> PrimFunc:
    everything = args["all"]

    def rule(n: Node) -> Node | None:
        if inlinable(n, everything):
            assert isinstance(n, (Let, LetStmt))
            return substitute(n.body, {n.var: n.value})
        return None

    out = rewrite(func, [rule])
    assert isinstance(out, PrimFunc)
    return out
