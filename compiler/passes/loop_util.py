"""Small analyses and builders shared by the loop passes (not a pass).

Everything here is built on `walk`/`transform`/`substitute` from `compiler.loop.traverse`.

- names: `names_in`, `NameSupply` (fresh names that clash with nothing in a function);
- uses: `free_vars`, `uses_var`, `loaded`, `stored`, `allocated`, `accesses`;
- safety: `may_ub(e, bounds)` (could evaluating `e` be undefined?), `float_to_int`,
  `invariant`;
- dependences: `independent(body, vars)` (iterations over `vars` touch disjoint elements of
  every buffer they write, so they may run in any order);
- builders: `empty`, `is_empty`, `seq_of`, `broadcast`, `binop` (scalar operands broadcast
  against vector ones), `loops_of`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from compiler.dtypes import DType
from compiler.loop.ir import (
    Allocate,
    BinKind,
    BinOp,
    Broadcast,
    Buffer,
    BufferLoad,
    BufferStore,
    Cast,
    CmpKind,
    CmpOp,
    Expr,
    FloatImm,
    For,
    IntImm,
    Let,
    LetStmt,
    Node,
    PrimFunc,
    Ramp,
    SeqStmt,
    Stmt,
    Var,
    int_range,
    is_float,
    is_int,
    is_minifloat,
    is_narrow_int,
    is_void_call,
)
from compiler.loop.traverse import children, map_children, rewrite, transform, walk
from compiler.names import fresh
from compiler.passes.arith import Bounds

# ----------------------------------------------------------------------------- names


def names_in(node: Node) -> set[str]:
    """Every variable and buffer name in `node`."""
    out: set[str] = set()
    for n in walk(node):
        if isinstance(n, Var):
            out.add(n.name)
        elif isinstance(n, (BufferLoad, BufferStore)):
            out.add(n.buffer.name)
        elif isinstance(n, Allocate):
            out.add(n.buffer.name)
    if isinstance(node, PrimFunc):
        out.update(p.name for p in node.params)
    return out


class NameSupply:
    """Fresh names: `fresh("i_outer")` returns it, or `i_outer_1`, ..., never one in use."""

    def __init__(self, node: Node) -> None:
        self.used = names_in(node)

    def fresh(self, base: str) -> str:
        return fresh(self.used, base)


# ----------------------------------------------------------------------------- uses


def bound_vars(node: Node) -> set[Var]:
    return {n.var for n in walk(node) if isinstance(n, (For, LetStmt, Let))}


def free_vars(node: Node) -> set[Var]:
    """Variables used in `node` but bound outside it."""
    used = {n for n in walk(node, binders=False) if isinstance(n, Var)}
    return used - bound_vars(node)


def uses_var(node: Node, var: Var) -> bool:
    return any(n == var for n in walk(node, binders=False) if isinstance(n, Var))


def loaded(node: Node) -> set[str]:
    return {n.buffer.name for n in walk(node) if isinstance(n, BufferLoad)}


def stored(node: Node) -> set[str]:
    return {n.buffer.name for n in walk(node) if isinstance(n, BufferStore)}


def allocated(node: Node) -> set[str]:
    return {n.buffer.name for n in walk(node) if isinstance(n, Allocate)}


def has_loads(node: Node) -> bool:
    return any(isinstance(n, BufferLoad) for n in walk(node))


@dataclass(frozen=True)
class Access:
    buffer: str
    indices: tuple[Expr, ...]
    store: bool


def accesses(node: Node) -> list[Access]:
    return [Access(n.buffer.name, n.indices, isinstance(n, BufferStore))
            for n in walk(node) if isinstance(n, (BufferLoad, BufferStore))]


def invariant(e: Node, varying: set[Var], written: set[str]) -> bool:
    """`e` uses none of `varying`, loads none of the buffers in `written`, and is no effect
    (`barrier()`), so it may be computed once outside a loop."""
    for n in walk(e, binders=False):
        if (isinstance(n, Var) and n in varying) or is_void_call(n):
            return False
        if isinstance(n, BufferLoad) and n.buffer.name in written:
            return False
    return True


# ----------------------------------------------------------------------------- safety


def may_ub(e: Expr, bounds: Bounds, params: Iterable[str] = ()) -> bool:
    """Whether evaluating `e` could be undefined: a load not provably in bounds (or from a
    buffer that is not a parameter, so possibly uninitialised), a division by a possible
    zero (or MIN / -1), a shift by a possible out-of-range amount, or a float->int cast
    (`float_to_int`)."""
    param_names = set(params)
    for n in walk(e, binders=False):
        if isinstance(n, BufferLoad):
            if n.buffer.name not in param_names or not in_bounds(n.buffer.shape, n.indices,
                                                                  bounds):
                return True
        elif isinstance(n, BinOp) and n.op in (BinKind.floordiv, BinKind.floormod,
                                               BinKind.truncdiv, BinKind.truncmod):
            d = bounds.of(n.b)
            if d is None or 0 in d:
                return True
            if n.dtype.is_signed and -1 in d:
                a = bounds.of(n.a)
                if a is None or int_range(n.dtype)[0] in a:
                    return True
        elif isinstance(n, BinOp) and n.op in (BinKind.shl, BinKind.shr):
            amount = bounds.of(n.b)
            if amount is None or not amount.within(0, n.dtype.bits - 1):
                return True
        elif isinstance(n, Cast) and float_to_int(n):
            return True
    return False


def float_to_int(cast: Cast) -> bool:
    """A cast from a float (minifloats included) to an integer (narrow ones included): it is
    undefined for NaN, infinities and values out of the target's range."""
    src, dst = cast.value.dtype, cast.dtype
    return (is_float(src) or is_minifloat(src)) and (is_int(dst) or is_narrow_int(dst))


