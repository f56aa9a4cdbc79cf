"""cse: common-subexpression elimination within a statement.

Everything in a statement's own expressions is evaluated (a `select` evaluates both arms),
so a subexpression that occurs twice can be computed once in a `let` placed right before
the statement. Repeated subexpressions are named largest first; ones that use a variable
bound by a `let` inside the expression stay where they are. The statement's own expressions
are: a store's value and indices, an `if`'s or `assert`'s condition, an `eval`'s value, a
`let`'s value, and a loop's bounds.
"""

from __future__ import annotations

from collections import Counter

from compiler.loop.ir import (
    Assert,
    BufferStore,
    Evaluate,
    Expr,
    For,
    IfThenElse,
    Let,
    LetStmt,
    PrimFunc,
    Stmt,
    Var,
)
from compiler.loop.traverse import transform, walk
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import NameSupply, size, trivial


def own_exprs(s: Stmt) -> list[Expr]:
    if isinstance(s, BufferStore):
        return [s.value, *s.indices]
    if isinstance(s, (IfThenElse, Assert)):
        return [s.cond]
    if isinstance(s, (Evaluate, LetStmt)):
        return [s.value]
    if isinstance(s, For):
        return [s.min, s.extent]
    return []


def _replace_own(s: Stmt, e: Expr, var: Var) -> Stmt:
    def sub(x: Expr) -> Expr:
        return _sub(x, e, var)

    if isinstance(s, BufferStore):
        return BufferStore(s.buffer, sub(s.value), tuple(sub(i) for i in s.indices))
    if isinstance(s, IfThenElse):
        return IfThenElse(sub(s.cond), s.then, s.else_)
    if isinstance(s, Assert):
        return Assert(sub(s.cond), s.message)
    if isinstance(s, Evaluate):
        return Evaluate(sub(s.value))
    if isinstance(s, LetStmt):
        return LetStmt(s.var, sub(s.value), s.body)
    assert isinstance(s, For)
    return For(s.var, sub(s.min), sub(s.extent), s.kind, s.body, s.thread)


def repeated(exprs: list[Expr], exclude: set[Var]) -> Expr | None:
    """The largest non-trivial subexpression occurring at least twice, free of `exclude`
    and of variables bound by a `let` inside the expressions themselves."""
    counts: Counter[Expr] = Counter()
    local = set(exclude)
    for e in exprs:
        for n in walk(e, binders=False):
            if isinstance(n, Expr):
                counts[n] += 1
        local |= {n.var for n in walk(e) if isinstance(n, Let)}
    best = None
    for n, k in counts.items():
        if k < 2 or trivial(n) or isinstance(n, Let):
            continue
        if any(isinstance(v, Var) and v in local for v in walk(n, binders=False)):
            continue
        if best is None or size(n) > size(best):
            best = n
    return best


def _sub(x: Expr, e: Expr, var: Var) -> Expr:
    out = transform(x, lambda n: var if n == e else None)
    assert isinstance(out, Expr)
    return out


def eliminate(s: Stmt, names: NameSupply) -> Stmt | None:
    """Name repeated subexpressions of `s`'s own expressions, and of the names' values, in
    lets wrapped around `s` (the most recently found outermost: it uses none of the others)."""
    lets: list[tuple[Var, Expr]] = []
    cur = s
    for _ in range(64):
        e = repeated([v for _, v in lets] + own_exprs(cur), {v for v, _ in lets})
        if e is None:
            break
        var = Var(names.fresh("cse"), e.dtype, e.lanes)
        lets = [(var, e)] + [(v, _sub(x, e, var)) for v, x in lets]
        cur = _replace_own(cur, e, var)
    if not lets:
        return None
    out: Stmt = cur
    for var, e in reversed(lets):
        out = LetStmt(var, e, out)
    return out


@loop_pass("Name subexpressions repeated within a statement once, in a let before it.")
def cse(func: PrimFunc) -> PrimFunc:
    names = NameSupply(func)
    out = transform(func, lambda n: eliminate(n, names) if isinstance(n, Stmt) else None)
    assert isinstance(out, PrimFunc)
    return out
