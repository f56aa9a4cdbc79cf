"""Integer arithmetic analysis for the loop passes: intervals, constant evaluation and linear
forms. Not a pass (it lives outside `compiler/passes/loop/`).

- `Bounds(node)`: a sound inclusive interval for every integer (and bool) expression. Variable
  ranges are collected flow-insensitively from binders (loop ranges, let values; scalar
  parameters range over their dtype); a name bound in several sibling scopes gets the hull of
  its ranges, which stays sound because every use lies in one of those scopes.
  `bounds.of(e)` never wraps: when the exact result of an operation may leave its dtype, the
  interval becomes the whole dtype and `bounds.may_wrap(e)` reports it.
- `eval_const(e)`: the value of an expression with no free variables, computed by the
  interpreter itself (so folding agrees with the semantics bit for bit), or None when it is
  undefined or not representable as an immediate (a storage-only dtype never is).
- `linear(e)`: `e` as `sum(coeff * term) + const` modulo 2**bits (exact for + - * << by
  constants under wrapping arithmetic), and `build_linear` to turn one back into IR.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from compiler.dtypes import DType
from compiler.errors import VerifyError
from compiler.loop.interp import UndefinedBehavior, run
from compiler.loop.ir import (
    BinKind,
    BinOp,
    Broadcast,
    Buffer,
    BufferLoad,
    BufferStore,
    Call,
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
    Select,
    UnKind,
    UnOp,
    Var,
    int_range,
    is_float,
    is_int,
    is_storage,
)
from compiler.loop.numeric import float_from_f64, wrap_int
from compiler.loop.printer import print_expr
from compiler.loop.traverse import walk


@dataclass(frozen=True, slots=True)
class Interval:
    lo: int
    hi: int

    def __contains__(self, x: int) -> bool:
        return self.lo <= x <= self.hi

    def within(self, lo: int, hi: int) -> bool:
        return lo <= self.lo and self.hi <= hi

    def hull(self, other: Interval) -> Interval:
        return Interval(min(self.lo, other.lo), max(self.hi, other.hi))

    @property
    def const(self) -> int | None:
        return self.lo if self.lo == self.hi else None


def full(dtype: DType) -> Interval:
    return Interval(*int_range(dtype))


def is_intlike(dtype: DType) -> bool:
    return is_int(dtype) or dtype is DType.bool


# ----------------------------------------------------------------------------- intervals


def _corners(f: Callable[[int, int], int], a: Interval, b: Interval) -> Interval:
    vals = [f(x, y) for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    return Interval(min(vals), max(vals))


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _div(op: BinKind, a: Interval, b: Interval) -> Interval | None:
    """Exact interval of a division/modulo, or None for 'anything'."""
    if op in (BinKind.floordiv, BinKind.truncdiv):
        f = (lambda x, y: x // y) if op is BinKind.floordiv else _trunc_div
        if b.lo > 0 or b.hi < 0:
            return _corners(f, a, b)
        m = max(abs(a.lo), abs(a.hi), 1)
        return Interval(-m, m)
    m = max(abs(b.lo), abs(b.hi))
    if op is BinKind.floormod:
        if b.lo > 0:
            if a.within(0, b.lo - 1):
                return a
            return Interval(0, min(b.hi - 1, a.hi) if a.lo >= 0 else b.hi - 1)
        if b.hi < 0:
            return Interval(b.lo + 1, 0)
        return Interval(-(m - 1), m - 1) if m > 0 else None
    # truncmod: the sign of the dividend, magnitude below |b|
    if m == 0:
        return None
    if a.lo >= 0:
        return Interval(0, min(a.hi, m - 1))
    if a.hi <= 0:
        return Interval(max(a.lo, -(m - 1)), 0)
    return Interval(max(a.lo, -(m - 1)), min(a.hi, m - 1))


def _binop(e: BinOp, a: Interval, b: Interval) -> Interval | None:
    op = e.op
    if op is BinKind.add:
        return Interval(a.lo + b.lo, a.hi + b.hi)
    if op is BinKind.sub:
        return Interval(a.lo - b.hi, a.hi - b.lo)
    if op is BinKind.mul:
        return _corners(lambda x, y: x * y, a, b)
    if op in (BinKind.floordiv, BinKind.floormod, BinKind.truncdiv, BinKind.truncmod):
        return _div(op, a, b)
    if op is BinKind.min:
        return Interval(min(a.lo, b.lo), min(a.hi, b.hi))
    if op is BinKind.max:
        return Interval(max(a.lo, b.lo), max(a.hi, b.hi))
    if op in (BinKind.and_, BinKind.or_):
        return Interval(0, 1)
    if op is BinKind.bitand:
        if a.lo >= 0 and b.lo >= 0:
            return Interval(0, min(a.hi, b.hi))
        if a.lo >= 0 or b.lo >= 0:
            return Interval(0, a.hi if a.lo >= 0 else b.hi)
        return None
    if op in (BinKind.bitor, BinKind.bitxor):
        if a.lo >= 0 and b.lo >= 0:
            return Interval(0, (1 << max(a.hi, b.hi).bit_length()) - 1)
        return None
    bits = e.dtype.bits
    if not b.within(0, bits - 1):
        return None
    if op is BinKind.shl:
        return _corners(lambda x, y: x << y, a, b)
    return _corners(lambda x, y: x >> y, a, b)


class Bounds:
    """Sound intervals of integer expressions of one function (see the module docstring)."""

    def __init__(self, node: Node | None = None) -> None:
        self.ranges: dict[Var, Interval] = {}
        self._memo: dict[int, tuple[Expr, Interval | None, bool]] = {}
        if node is not None:
            self.scan(node)

    def scan(self, node: Node) -> None:
        """Collect the ranges of the variables bound in `node` (pre-order: binders first)."""
        for n in walk(node):
            if isinstance(n, For):
                self._bind(n.var, self._loop_range(n))
            elif isinstance(n, (LetStmt, Let)) and n.var.lanes == 1 and is_intlike(n.var.dtype):
                self._bind(n.var, self.of(n.value))

    def _loop_range(self, n: For) -> Interval | None:
        lo, ext = self.of(n.min), self.of(n.extent)
        if lo is None or ext is None or ext.hi < 1:
            return None  # the body never runs: no constraint is wrong
        return Interval(lo.lo, min(lo.hi + ext.hi - 1, int_range(n.var.dtype)[1]))

    def _bind(self, var: Var, rng: Interval | None) -> None:
        if rng is None:
            return
        old = self.ranges.get(var)
        self.ranges[var] = rng if old is None else old.hull(rng)
        self._memo.clear()

    def narrowed(self, var: Var, rng: Interval) -> Bounds:
        """A copy where `var` ranges over `rng` only (sound where that holds)."""
        out = Bounds()
        out.ranges = {**self.ranges, var: rng}
        return out

    def bind(self, var: Var, rng: Interval) -> None:
        """Add a range for `var` (joined with any it has)."""
        self._bind(var, rng)

    def of(self, e: Expr) -> Interval | None:
        """A sound interval of `e` (over all its lanes), or None for non-integer `e`."""
        return self._info(e)[0]

    def may_wrap(self, e: Expr) -> bool:
        """Whether the operation at the root of `e` may wrap around its dtype."""
        return self._info(e)[1]

    def no_wrap(self, e: Expr) -> bool:
        """Whether no add/sub/mul/neg/shl anywhere in `e` can wrap."""
        return not any(isinstance(n, Expr) and self.may_wrap(n) for n in walk(e, binders=False))

    def _info(self, e: Expr) -> tuple[Interval | None, bool]:
        hit = self._memo.get(id(e))
        if hit is not None and hit[0] is e:
            return hit[1], hit[2]
        for n in reversed(list(walk(e, binders=False))):
            if isinstance(n, Expr) and id(n) not in self._memo:
                rng, wrapped = self._local(n)
                self._memo[id(n)] = (n, rng, wrapped)
        hit = self._memo[id(e)]
        return hit[1], hit[2]

    def _get(self, e: Expr) -> Interval | None:
        hit = self._memo.get(id(e))
        return hit[1] if hit is not None and hit[0] is e else self.of(e)

    def _local(self, e: Expr) -> tuple[Interval | None, bool]:
        dtype = e.dtype
        if not is_intlike(dtype):
            return None, False
        exact = self._exact(e)
        dom = full(dtype)
        if exact is None:
            return dom, False
        if exact.within(dom.lo, dom.hi):
            return exact, False
        wraps = isinstance(e, (BinOp, UnOp, Ramp)) and (
            not isinstance(e, BinOp) or e.op in (BinKind.add, BinKind.sub, BinKind.mul,
                                                 BinKind.shl))
        return dom, wraps

    def _exact(self, e: Expr) -> Interval | None:
        if isinstance(e, IntImm):
            return Interval(e.value, e.value)
        if isinstance(e, Var):
            return self.ranges.get(e) if e.lanes == 1 else None
        if isinstance(e, BinOp):
            a, b = self._get(e.a), self._get(e.b)
            return None if a is None or b is None else _binop(e, a, b)
        if isinstance(e, CmpOp):
            return self._compare(e)
        if isinstance(e, UnOp):
            a = self._get(e.a)
            if a is None:
                return None
            if e.op is UnKind.neg:
                return Interval(-a.hi, -a.lo)
            if e.op is UnKind.bitnot:
                return Interval(~a.hi, ~a.lo)
            return Interval(1 - a.hi, 1 - a.lo) if a.within(0, 1) else None
        if isinstance(e, Select):
            t, f = self._get(e.t), self._get(e.f)
            c = self._get(e.cond)
            if c is not None and c.const is not None:
                return t if c.const else f
            return None if t is None or f is None else t.hull(f)
        if isinstance(e, Cast):
            src = self._get(e.value)
            if e.dtype is DType.bool:
                if src is None or src == Interval(0, 0):
                    return Interval(0, 0) if src is not None else Interval(0, 1)
                return Interval(1, 1) if 0 not in src else Interval(0, 1)
            if src is not None and src.within(*int_range(e.dtype)):
                return src
            return None
        if isinstance(e, Call):
            return self._call(e)
        if isinstance(e, Ramp):
            base, stride = self._get(e.base), self._get(e.stride)
            if base is None or stride is None:
                return None
            last = _corners(lambda x, y: x + (e.lanes - 1) * y, base, stride)
            return base.hull(last)
        if isinstance(e, (Broadcast, Let)):
            return self._get(e.value if isinstance(e, Broadcast) else e.body)
        return None  # loads: anything of the dtype

    def _compare(self, e: CmpOp) -> Interval:
        a, b = self._get(e.a), self._get(e.b)
        verdict = decide_compare(e.op, a, b) if a is not None and b is not None else None
        return Interval(0, 1) if verdict is None else Interval(int(verdict), int(verdict))

    def _call(self, e: Call) -> Interval | None:
        if e.op == "popcount":
            return Interval(0, e.dtype.bits)
        if e.op == "abs" and is_int(e.dtype):
            a = self._get(e.args[0])
            if a is None or a.lo == int_range(e.dtype)[0]:
                return None
            if a.lo >= 0:
                return a
            return Interval(0 if a.hi >= 0 else -a.hi, max(-a.lo, a.hi))
        return Interval(0, 1) if e.dtype is DType.bool else None

    def prove(self, e: Expr) -> bool | None:
        """True/False if the bool expression `e` is known to be constant, else None."""
        rng = self.of(e)
        return None if rng is None or rng.const is None else bool(rng.const)


def decide_compare(op: CmpKind, a: Interval, b: Interval) -> bool | None:
    if op is CmpKind.lt:
        return True if a.hi < b.lo else (False if a.lo >= b.hi else None)
    if op is CmpKind.le:
        return True if a.hi <= b.lo else (False if a.lo > b.hi else None)
    if op is CmpKind.gt:
        return decide_compare(CmpKind.lt, b, a)
    if op is CmpKind.ge:
        return decide_compare(CmpKind.le, b, a)
    if a.const is not None and a == b:
        return op is CmpKind.eq
    if a.hi < b.lo or b.hi < a.lo:
        return op is CmpKind.ne
    return None


# ----------------------------------------------------------------------------- constants


def is_const(e: Expr) -> bool:
    if isinstance(e, Broadcast):
        e = e.value
    return isinstance(e, (IntImm, FloatImm))


def const_value(e: Expr) -> int | float | None:
    if isinstance(e, Broadcast):
        e = e.value
    return e.value if isinstance(e, (IntImm, FloatImm)) else None


def _canonical_nan_bits(dtype: DType) -> bytes:
    nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000000))[0]
    return np.asarray(float_from_f64(nan, dtype)).tobytes()


def imm(value: int | float, dtype: DType, lanes: int = 1) -> Expr | None:
    """An immediate of `dtype` holding exactly `value` (a numpy or Python scalar), or None if
    no immediate can: a NaN other than the canonical one, or any value of a storage-only dtype
    (float8, int4, ...: the IR has no literals of those; their casts stay unfolded)."""
    if is_storage(dtype):
        return None
    if is_float(dtype):
        arr = np.asarray(value, dtype.np)
        if np.isnan(arr) and arr.tobytes() != _canonical_nan_bits(dtype):
            return None
        node: Expr = FloatImm(float(arr), dtype)
    else:
        node = IntImm(int(value), dtype)
    return node if lanes == 1 else Broadcast(node, lanes)


@functools.lru_cache(maxsize=8192)
def eval_const(e: Expr) -> Expr | None:
    """Evaluate a closed expression with the interpreter; None if undefined or unrepresentable.
    A vector result becomes a Broadcast (all lanes equal) or an integer Ramp."""
    lanes = e.lanes
    out = Buffer("out", e.dtype, (IntImm(lanes),))
    index: Expr = IntImm(0) if lanes == 1 else Ramp(IntImm(0), IntImm(1), lanes)
    func = PrimFunc("fold", (out,), BufferStore(out, e, (index,)))
    arr = np.zeros(lanes, e.dtype.np)
    try:
        run(func, {"out": arr})
    except (UndefinedBehavior, VerifyError):
        return None
    if lanes == 1 or all(arr[k].tobytes() == arr[0].tobytes() for k in range(lanes)):
        return imm(arr[0], e.dtype, lanes)
    if is_int(e.dtype):
        vals = [int(v) for v in arr]
        stride = wrap_int(vals[1] - vals[0], e.dtype)
        if all(wrap_int(vals[0] + k * stride, e.dtype) == v for k, v in enumerate(vals)):
            return Ramp(IntImm(vals[0], e.dtype), IntImm(stride, e.dtype), lanes)
    return None


def closed(e: Expr) -> bool:
    """No free variables and no loads (Let-bound names are fine)."""
    bound = {n.var for n in walk(e) if isinstance(n, Let)}
    return not any(isinstance(n, BufferLoad) or (isinstance(n, Var) and n not in bound)
                   for n in walk(e, binders=False))


# ----------------------------------------------------------------------------- linear forms

Terms = dict[Expr, int]


def _mod(value: int, dtype: DType) -> int:
    """`value` modulo 2**bits, in the signed range (so small negatives stay small)."""
    bits = dtype.bits
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def linear(e: Expr, exact: bool = False) -> tuple[Terms, int]:
    """`e` (scalar integer) as ({term: coeff}, const) modulo 2**bits; with `exact`, the
    coefficients are not reduced (the form is then the exact value when nothing wraps)."""
    dtype = e.dtype
    terms: Terms = {}
    const = 0

    def add(x: Expr, k: int) -> None:
        nonlocal const
        if k == 0:
            return
        if isinstance(x, IntImm):
            const += k * x.value
        elif isinstance(x, BinOp) and x.op in (BinKind.add, BinKind.sub):
            add(x.a, k)
            add(x.b, -k if x.op is BinKind.sub else k)
        elif isinstance(x, UnOp) and x.op is UnKind.neg:
            add(x.a, -k)
        elif isinstance(x, BinOp) and x.op is BinKind.mul and isinstance(x.b, IntImm):
            add(x.a, k * x.b.value)
        elif isinstance(x, BinOp) and x.op is BinKind.mul and isinstance(x.a, IntImm):
            add(x.b, k * x.a.value)
        elif (isinstance(x, BinOp) and x.op is BinKind.shl and isinstance(x.b, IntImm)
              and 0 <= x.b.value < dtype.bits):
            add(x.a, k << x.b.value)
        else:
            terms[x] = terms.get(x, 0) + k

    add(e, 1)
    if exact:
        return {t: k for t, k in terms.items() if k != 0}, const
    out = {t: _mod(k, dtype) for t, k in terms.items()}
    return {t: k for t, k in out.items() if k != 0}, _mod(const, dtype)


@functools.lru_cache(maxsize=16384)
def term_key(e: Expr) -> tuple[int, str]:
    """A deterministic order of terms: variables first, then by text."""
    return (0 if isinstance(e, Var) else 1, print_expr(e))


def build_linear(terms: Terms, const: int, dtype: DType) -> Expr:
    """IR for `sum(k * t) + const`, terms in `term_key` order, constant last."""
    out: Expr | None = None
    lowest = -(1 << (dtype.bits - 1))
    order = sorted(terms, key=term_key)
    first_positive = next((t for t in order if terms[t] > 0 or terms[t] == lowest), None)
    if first_positive is not None:  # `a - b` reads better than `-b + a`
        order.remove(first_positive)
        order.insert(0, first_positive)
    if order and const > 0 and terms[order[0]] < 0 and terms[order[0]] != lowest:
        out = IntImm(_fit(const, dtype), dtype)  # `c - t` reads better than `-t + c`
        const = 0
    for t in order:
        k = terms[t]
        positive = k > 0 or k == lowest  # -lowest wraps to itself: keep it a product
        mag = k if positive else -k
        part = t if mag == 1 else BinOp(BinKind.mul, t, IntImm(_fit(mag, dtype), dtype))
        if out is None:
            out = part if positive else UnOp(UnKind.neg, part)
        else:
            out = BinOp(BinKind.add if positive else BinKind.sub, out, part)
    if out is None:
        return IntImm(wrap_int(const, dtype), dtype)
    if const > 0:
        return BinOp(BinKind.add, out, IntImm(_fit(const, dtype), dtype))
    if const < 0:
        return BinOp(BinKind.sub, out, IntImm(_fit(-const, dtype), dtype))
    return out


def _fit(value: int, dtype: DType) -> int:
    """`value` as an immediate of `dtype` (it is congruent modulo 2**bits)."""
    return wrap_int(value, dtype)