def in_bounds(shape: tuple[Expr, ...], indices: tuple[Expr, ...], bounds: Bounds) -> bool:
    """Whether every index is provably inside its (constant) dimension."""
    for dim, idx in zip(shape, indices, strict=True):
        rng = bounds.of(idx)
        if not isinstance(dim, IntImm) or rng is None or not rng.within(0, dim.value - 1):
            return False
    return True


# ----------------------------------------------------------------------------- dependences


def unit_component(idx: Expr, var: Var, frozen: set[Var]) -> bool:
    """`idx` is `var`, `var + e`, `e + var` or `var - e` with `e` free of `frozen` vars."""
    if idx == var:
        return True
    if isinstance(idx, BinOp) and idx.op in (BinKind.add, BinKind.sub):
        if idx.a == var and not (free_vars(idx.b) & frozen):
            return True
        if idx.op is BinKind.add and idx.b == var and not (free_vars(idx.a) & frozen):
            return True
    return False


def independent(body: Stmt, loop_vars: list[Var]) -> bool:
    """Whether the iterations of loops over `loop_vars` (whose body is `body`) may run in any
    order: every buffer written in `body` (and not allocated inside it) is accessed at one
    single index tuple, free of loads of written buffers, that maps each loop variable
    injectively (some component is `var + e`, `e` independent of the loops and of
    everything bound inside `body`)."""
    local = allocated(body)
    written = stored(body) - local
    inner = bound_vars(body) | set(loop_vars)
    acc = [a for a in accesses(body) if a.buffer in written]
    for name in written:
        tuples = {a.indices for a in acc if a.buffer == name}
        if len(tuples) != 1:
            return False
        (idx,) = tuples
        if any(loaded(i) & written for i in idx):
            return False
        if any(i.lanes != 1 for i in idx):
            return False
        for v in loop_vars:
            if not any(unit_component(i, v, inner) for i in idx):
                return False
    return True


# ----------------------------------------------------------------------------- builders


def empty() -> Stmt:
    return SeqStmt(())


def is_empty(s: Stmt | None) -> bool:
    return s is None or (isinstance(s, SeqStmt) and all(is_empty(x) for x in s.stmts))


def seq_of(stmts: Iterable[Stmt]) -> Stmt:
    """A flat statement sequence without empty parts (a single statement stays itself)."""
    flat: list[Stmt] = []
    for s in stmts:
        if isinstance(s, SeqStmt):
            flat.extend(x for x in s.stmts if not is_empty(x))
        elif not is_empty(s):
            flat.append(s)
    return flat[0] if len(flat) == 1 else SeqStmt(tuple(flat))


def broadcast(e: Expr, lanes: int) -> Expr:
    return e if e.lanes == lanes or lanes == 1 else Broadcast(e, lanes)


def binop(kind: BinKind, a: Expr, b: Expr) -> Expr:
    lanes = max(a.lanes, b.lanes)
    return BinOp(kind, broadcast(a, lanes), broadcast(b, lanes))


def cmp(kind: CmpKind, a: Expr, b: Expr) -> Expr:
    lanes = max(a.lanes, b.lanes)
    return CmpOp(kind, broadcast(a, lanes), broadcast(b, lanes))


