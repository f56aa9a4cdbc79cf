"""licm: loop-invariant code motion.

Lets at the top of a loop body whose values are invariant move out of the loop, and the
largest subexpressions of a loop body that use no variable bound in the loop (its own
variable, inner loop variables, lets) and load no buffer written or allocated in the loop
are computed once, in a `let` around the loop. Only expressions that cannot be undefined
(`loop_util.may_ub`: provably in-bounds loads of parameters, divisions by nonzero values,
...) are hoisted, because the loop may run zero times or the expression may sit in a branch.
Thread-bound loops are left alone. Inner loops are processed first, so invariants move out
through several levels.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler.loop.ir import (
    Buffer,
    Expr,
    For,
    ForKind,
    Let,
    LetStmt,
    Node,
    PrimFunc,
    Stmt,
    Var,
)
from compiler.loop.traverse import transform
from compiler.passes.arith import Bounds
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import (
    NameSupply,
    allocated,
    bound_vars,
    invariant,
    may_ub,
    stored,
    top_down,
    trivial,
)


def invariants(loop: For, bounds: Bounds, params: list[str]) -> list[Expr]:
    """Maximal hoistable subexpressions of `loop.body`, in first-seen order."""
    varying = bound_vars(loop.body) | {loop.var}
    written = stored(loop.body) | allocated(loop.body)
    found: dict[Expr, None] = {}

    def visit(n: Node, recurse: Callable[[Node], Node]) -> Node | None:
        if isinstance(n, Buffer) or isinstance(n, Var):
            return n
        if isinstance(n, Expr) and not isinstance(n, Let) and not trivial(n) \
                and invariant(n, varying, written) and not may_ub(n, bounds, params):
            found.setdefault(n)
            return n
        return None

    top_down(loop.body, visit)
    return list(found)


def peel_lets(loop: For, bounds: Bounds, params: list[str]) -> tuple[list[LetStmt], Stmt]:
    """The lets at the top of the loop body whose values are invariant and always defined."""
    peeled: list[LetStmt] = []
    body = loop.body
    written = stored(loop.body) | allocated(loop.body)
    while isinstance(body, LetStmt):
        varying = (bound_vars(body) - {body.var}) | {loop.var}
        if not invariant(body.value, varying, written) or may_ub(body.value, bounds, params):
            break
        peeled.append(body)
        body = body.body
    return peeled, body


def hoist(loop: For, bounds: Bounds, params: list[str], names: NameSupply) -> Stmt | None:
    if loop.kind is ForKind.thread_binding:
        return None
    peeled, rest = peel_lets(loop, bounds, params)
    loop = For(loop.var, loop.min, loop.extent, loop.kind, rest, loop.thread)
    exprs = invariants(loop, bounds, params)
    if not exprs and not peeled:
        return None
    mapping = {e: Var(names.fresh("licm"), e.dtype, e.lanes) for e in exprs}
    body = transform(loop.body, lambda n: mapping.get(n) if isinstance(n, Expr) else None)
    out: Stmt = For(loop.var, loop.min, loop.extent, loop.kind, body, loop.thread)
    for e in reversed(exprs):
        out = LetStmt(mapping[e], e, out)
    for let in reversed(peeled):
        out = LetStmt(let.var, let.value, out)
    return out


@loop_pass("Hoist loop-invariant, always-defined subexpressions out of loops into lets.")
def licm(func: PrimFunc) -> PrimFunc:
    bounds = Bounds(func)
    params = [p.name for p in func.params]
    names = NameSupply(func)
    out = transform(func, lambda n: hoist(n, bounds, params, names)
                    if isinstance(n, For) else None)
    assert isinstance(out, PrimFunc)
    return out
