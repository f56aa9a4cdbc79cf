"""unsafe_select: make `select` safe where an arm may be undefined.

`select(c, t, f)` evaluates both arms, so an arm that divides by a possible zero, shifts by a
possibly out-of-range amount, casts a float to an integer, or loads out of bounds makes the
whole expression undefined even when the other arm is chosen. This pass rewrites such selects:

- a store or eval whose whole value is such a `select` (with a scalar condition) becomes
  `if c { A[i] = t } else { A[i] = f }`, which evaluates only the chosen arm;
- otherwise the dangerous operands inside an arm are guarded by the condition: a divisor `d`
  in the true arm becomes `select(c, d, 1)`, a shift amount `select(c, s, 0)`, a float cast
  operand `select(c, x, 0.0)` (a minifloat one `select(c, float32(x), 0.0)`: its casts to
  integers go through float32), and a load index into a constant dimension `select(c, i, 0)`.

Where the arm is chosen nothing changes, so a program without undefined behaviour keeps its
meaning; the rewrite only removes undefined behaviour from the arm that is not chosen.
"""

from __future__ import annotations

from compiler.dtypes import DType
from compiler.loop.ir import (
    BinKind,
    BinOp,
    BufferLoad,
    BufferStore,
    Cast,
    Evaluate,
    Expr,
    FloatImm,
    IfThenElse,
    IntImm,
    Let,
    Node,
    PrimFunc,
    Select,
    is_float,
)
from compiler.loop.traverse import transform, walk
from compiler.passes.arith import Bounds
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import broadcast, float_to_int, in_bounds, may_ub

_DIV = (BinKind.floordiv, BinKind.floormod, BinKind.truncdiv, BinKind.truncmod)


class _Guard:
    def __init__(self, func: PrimFunc) -> None:
        self.bounds = Bounds(func)
        self.params = [p.name for p in func.params]

    def unsafe(self, e: Expr) -> bool:
        return may_ub(e, self.bounds, self.params)

    def pick(self, cond: Expr, keep: Expr, safe: Expr, chosen: bool) -> Expr | None:
        """`keep` where the arm is chosen, `safe` elsewhere (None when lanes do not fit)."""
        if cond.lanes not in (1, keep.lanes):
            return None
        safe = broadcast(safe, keep.lanes)
        return Select(cond, keep, safe) if chosen else Select(cond, safe, keep)

    def guard_arm(self, arm: Expr, cond: Expr, chosen: bool) -> Expr:
        def fix(n: Node) -> Node | None:
            if isinstance(n, BinOp) and n.op in _DIV and self.unsafe(BinOp(n.op, n.a, n.b)):
                d = self.pick(cond, n.b, IntImm(1, n.b.dtype), chosen)
                return BinOp(n.op, n.a, d) if d is not None else None
            if isinstance(n, BinOp) and n.op in (BinKind.shl, BinKind.shr) and self.unsafe(n):
                s = self.pick(cond, n.b, IntImm(0, n.b.dtype), chosen)
                return BinOp(n.op, n.a, s) if s is not None else None
            if isinstance(n, Cast) and float_to_int(n):
                x = n.value
                if not is_float(x.dtype):  # a minifloat has no 0.0 literal; its casts to
                    x = Cast(DType.float32, x)  # integers go through float32 anyway
                v = self.pick(cond, x, FloatImm(0.0, x.dtype), chosen)
                return Cast(n.dtype, v) if v is not None else None
            if isinstance(n, BufferLoad) and not in_bounds(n.buffer.shape, n.indices,
                                                           self.bounds):
                idx = []
                for i, dim in zip(n.indices, n.buffer.shape, strict=True):
                    ok = isinstance(dim, IntImm) and dim.value > 0
                    g = self.pick(cond, i, IntImm(0, i.dtype), chosen) if ok else None
                    idx.append(g if g is not None else i)
                return BufferLoad(n.buffer, tuple(idx))
            return None

        out = transform(arm, fix)
        assert isinstance(out, Expr)
        return out

    def visit(self, n: Node) -> Node | None:
        if isinstance(n, (BufferStore, Evaluate)) and isinstance(n.value, Select) \
                and n.value.cond.lanes == 1 \
                and (self.unsafe(n.value.t) or self.unsafe(n.value.f)):
            sel = n.value
            if isinstance(n, Evaluate):
                return IfThenElse(sel.cond, Evaluate(sel.t), Evaluate(sel.f))
            return IfThenElse(sel.cond, BufferStore(n.buffer, sel.t, n.indices),
                              BufferStore(n.buffer, sel.f, n.indices))
        if isinstance(n, Select) and (self.unsafe(n.t) or self.unsafe(n.f)) \
                and not any(isinstance(x, Let) for x in walk(n.cond)):
            # (a condition that binds names cannot be copied into the arms: they may bind
            # the same names)
            return Select(n.cond, self.guard_arm(n.t, n.cond, True),
                          self.guard_arm(n.f, n.cond, False))
        return None


@loop_pass("Rewrite selects whose arms may be undefined into branches or guarded forms.")
def unsafe_select(func: PrimFunc) -> PrimFunc:
    guard = _Guard(func)
    # top-level selects first (pre-order intent): handle stores/evals before their values
    first = transform(func, lambda n: guard.visit(n)
                      if isinstance(n, (BufferStore, Evaluate)) else None)
    out = transform(first, lambda n: guard.visit(n) if isinstance(n, Select) else None)
    assert isinstance(out, PrimFunc)
    return out
