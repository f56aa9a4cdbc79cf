"""The rewrite rules of the loop-IR simplifier (not a pass: `loop/simplify.py` runs them).

Each rule is a small named function from a node to a replacement or None, applied bottom-up
to a fixpoint by `compiler.loop.traverse.rewrite`. The rules are exact under the IR's
semantics (wrapping integers, IEEE floats with -0.0 and NaN): integer expressions are put in
a canonical linear form modulo 2**bits, comparisons and divisions are decided with the
interval analysis of `arith.Bounds`, and floats only get rewrites that are bit-exact.
Removing the evaluation of a subexpression is allowed (it can only remove undefined
behaviour); introducing one is not.

`Simplifier(bounds).expr_rules()` / `.stmt_rules()` give the rule lists; `simplify_node`
runs them on any node.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from compiler.dtypes import DType
from compiler.loop.ir import (
    Allocate,
    Assert,
    BinKind,
    BinOp,
    Broadcast,
    Call,
    Cast,
    CmpKind,
    CmpOp,
    Evaluate,
    Expr,
    FloatImm,
    For,
    ForKind,
    IfThenElse,
    IntImm,
    Let,
    LetStmt,
    Node,
    Ramp,
    Select,
    SeqStmt,
    UnKind,
    UnOp,
    Var,
    int_range,
    is_float,
    is_int,
)
from compiler.loop.traverse import rewrite, substitute
from compiler.passes import arith
from compiler.passes.arith import Bounds, Interval, build_linear, const_value, eval_const, linear
from compiler.passes.loop_util import empty, is_empty, seq_of, uses_var

Rule = Callable[[Node], Node | None]
_DIVMOD = (BinKind.floordiv, BinKind.floormod, BinKind.truncdiv, BinKind.truncmod)
_INVERSE = {CmpKind.lt: CmpKind.ge, CmpKind.ge: CmpKind.lt, CmpKind.le: CmpKind.gt,
            CmpKind.gt: CmpKind.le, CmpKind.eq: CmpKind.ne, CmpKind.ne: CmpKind.eq}
_SWAP = {CmpKind.lt: CmpKind.gt, CmpKind.gt: CmpKind.lt, CmpKind.le: CmpKind.ge,
         CmpKind.ge: CmpKind.le, CmpKind.eq: CmpKind.eq, CmpKind.ne: CmpKind.ne}


def _int_scalar(e: Node) -> bool:
    return isinstance(e, Expr) and is_int(e.dtype) and e.lanes == 1


def _is_imm(e: Expr, value: int | float | None = None) -> bool:
    v = const_value(e)
    if v is None:
        return False
    if value is None:
        return True
    return v == value and (not isinstance(value, float) or str(v) == str(value))


def _bool(value: bool, lanes: int = 1) -> Expr:
    imm = IntImm(int(value), DType.bool)
    return imm if lanes == 1 else Broadcast(imm, lanes)


def _fits(value: int, dtype: DType) -> bool:
    lo, hi = int_range(dtype)
    return lo <= value <= hi


# ----------------------------------------------------------------------------- constants


def _const_operands(e: Expr) -> bool:
    if isinstance(e, (IntImm, FloatImm, Var)) or isinstance(e, Let):
        return False
    if isinstance(e, Broadcast):
        return False
    if isinstance(e, Ramp):
        return False
    kids = [getattr(e, f) for f in ("a", "b", "cond", "t", "f", "value") if hasattr(e, f)]
    if isinstance(e, Call):
        kids = list(e.args)
    if not kids or not all(isinstance(k, Expr) for k in kids):
        return False
    return all(arith.is_const(k) or (isinstance(k, Ramp) and arith.is_const(k.base)
                                     and arith.is_const(k.stride)) for k in kids)


def fold_constant(e: Node) -> Node | None:
    """An operation on immediates becomes the immediate the interpreter computes."""
    if isinstance(e, Expr) and _const_operands(e):
        return eval_const(e)
    return None


class Simplifier:
    def __init__(self, bounds: Bounds | None = None) -> None:
        self.bounds = bounds or Bounds()
        self.fired: Counter[str] = Counter()

    # -- integer arithmetic --------------------------------------------------------------

    def expr_rules(self) -> list[Rule]:
        b = self.bounds

        def canonical_sum(e: Node) -> Node | None:
            """+ - * neg on integers: sorted linear form, with q*c + r (from x//c, x%c)
            merged back into x."""
            if not (_int_scalar(e) and isinstance(e, (BinOp, UnOp))):
                return None
            if isinstance(e, UnOp) and e.op is not UnKind.neg:
                return None
            if isinstance(e, BinOp) and e.op not in (BinKind.add, BinKind.sub, BinKind.mul):
                return None
            terms, const = linear(e)
            terms = _merge_divmod(terms, e.dtype)
            return build_linear(terms, const, e.dtype)

        def divmod_identity(e: Node) -> Node | None:
            if not (_int_scalar(e) and isinstance(e, BinOp) and e.op in _DIVMOD):
                return None
            if _is_imm(e.b, 1):
                return e.a if e.op in (BinKind.floordiv, BinKind.truncdiv) \
                    else IntImm(0, e.dtype)
            c = const_value(e.b)
            a = b.of(e.a)
            if not isinstance(c, int) or c <= 0 or a is None:
                return None
            if e.op in (BinKind.truncdiv, BinKind.truncmod) and a.lo >= 0:
                return BinOp(BinKind.floordiv if e.op is BinKind.truncdiv else BinKind.floormod,
                             e.a, e.b)
            if a.within(0, c - 1):
                return IntImm(0, e.dtype) if e.op is BinKind.floordiv else e.a
            return None

        def divmod_nested(e: Node) -> Node | None:
            if not (_int_scalar(e) and isinstance(e, BinOp) and isinstance(e.a, BinOp)):
                return None
            c1, c2 = const_value(e.a.b), const_value(e.b)
            if not (isinstance(c1, int) and isinstance(c2, int) and c1 > 0 and c2 > 0):
                return None
            if e.op is BinKind.floordiv and e.a.op is BinKind.floordiv \
                    and _fits(c1 * c2, e.dtype):
                return BinOp(BinKind.floordiv, e.a.a, IntImm(c1 * c2, e.dtype))
            if e.op is BinKind.floormod and e.a.op is BinKind.floormod and c1 % c2 == 0:
                return BinOp(BinKind.floormod, e.a.a, e.b)
            return None

        def divmod_linear(e: Node) -> Node | None:
            """(c*q + r) // c -> q + r // c and (c*q + r) % c -> r % c, when nothing wraps."""
            if not (_int_scalar(e) and isinstance(e, BinOp)
                    and e.op in (BinKind.floordiv, BinKind.floormod)):
                return None
            c = const_value(e.b)
            if not isinstance(c, int) or c <= 1 or not b.no_wrap(e.a):
                return None
            terms, const = linear(e.a, exact=True)
            q_terms = {t: k // c for t, k in terms.items() if k % c == 0}
            r_terms = {t: k for t, k in terms.items() if k % c != 0}
            q0, r0 = divmod(const, c)
            if not q_terms and q0 == 0:
                return None
            if not all(_fits(k, e.dtype) for k in (*q_terms.values(), *r_terms.values())) \
                    or not _fits(r0, e.dtype) or not _fits(q0, e.dtype):
                return None
            r = build_linear(r_terms, r0, e.dtype)
            if not b.no_wrap(r):
                return None
            rng = b.of(r)
            r_in = rng is not None and rng.within(0, c - 1)
            if e.op is BinKind.floormod:
                return r if r_in else BinOp(BinKind.floormod, r, e.b)
            q = build_linear(q_terms, q0, e.dtype)
            return q if r_in else BinOp(BinKind.add, q, BinOp(BinKind.floordiv, r, e.b))

        def minmax(e: Node) -> Node | None:
            if not (isinstance(e, BinOp) and e.op in (BinKind.min, BinKind.max)):
                return None
            if e.a == e.b:
                return e.a
            if not is_int(e.dtype):
                return None
            ra, rb = b.of(e.a), b.of(e.b)
            if ra is None or rb is None:
                return None
            a_first = ra.hi <= rb.lo if e.op is BinKind.min else ra.lo >= rb.hi
            b_first = rb.hi <= ra.lo if e.op is BinKind.min else rb.lo >= ra.hi
            return e.a if a_first else (e.b if b_first else None)

        def minmax_const_nested(e: Node) -> Node | None:
            if not (isinstance(e, BinOp) and e.op in (BinKind.min, BinKind.max)
                    and is_int(e.dtype) and isinstance(e.a, BinOp) and e.a.op is e.op
                    and _is_imm(e.b) and _is_imm(e.a.b)):
                return None
            return BinOp(e.op, e.a.a, BinOp(e.op, e.a.b, e.b))

        def bitwise(e: Node) -> Node | None:
            if not (isinstance(e, BinOp) and is_int(e.dtype)):
                return None
            zero = IntImm(0, e.dtype) if e.lanes == 1 else Broadcast(IntImm(0, e.dtype), e.lanes)
            if e.op in (BinKind.bitand, BinKind.bitor) and e.a == e.b:
                return e.a
            if e.op is BinKind.bitxor and e.a == e.b:
                return zero
            if e.op in (BinKind.bitor, BinKind.bitxor, BinKind.shl, BinKind.shr) \
                    and _is_imm(e.b, 0):
                return e.a
            if e.op is BinKind.bitand and _is_imm(e.b, 0):
                return zero
            return None

        # -- floats: only bit-exact identities ---------------------------------------------

        def float_identity(e: Node) -> Node | None:
            if not (isinstance(e, BinOp) and is_float(e.dtype)):
                return None
            if e.op in (BinKind.mul, BinKind.div) and _is_imm(e.b, 1.0):
                return e.a
            if e.op is BinKind.mul and _is_imm(e.a, 1.0):
                return e.b
            if e.op is BinKind.sub and _is_imm(e.b, 0.0):
                return e.a
            if e.op is BinKind.add and _is_imm(e.b, -0.0):
                return e.a
            if e.op is BinKind.add and _is_imm(e.a, -0.0):
                return e.b
            return None

        def neg_neg(e: Node) -> Node | None:
            if isinstance(e, UnOp) and isinstance(e.a, UnOp) and e.op is e.a.op \
                    and e.op in (UnKind.neg, UnKind.not_, UnKind.bitnot):
                return e.a.a
            return None

        # -- comparisons and logic ---------------------------------------------------------

        def compare(e: Node) -> Node | None:
            if not isinstance(e, CmpOp):
                return None
            if e.a == e.b and not is_float(e.a.dtype):
                return _bool(e.op in (CmpKind.eq, CmpKind.le, CmpKind.ge), e.lanes)
            if is_float(e.a.dtype):
                return None
            ra, rb = b.of(e.a), b.of(e.b)
            if ra is not None and rb is not None:
                verdict = arith.decide_compare(e.op, ra, rb)
                if verdict is not None:
                    return _bool(verdict, e.lanes)
            if _int_scalar(e.a) and b.no_wrap(e.a) and b.no_wrap(e.b):
                ta, ca = linear(e.a, exact=True)
                tb, cb = linear(e.b, exact=True)
                if ta == tb:
                    return _bool(arith.decide_compare(e.op, Interval(ca, ca),
                                                      Interval(cb, cb)) or False)
            if _is_imm(e.a) and not _is_imm(e.b):
                return CmpOp(_SWAP[e.op], e.b, e.a)
            return None

        def not_compare(e: Node) -> Node | None:
            if isinstance(e, UnOp) and e.op is UnKind.not_ and isinstance(e.a, CmpOp) \
                    and not is_float(e.a.a.dtype):
                return CmpOp(_INVERSE[e.a.op], e.a.a, e.a.b)
            return None

        def logic(e: Node) -> Node | None:
            if not (isinstance(e, BinOp) and e.op in (BinKind.and_, BinKind.or_)):
                return None
            absorbing = 0 if e.op is BinKind.and_ else 1
            for x, y in ((e.a, e.b), (e.b, e.a)):
                v = const_value(x)
                if v is not None and x.lanes == e.lanes:
                    return x if v == absorbing else y
            return e.a if e.a == e.b else None

        # -- select, cast, let -------------------------------------------------------------

        def select(e: Node) -> Node | None:
            if not isinstance(e, Select):
                return None
            c = const_value(e.cond)
            if c is None and e.cond.lanes == 1:
                c = b.prove(e.cond)
            if c is not None:
                return e.t if c else e.f
            if e.t == e.f:
                return e.t
            if e.cond.lanes == e.lanes and e.dtype is DType.bool:
                if _is_imm(e.t, 1) and _is_imm(e.f, 0):
                    return e.cond
                if _is_imm(e.t, 0) and _is_imm(e.f, 1):
                    return UnOp(UnKind.not_, e.cond)
            if isinstance(e.cond, UnOp) and e.cond.op is UnKind.not_:
                return Select(e.cond.a, e.f, e.t)
            return None

        def cast(e: Node) -> Node | None:
            if not isinstance(e, Cast):
                return None
            if e.value.dtype == e.dtype:
                return e.value
            inner = e.value
            if isinstance(inner, Cast) and is_int(inner.value.dtype) and is_int(inner.dtype) \
                    and is_int(e.dtype):
                lo, hi = int_range(inner.value.dtype)
                if _fits(lo, inner.dtype) and _fits(hi, inner.dtype):
                    return Cast(e.dtype, inner.value) if e.dtype != inner.value.dtype \
                        else inner.value
            return None

        def let(e: Node) -> Node | None:
            if not isinstance(e, Let):
                return None
            if not uses_var(e.body, e.var):
                return e.body
            if isinstance(e.value, (Var, IntImm, FloatImm)):
                return substitute(e.body, {e.var: e.value})
            return None

        # -- vectors -----------------------------------------------------------------------

        def vector(e: Node) -> Node | None:
            if isinstance(e, Ramp) and _is_imm(e.stride, 0):
                return Broadcast(e.base, e.lanes)
            if isinstance(e, (BinOp, CmpOp)) and isinstance(e.a, Broadcast) \
                    and isinstance(e.b, Broadcast):
                return Broadcast(type(e)(e.op, e.a.value, e.b.value), e.lanes)
            if isinstance(e, UnOp) and isinstance(e.a, Broadcast):
                return Broadcast(UnOp(e.op, e.a.value), e.lanes)
            if isinstance(e, Cast) and isinstance(e.value, Broadcast):
                return Broadcast(Cast(e.dtype, e.value.value), e.lanes)
            if isinstance(e, BinOp) and isinstance(e.a, Ramp) and isinstance(e.b, Broadcast):
                r, v = e.a, e.b.value
                if e.op in (BinKind.add, BinKind.sub):
                    return Ramp(BinOp(e.op, r.base, v), r.stride, r.lanes)
                if e.op is BinKind.mul:
                    return Ramp(BinOp(BinKind.mul, r.base, v), BinOp(BinKind.mul, r.stride, v),
                                r.lanes)
            return None

        return [fold_constant, canonical_sum, divmod_identity, divmod_nested, divmod_linear,
                minmax, minmax_const_nested, bitwise, float_identity, neg_neg, compare,
                not_compare, logic, select, cast, let, vector]

    # -- statements ------------------------------------------------------------------------

    def stmt_rules(self) -> list[Rule]:
        b = self.bounds

        def if_const(s: Node) -> Node | None:
            if not isinstance(s, IfThenElse):
                return None
            c = const_value(s.cond)
            if c is None:
                c = b.prove(s.cond)
            if c is not None:
                return s.then if c else (s.else_ if s.else_ is not None else empty())
            if s.else_ is not None and is_empty(s.else_):
                return IfThenElse(s.cond, s.then, None)
            if is_empty(s.then):
                return empty() if s.else_ is None else \
                    IfThenElse(UnOp(UnKind.not_, s.cond), s.else_, None)
            if isinstance(s.cond, UnOp) and s.cond.op is UnKind.not_ and s.else_ is not None:
                return IfThenElse(s.cond.a, s.else_, s.then)
            return None

        def loop_trivial(s: Node) -> Node | None:
            if not isinstance(s, For) or s.kind is ForKind.thread_binding:
                return None
            ext = b.of(s.extent)
            if is_empty(s.body) or (ext is not None and ext.hi <= 0):
                return empty()
            if ext is not None and ext.const == 1:
                return substitute(s.body, {s.var: s.min})
            return None

        def seq_flatten(s: Node) -> Node | None:
            if not isinstance(s, SeqStmt):
                return None
            out = seq_of(s.stmts)
            return out if out != s else None

        def let_stmt(s: Node) -> Node | None:
            if not isinstance(s, LetStmt):
                return None
            if not uses_var(s.body, s.var):
                return s.body
            if isinstance(s.value, (Var, IntImm, FloatImm)):
                return substitute(s.body, {s.var: s.value})
            return None

        def trivial_stmt(s: Node) -> Node | None:
            if isinstance(s, Assert) and _is_imm(s.cond, 1):
                return empty()
            if isinstance(s, Evaluate) and isinstance(s.value, (IntImm, FloatImm, Var)):
                return empty()
            if isinstance(s, Allocate) and is_empty(s.body):
                return empty()
            return None

        return [if_const, loop_trivial, seq_flatten, let_stmt, trivial_stmt]


def _merge_divmod(terms: dict[Expr, int], dtype: DType) -> dict[Expr, int]:
    """k*c*(x // c) + k*(x % c) -> k*x (exact for floor and trunc pairs, modulo 2**bits)."""
    mask = (1 << dtype.bits) - 1
    for mod in list(terms):
        if not (isinstance(mod, BinOp) and mod.op in (BinKind.floormod, BinKind.truncmod)):
            continue
        c = const_value(mod.b)
        if not isinstance(c, int) or c == 0:
            continue
        div_kind = BinKind.floordiv if mod.op is BinKind.floormod else BinKind.truncdiv
        div = BinOp(div_kind, mod.a, mod.b)
        k = terms.get(mod)
        if k is None or div not in terms or (terms[div] - k * c) & mask:
            continue
        del terms[mod], terms[div]
        terms[mod.a] = terms.get(mod.a, 0) + k
        if terms[mod.a] & mask == 0:
            del terms[mod.a]
    return terms


def simplify_node(node: Node, bounds: Bounds | None = None, stmts: bool = True,
                  fired: Counter[str] | None = None) -> Node:
    """Rewrite `node` to a fixpoint with the simplifier's rules."""
    simp = Simplifier(bounds)
    rules = simp.expr_rules() + (simp.stmt_rules() if stmts else [])
    return rewrite(node, rules, fired)
