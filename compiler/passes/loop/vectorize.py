"""vectorize: turn loops into Ramp/Broadcast vector code where that is legal.

Loops marked `vectorized`, and (with `innermost=true`) serial loops without inner loops, of
constant extent, are vectorized with `lanes` = the largest divisor of the extent that is at
most `width`, at least `min_lanes`, and a power of two unless `pow2=false` (an outer serial
loop covers the rest). The loop variable becomes
`ramp(min, 1, lanes)` and scalar operands are broadcast.

Legal only when the body is a sequence of stores and evals on scalars, without lets that
depend on the loop variable, where every buffer a statement writes is touched by no other
statement and is only loaded at exactly the stored index, which moves with the loop
variable (so no lane reads what another lane writes). Otherwise the loop stays as it is.
"""

from __future__ import annotations

from compiler.loop.ir import (
    BinKind,
    BinOp,
    BufferLoad,
    BufferStore,
    Call,
    CmpOp,
    Evaluate,
    Expr,
    For,
    ForKind,
    IntImm,
    Let,
    Node,
    PrimFunc,
    Ramp,
    Select,
    SeqStmt,
    Stmt,
    Var,
)
from compiler.loop.traverse import substitute, transform, walk
from compiler.passes.arith import const_value
from compiler.passes.base import Arg, loop_pass
from compiler.passes.loop_util import (
    NameSupply,
    broadcast,
    loaded,
    loops_of,
    stored,
    unit_component,
    uses_var,
)


def _statements(body: Stmt) -> list[Stmt] | None:
    stmts = list(body.stmts) if isinstance(body, SeqStmt) else [body]
    if all(isinstance(s, (BufferStore, Evaluate)) for s in stmts) and stmts:
        return stmts
    return None


def legal(body: Stmt, var: Var) -> bool:
    stmts = _statements(body)
    if stmts is None:
        return False
    for n in walk(body):
        if isinstance(n, Expr) and n.lanes != 1:
            return False
        if isinstance(n, Let) and uses_var(n.value, var):
            return False
    for k, s in enumerate(stmts):
        others = [x for j, x in enumerate(stmts) if j != k]
        for name in stored(s):
            if any(name in loaded(o) or name in stored(o) for o in others):
                return False
        if not isinstance(s, BufferStore):
            continue
        if not s.indices and uses_var(s, var):
            return False  # a scalar buffer has no index to vectorize
        loads = [n for n in walk(s) if isinstance(n, BufferLoad) and n.buffer.name == s.buffer.name]
        if loads:
            if any(ld.indices != s.indices for ld in loads):
                return False
            if not any(unit_component(i, var, {var}) for i in s.indices):
                return False
    return True


def _fix_lanes(n: Node) -> Node | None:
    """Broadcast scalar operands next to vector ones."""
    if isinstance(n, (BinOp, CmpOp)) and n.a.lanes != n.b.lanes:
        lanes = max(n.a.lanes, n.b.lanes)
        return type(n)(n.op, broadcast(n.a, lanes), broadcast(n.b, lanes))
    if isinstance(n, Select):
        lanes = max(n.cond.lanes, n.t.lanes, n.f.lanes)
        if n.t.lanes != lanes or n.f.lanes != lanes:
            return Select(n.cond, broadcast(n.t, lanes), broadcast(n.f, lanes))
    if isinstance(n, Call) and len({a.lanes for a in n.args}) > 1:
        lanes = max(a.lanes for a in n.args)
        return Call(n.op, tuple(broadcast(a, lanes) for a in n.args), n.dtype)
    return None


def widen(body: Stmt, var: Var, ramp: Ramp) -> Stmt:
    lanes = ramp.lanes
    out = transform(substitute(body, {var: ramp}), _fix_lanes)

    def store(n: Node) -> Node | None:
        if not isinstance(n, BufferStore):
            return None
        idx = n.indices
        if all(i.lanes == 1 for i in idx):
            idx = (broadcast(idx[0], lanes), *idx[1:]) if idx else idx
        if not idx:
            return None
        return BufferStore(n.buffer, broadcast(n.value, lanes), idx)

    result = transform(out, store)
    assert isinstance(result, Stmt)
    return result


def _lanes(ext: int, width: int, pow2: bool, min_lanes: int) -> int | None:
    return next((d for d in range(min(width, ext), max(min_lanes, 2) - 1, -1)
                 if ext % d == 0 and (not pow2 or d & (d - 1) == 0)), None)


def _target(n: For, innermost: bool) -> bool:
    if n.kind is ForKind.vectorized:
        return True
    return innermost and n.kind is ForKind.serial and not any(True for _ in loops_of(n.body))


def _applies(func: PrimFunc, width: int, innermost: bool, pow2: bool, min_lanes: int) -> bool:
    for lp in loops_of(func):
        ext = const_value(lp.extent)
        if _target(lp, innermost) and isinstance(ext, int) and _lanes(ext, width, pow2, min_lanes) \
                and legal(lp.body, lp.var):
            return True
    return False


@loop_pass("Turn vectorized (and innermost serial) loops into ramp/broadcast vector code.",
           Arg("width", int, 8, "most lanes per vector", low=2),
           Arg("innermost", bool, True, "also vectorize innermost serial loops"),
           Arg("pow2", bool, True, "only power-of-two lane counts (what vector units have)"),
           Arg("min_lanes", int, 2, "fewest lanes worth a vector (else the loop stays scalar "
               "for the backend's own vectoriser)", low=2),
           applies=_applies)
def vectorize(func: PrimFunc, width: int, innermost: bool, pow2: bool,
              min_lanes: int) -> PrimFunc:
    names = NameSupply(func)

    def visit(n: Node) -> Node | None:
        if not isinstance(n, For) or not _target(n, innermost):
            return None
        ext = const_value(n.extent)
        lanes = _lanes(ext, width, pow2, min_lanes) if isinstance(ext, int) else None
        if lanes is None or not legal(n.body, n.var):
            return None
        dt = n.var.dtype
        if lanes == ext:
            return widen(n.body, n.var, Ramp(n.min, IntImm(1, dt), lanes))
        outer = Var(names.fresh(f"{n.var.name}_outer"), dt)
        base = BinOp(BinKind.add, n.min, BinOp(BinKind.mul, outer, IntImm(lanes, dt)))
        if n.min == IntImm(0, dt):
            base = BinOp(BinKind.mul, outer, IntImm(lanes, dt))
        body = widen(n.body, n.var, Ramp(base, IntImm(1, dt), lanes))
        return For(outer, IntImm(0, dt), IntImm(ext // lanes, dt), ForKind.serial, body)

    out = transform(func, visit)
    assert isinstance(out, PrimFunc)
    return out
