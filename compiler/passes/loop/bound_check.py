"""bound_check: insert asserts in front of accesses not provably in bounds.

For every statement, each load in its own expressions (see `cse.own_exprs`) and its store
target whose indices the interval analysis cannot place inside the buffer's shape gets
`assert 0 <= i && i < dim, "out of bounds: A[i]"` right before the statement (compared in
int64, or uint64 for uint64 indices). Loads whose indices use a variable bound by a `let`
inside the expression, and vector indices other than ramps and broadcasts, are not checked.
An index that is exactly the variable of an enclosing `for v in k(0, dim)` counts as proved.
In a program without undefined behaviour every assert holds; otherwise the first
out-of-bounds access fails with a clear message instead of corrupting memory.
"""

from __future__ import annotations

from compiler.dtypes import DType
from compiler.loop.ir import (
    Assert,
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
    For,
    IntImm,
    Let,
    Node,
    PrimFunc,
    Ramp,
    Stmt,
    Var,
)
from compiler.loop.printer import print_expr
from compiler.loop.traverse import transform, walk
from compiler.passes.arith import Bounds
from compiler.passes.base import loop_pass
from compiler.passes.loop.cse import own_exprs
from compiler.passes.loop_util import flatten_seqs, seq_of


def _lanes(idx: Expr) -> list[Expr] | None:
    if idx.lanes == 1:
        return [idx]
    if isinstance(idx, Broadcast):
        return [idx.value]
    if isinstance(idx, Ramp):
        return [idx.base if k == 0 else BinOp(BinKind.add, idx.base, BinOp(
            BinKind.mul, IntImm(k, idx.dtype), idx.stride)) for k in range(idx.lanes)]
    return None


def _check(i: Expr, dim: Expr) -> Expr:
    wide = DType.uint64 if i.dtype is DType.uint64 else DType.int64
    iw = i if i.dtype == wide else Cast(wide, i)
    dw = dim if dim.dtype == wide else Cast(wide, dim)
    upper = CmpOp(CmpKind.lt, iw, dw)
    if not i.dtype.is_signed:
        return upper
    return BinOp(BinKind.and_, CmpOp(CmpKind.le, IntImm(0, wide), iw), upper)


class _Checker:
    def __init__(self, func: PrimFunc) -> None:
        self.bounds = Bounds(func)
        self.loops: dict[Var, tuple[Expr, Expr] | None] = {}
        for lp in walk(func):
            if isinstance(lp, For):
                key = (lp.min, lp.extent)
                self.loops[lp.var] = key if self.loops.get(lp.var, key) == key else None

    def proved(self, i: Expr, dim: Expr) -> bool:
        rng = self.bounds.of(i)
        if rng is not None and isinstance(dim, IntImm) and rng.within(0, dim.value - 1):
            return True
        if isinstance(i, Var):
            loop = self.loops.get(i)
            return loop is not None and loop[0] == IntImm(0, i.dtype) and loop[1] == dim
        return False

    def conditions(self, buf: Buffer, indices: tuple[Expr, ...]) -> list[Expr] | None:
        conds: list[Expr] = []
        for idx, dim in zip(indices, buf.shape, strict=True):
            lanes = _lanes(idx)
            if lanes is None:
                return None
            conds.extend(_check(i, dim) for i in lanes if not self.proved(i, dim))
        return conds

    def asserts(self, s: Stmt) -> list[Stmt]:
        targets: list[tuple[Buffer, tuple[Expr, ...]]] = []
        for e in own_exprs(s):
            local = {n.var for n in walk(e) if isinstance(n, Let)}
            for n in walk(e, binders=False):
                if isinstance(n, BufferLoad) and not any(
                        isinstance(v, Var) and v in local for i in n.indices
                        for v in walk(i, binders=False)):
                    targets.append((n.buffer, n.indices))
        if isinstance(s, BufferStore):
            targets.append((s.buffer, s.indices))
        out: list[Stmt] = []
        seen: set[Expr] = set()
        for buf, idx in targets:
            conds = self.conditions(buf, idx) or []
            if not conds:
                continue
            cond = conds[0]
            for c in conds[1:]:
                cond = BinOp(BinKind.and_, cond, c)
            if cond in seen:
                continue
            seen.add(cond)
            text = f"{buf.name}[{', '.join(print_expr(i) for i in idx)}]"
            out.append(Assert(cond, f"out of bounds: {text}"))
        return out

    def visit(self, n: Node) -> Node | None:
        if not isinstance(n, Stmt) or isinstance(n, Assert):
            return None
        checks = self.asserts(n)
        return seq_of([*checks, n]) if checks else None


@loop_pass("Insert asserts before loads/stores whose indices are not provably in bounds.")
def bound_check(func: PrimFunc) -> PrimFunc:
    out = transform(func, _Checker(func).visit)
    assert isinstance(out, PrimFunc)
    return flatten_seqs(out)