def true() -> Expr:
    return IntImm(1, DType.bool)


def false() -> Expr:
    return IntImm(0, DType.bool)


def flatten_seq(s: Node) -> Node | None:
    """Rewrite rule: flatten nested sequences and drop empty statements."""
    if isinstance(s, SeqStmt):
        out = seq_of(s.stmts)
        return out if out != s else None
    return None


def flatten_seqs(func: PrimFunc) -> PrimFunc:
    """`func` with nested sequences flattened (for passes that splice statement lists)."""
    out = rewrite(func, [flatten_seq])
    assert isinstance(out, PrimFunc)
    return out


def top_down(node: Node, fn: Callable[[Node, Callable[[Node], Node]], Node | None]) -> Node:
    """Pre-order rebuild on `map_children`: `fn(n, recurse)` returns a replacement (and may
    call `recurse` on parts of `n` to continue below), or None to descend into `n`."""

    def go(n: Node) -> Node:
        out = fn(n, go)
        return map_children(n, go) if out is None else out

    return go(node)


def fold(node: Node, fn: Callable[[Node, list[Any]], Any]) -> Any:
    """Bottom-up analysis on `walk`/`children`: `fn(n, results of n's children)` (binder
    positions skipped), computed once per node."""
    memo: dict[int, Any] = {}
    for n in reversed(list(walk(node, binders=False))):
        if id(n) not in memo:
            memo[id(n)] = fn(n, [memo[id(c)] for c in children(n, binders=False)])
    return memo[id(node)]


def perfect_nest(loop: For) -> list[For]:
    """`loop` and the loops directly nested in it (each body exactly the next loop)."""
    chain = [loop]
    while isinstance(chain[-1].body, For):
        chain.append(chain[-1].body)
    return chain


def loops_of(node: Node) -> Iterator[For]:
    return (n for n in walk(node) if isinstance(n, For))


def const_int(e: Expr) -> int | None:
    return e.value if isinstance(e, IntImm) else None


# ----------------------------------------------------------------------------- splitting


def split_extent(extent: Expr, factor: int, bounds: Bounds) -> tuple[Expr, bool] | None:
    """(outer extent, needs a guard) for splitting a loop of `extent` by `factor`, or None
    when `extent + factor - 1` might overflow its dtype."""
    dt = extent.dtype
    if isinstance(extent, IntImm):
        outer = -(-extent.value // factor) if extent.value > 0 else 0
        return IntImm(outer, dt), extent.value % factor != 0
    rng = bounds.of(extent)
    if rng is None or rng.hi + factor - 1 > int_range(dt)[1]:
        return None
    if rng.hi <= factor:
        return IntImm(1 if rng.hi > 0 else 0, dt), True
    bumped = BinOp(BinKind.add, extent, IntImm(factor - 1, dt))
    return BinOp(BinKind.floordiv, bumped, IntImm(factor, dt)), True


def scaled(outer: Var, factor: int, inner: Var) -> Expr:
    """`outer * factor + inner`."""
    dt = outer.dtype
    return BinOp(BinKind.add, BinOp(BinKind.mul, outer, IntImm(factor, dt)), inner)


def offset(base: Expr, e: Expr) -> Expr:
    """`base + e`, or `e` when `base` is 0."""
    return e if base == IntImm(0, base.dtype) else BinOp(BinKind.add, base, e)


def trivial(e: Expr) -> bool:
    """Not worth a name: a variable, an immediate, or a broadcast/ramp of those."""
    if isinstance(e, Broadcast):
        return trivial(e.value)
    if isinstance(e, Ramp):
        return trivial(e.base) and trivial(e.stride)
    return isinstance(e, (Var, IntImm, FloatImm))


def size(e: Node) -> int:
    return sum(1 for _ in walk(e, binders=False))


def retarget(node: Node, old: str, new: Buffer) -> Node:
    """Point every load/store of the buffer named `old` at `new`."""

    def fn(n: Node) -> Node | None:
        if isinstance(n, BufferLoad) and n.buffer.name == old:
            return BufferLoad(new, n.indices)
        if isinstance(n, BufferStore) and n.buffer.name == old:
            return BufferStore(new, n.value, n.indices)
        return None

    return transform(node, fn)


def const_shape(buf: Buffer) -> list[int] | None:
    if all(isinstance(d, IntImm) for d in buf.shape):
        return [d.value for d in buf.shape]  # type: ignore[attr-defined]
    return None
