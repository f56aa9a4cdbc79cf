"""simplify: algebraic simplification: exact local rewrites, run to a fixed point.

Every rule is exact: the result has the same dtype, the same shape and the same value as
before, for every input (infinities, the sign of zero and NaN-ness included; NaN payloads
are no part of a value, as arithmetic may quiet or canonicalise them). The rules:

- a neutral operand: `x + (-0.0)`, `-0.0 + x`, `x - 0.0`, `x * 1`, `1 * x`, `x / 1`,
  `x ** 1` (integers: any zero), when the constant broadcasts into x without growing it.
  Not `x + 0.0`: `-0.0 + 0.0` is `+0.0`. Not `x * 0`: `NaN * 0` is NaN;
- involutions `Neg(Neg x)`, `Not(Not x)` -> x; idempotent `Abs`, `Relu`, `Floor`, `Ceil`,
  `Round`: `f(f x)` -> `f x`;
- `Cast`/`CastLike` to x's own dtype -> x; `Cast(Cast(x, A), B)` where x -> A is lossless
  (`LOSSLESS`): x itself when B is x's dtype, `Cast(x, B)` when A -> B is lossless too;
- `Transpose` with the identity permutation -> x; two Transposes -> one (or none);
- `Reshape(Reshape(x, s1), s2)` -> `Reshape(x, s2)` (a 0 of s2 copying a dim of the inner
  result is resolved from its type); a reshape-like op whose type equals its input's -> x;
- `Expand` to a shape that broadcasts into x's -> x; `Concat` of one input -> x;
- `Slice` that keeps every element -> x; `Squeeze(Unsqueeze(x, a), a)` and
  `Unsqueeze(Squeeze(x, a), a)` -> x.

The rule engine here (`Site`, `rewrite_function`, `rewrite_module`) also drives
`remove_identity`: a rule is a small function of a `Site` returning the value that replaces
the call's (first) output, an existing one or one it emitted, or None. The engine accepts a
replacement only if its type is the output's, so no rule can change a type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from compiler.dtypes import DType
from compiler.errors import AnvilError
from compiler.graph.ir import UNKNOWN, Binding, Call, Const, Dim, Function, Module, Var
from compiler.ops.pad_slice import slice_range
from compiler.passes.base import graph_pass
from compiler.passes.graph_util import (
    Emitter,
    is_pure,
    map_functions,
    merge_type,
    remove_unused,
    replace_bindings,
    use_counts,
)

D = DType

# ---------------------------------------------------------------------------------------
# the rule engine


@dataclass
class Site:
    """One call a rule looks at, with what the sweep knows so far: `defs` maps each value
    defined before it to its (already rewritten) binding, `uses` counts uses in the function
    as the sweep found it, and `em` emits new bindings (constants are known to `em.consts`)."""

    binding: Binding
    em: Emitter
    defs: Mapping[Var, Binding]
    uses: Counter
    origin: str

    @property
    def call(self) -> Call:
        assert isinstance(self.binding.expr, Call)
        return self.binding.expr

    @property
    def out(self) -> Var:
        return self.binding.outs[0]

    def arg(self, i: int) -> Var | None:
        args = self.call.args
        return args[i] if i < len(args) else None

    def attr(self, name: str, default: Any = None) -> Any:
        return self.call.attr_dict.get(name, default)

    def value(self, v: Var | None) -> np.ndarray | None:
        """The constant value of `v`, if it is bound by a `Const` of this function."""
        return None if v is None else self.em.consts.get(v)

    def ints(self, v: Var | None) -> list[int] | None:
        c = self.value(v)
        if c is None or c.dtype.kind not in "iu" or c.ndim > 1:
            return None
        return [int(x) for x in c.reshape(-1)]

    def producer(self, v: Var | None, *ops: str) -> Call | None:
        """The call defining `v` (its first output), if it is one of `ops`."""
        b = self.defs.get(v) if v is not None else None
        if b is None or not isinstance(b.expr, Call) or b.outs[0] != v or b.expr.op not in ops:
            return None
        return b.expr

    def emit(self, op: str, args: Sequence[Var | None], attrs: Mapping[str, Any]) -> Var:
        return self.em.call(op, args, attrs, hint=self.out.name, origin=self.origin)[0]

    def const(self, value: np.ndarray) -> Var:
        return self.em.const(value, hint=f"{self.out.name}_shape", origin=self.origin)


Rule = Callable[[Site], Var | None]
RuleTable = Mapping[str, Sequence[Rule]]
MAX_SWEEPS = 64


def _apply(b: Binding, em: Emitter, defs: dict[Var, Binding], uses: Counter, rules: RuleTable,
           origin: str) -> Mapping[Var, Var] | list[Binding] | None:
    """The first accepted rewrite of `b`: a forwarding {out: value}, or the bindings that
    now define `out` (emitted ones, the last renamed to `out`)."""
    if not isinstance(b.expr, Call):
        return None
    out = b.outs[0]
    for rule in rules.get(b.expr.op, ()):
        try:
            repl = rule(Site(b, em, defs, uses, origin))
        except AnvilError:  # a rebuilt call its type relation rejects: leave b alone
            repl = None
        emitted = em.take()
        if repl is None or repl == out:
            continue
        if emitted and emitted[-1].outs == (repl,):
            # rebuilt: the new call defines `out` itself, with out's (maybe more precise) type
            if len(b.outs) != 1 or merge_type(out.type, repl.type) != out.type:
                continue
            last = Binding((out,), emitted[-1].expr, b.origin)
            if last.expr == b.expr:
                continue
            return [*emitted[:-1], last]
        if repl.type != out.type:
            continue
        em.bindings.extend(emitted)
        return {out: repl}
    return None


def _sweep(fn: Function, rules: RuleTable, origin: str) -> tuple[Function, bool]:
    defs: dict[Var, Binding] = {}
    uses = use_counts(fn)
    changed = False

    def rewrite(b: Binding, em: Emitter) -> Mapping[Var, Var] | list[Binding] | None:
        nonlocal changed
        r = _apply(b, em, defs, uses, rules, origin)
        if r is None or isinstance(r, Mapping):
            for o in b.outs:
                defs[o] = b
        else:
            for nb in r:
                for o in nb.outs:
                    defs[o] = nb
        for nb in em.bindings:
            for o in nb.outs:
                defs[o] = nb
        changed = changed or r is not None
        return r

    return replace_bindings(fn, rewrite), changed


def rewrite_function(fn: Function, rules: RuleTable, origin: str) -> Function:
    """Sweep `rules` over `fn` until none fires; drop what became unused."""
    changed = False
    for _ in range(MAX_SWEEPS):
        fn, swept = _sweep(fn, rules, origin)
        if not swept:
            break
        changed = True
    if not changed:
        return fn
    return remove_unused(fn, keep=lambda b: not isinstance(b.expr, Const)
                         and not is_pure(b.expr))


def rewrite_module(module: Module, rules: RuleTable, origin: str) -> Module:
    return map_functions(module, lambda fn: rewrite_function(fn, rules, origin))


# ---------------------------------------------------------------------------------------
# shape facts


def fits(small: Sequence[int], shape: Sequence[Dim] | None) -> bool:
    """Whether broadcasting a tensor of static shape `small` with one of `shape` gives
    `shape` for every size the dims of `shape` may take."""
    if shape is None or len(small) > len(shape):
        return False
    tail = shape[len(shape) - len(small):]
    return all(s == 1 or (isinstance(d, int) and d == s) for s, d in zip(small, tail,
                                                                        strict=True))


def known_shape(v: Var) -> bool:
    """A shape of known rank without `?` dims: equal types then mean equal shapes."""
    shape = v.type.shape
    return shape is not None and UNKNOWN not in shape


def norm_axes(axes: Sequence[int], rank: int) -> frozenset[int] | None:
    if any(not -rank <= a < rank for a in axes):
        return None
    return frozenset(a % rank for a in axes)


# ---------------------------------------------------------------------------------------
# neutral operands


def _zero(sign: bool) -> Callable[[np.ndarray, DType], bool]:
    """All zeros, and for floats all of the sign `sign` (True: -0.0)."""

    def check(c: np.ndarray, x: DType) -> bool:
        if not np.all(c == 0):
            return False
        return not x.is_float or bool(np.all(np.signbit(c.astype(np.float64)) == sign))

    return check


def _one(c: np.ndarray, x: DType) -> bool:
    return bool(np.all(c == 1))


def _unit_exponent(c: np.ndarray, x: DType) -> bool:
    """`x ** 1` is x for a float base (float64 pow, rounded to x's type) and for integers
    raised to an integer; an integer base with a float exponent goes through float64."""
    return _one(c, x) and (x.is_float or c.dtype.kind in "iu")


# op -> ((index of the constant operand, whether it is neutral for the other operand), ...)
NEUTRAL_OPERANDS: dict[str, tuple[tuple[int, Callable[[np.ndarray, DType], bool]], ...]] = {
    "Add": ((1, _zero(True)), (0, _zero(True))),
    "Sub": ((1, _zero(False)),),
    "Mul": ((1, _one), (0, _one)),
    "Div": ((1, _one),),
    "Pow": ((1, _unit_exponent),),
}


def neutral_operand(s: Site) -> Var | None:
    for k, neutral in NEUTRAL_OPERANDS[s.call.op]:
        c, x = s.value(s.arg(k)), s.arg(1 - k)
        if c is not None and x is not None and fits(c.shape, x.type.shape) \
                and neutral(c, x.type.dtype):
            return x
    return None


# ---------------------------------------------------------------------------------------
# unary chains

INVOLUTIONS = ("Neg", "Not")
IDEMPOTENT = ("Abs", "Relu", "Floor", "Ceil", "Round")


def involution(s: Site) -> Var | None:
    inner = s.producer(s.arg(0), s.call.op)
    return inner.args[0] if inner is not None else None


def idempotent(s: Site) -> Var | None:
    inner = s.producer(s.arg(0), s.call.op)
    return s.arg(0) if inner is not None and inner.attrs == s.call.attrs else None


# ---------------------------------------------------------------------------------------
# casts

_INTS = (D.int8, D.int16, D.int32, D.int64, D.uint8, D.uint16, D.uint32, D.uint64)
_FLOATS = (D.float16, D.bfloat16, D.float32, D.float64)

# src -> the dtypes that hold every value of src exactly (NaN, infinities and -0.0 too)
LOSSLESS: dict[DType, frozenset[DType]] = {
    D.bool: frozenset(_INTS + _FLOATS),
    D.int8: frozenset({D.int16, D.int32, D.int64, *_FLOATS}),
    D.uint8: frozenset({D.int16, D.int32, D.int64, D.uint16, D.uint32, D.uint64, *_FLOATS}),
    D.int16: frozenset({D.int32, D.int64, D.float32, D.float64}),
    D.uint16: frozenset({D.int32, D.int64, D.uint32, D.uint64, D.float32, D.float64}),
    D.int32: frozenset({D.int64, D.float64}),
    D.uint32: frozenset({D.int64, D.uint64, D.float64}),
    D.float16: frozenset({D.float32, D.float64}),
    D.bfloat16: frozenset({D.float32, D.float64}),
    D.float32: frozenset({D.float64}),
}


def cast_same(s: Site) -> Var | None:
    x = s.arg(0)
    return x if x is not None and s.out.type.dtype == x.type.dtype else None


def cast_chain(s: Site) -> Var | None:
    inner = s.producer(s.arg(0), "Cast")
    if inner is None or inner.args[0] is None:
        return None
    x = inner.args[0]
    src, mid, dst = x.type.dtype, s.arg(0).type.dtype, s.out.type.dtype  # type: ignore[union-attr]
    if mid not in LOSSLESS.get(src, ()):
        return None
    if dst == src:
        return x
    if dst in LOSSLESS.get(mid, ()):
        return s.emit("Cast", [x], s.call.attr_dict)
    return None


# ---------------------------------------------------------------------------------------
# layout: Transpose, Reshape and friends


def _perm(call: Call, rank: int | None) -> list[int] | None:
    perm = call.attr_dict.get("perm")
    if perm is not None:
        return list(perm)
    return None if rank is None else list(range(rank))[::-1]


def transpose_identity(s: Site) -> Var | None:
    x = s.arg(0)
    perm = _perm(s.call, x.type.rank) if x is not None else None
    return x if perm is not None and perm == sorted(perm) else None


def transpose_pair(s: Site) -> Var | None:
    inner = s.producer(s.arg(0), "Transpose")
    if inner is None or inner.args[0] is None:
        return None
    x = inner.args[0]
    p1 = _perm(inner, x.type.rank)
    p2 = _perm(s.call, len(p1)) if p1 is not None else None
    if p1 is None or p2 is None or len(p1) != len(p2):
        return None
    perm = [p1[p] for p in p2]
    if perm == sorted(perm):
        return x
    return s.emit("Transpose", [x], {"perm": tuple(perm)})


RESHAPE_LIKE = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")


def same_type_reshape(s: Site) -> Var | None:
    """A reshape-like op (or Expand) whose result type is its input's: the row-major order
    is kept, so equal shapes mean equal tensors."""
    x = s.arg(0)
    return x if x is not None and known_shape(x) and x.type == s.out.type else None


def reshape_pair(s: Site) -> Var | None:
    inner = s.producer(s.arg(0), "Reshape")
    shape = s.ints(s.arg(1))
    if inner is None or inner.args[0] is None or shape is None:
        return None
    allowzero = s.attr("allowzero", 0)
    mid = s.arg(0).type.shape  # type: ignore[union-attr]
    if not allowzero and 0 in shape:
        for i, d in enumerate(shape):
            if d == 0:  # copies dim i of the inner result
                if mid is None or i >= len(mid) or not isinstance(mid[i], int) or mid[i] == 0:
                    return None
                shape[i] = mid[i]
        arg = s.const(np.array(shape, dtype=np.int64))
    else:
        arg = s.arg(1)
    return s.emit("Reshape", [inner.args[0], arg], {"allowzero": allowzero})


def expand_noop(s: Site) -> Var | None:
    x, shape = s.arg(0), s.ints(s.arg(1))
    return x if x is not None and shape is not None and fits(shape, x.type.shape) else None


def concat_single(s: Site) -> Var | None:
    return s.arg(0) if len(s.call.args) == 1 else None


SLICE_END_MAX = 2**31 - 1  # an end at least this large keeps a symbolic dim whole, as the
# type relation of Slice assumes


def slice_all(s: Site) -> Var | None:
    x = s.arg(0)
    starts, ends = s.ints(s.arg(1)), s.ints(s.arg(2))
    if x is None or x.type.shape is None or starts is None or ends is None:
        return None
    rank = len(x.type.shape)
    axes = list(range(len(starts))) if s.arg(3) is None else s.ints(s.arg(3))
    steps = [1] * len(starts) if s.arg(4) is None else s.ints(s.arg(4))
    if axes is None or steps is None or not len(starts) == len(ends) == len(axes) == len(steps):
        return None
    for a, b, e, st in zip(axes, starts, ends, steps, strict=True):
        if not -rank <= a < rank or st != 1:
            return None
        d = x.type.shape[a % rank]
        if isinstance(d, int):
            first, _, n = slice_range(d, b, e, 1)
            if first != 0 or n != d:
                return None
        elif b != 0 or e < SLICE_END_MAX:
            return None
    return x


def squeeze_unsqueeze(s: Site) -> Var | None:
    """Squeeze(Unsqueeze(x, a), a) -> x."""
    inner = s.producer(s.arg(0), "Unsqueeze")
    if inner is None or inner.args[0] is None or s.arg(0).type.rank is None:  # type: ignore[union-attr]
        return None
    rank = s.arg(0).type.rank  # type: ignore[union-attr]
    added, removed = s.ints(inner.args[1]), s.ints(s.arg(1))
    if added is None or removed is None:
        return None
    a, r = norm_axes(added, rank), norm_axes(removed, rank)
    return inner.args[0] if a is not None and a == r else None


def unsqueeze_squeeze(s: Site) -> Var | None:
    """Unsqueeze(Squeeze(x, a), a) -> x (the squeezed dims were 1)."""
    inner = s.producer(s.arg(0), "Squeeze")
    if inner is None or inner.args[0] is None or len(inner.args) < 2:
        return None
    x = inner.args[0]
    removed, added = s.ints(inner.args[1]), s.ints(s.arg(1))
    if x.type.rank is None or removed is None or added is None:
        return None
    r, a = norm_axes(removed, x.type.rank), norm_axes(added, x.type.rank)
    return x if r is not None and r == a else None


# ---------------------------------------------------------------------------------------
# the table

RULES: dict[str, tuple[Rule, ...]] = {
    **{op: (neutral_operand,) for op in NEUTRAL_OPERANDS},
    **{op: (involution,) for op in INVOLUTIONS},
    **{op: (idempotent,) for op in IDEMPOTENT},
    "Cast": (cast_same, cast_chain),
    "CastLike": (cast_same,),
    "Transpose": (transpose_identity, transpose_pair),
    "Reshape": (same_type_reshape, reshape_pair),
    "Flatten": (same_type_reshape,),
    "Expand": (same_type_reshape, expand_noop),
    "Concat": (concat_single,),
    "Slice": (slice_all,),
    "Squeeze": (same_type_reshape, squeeze_unsqueeze),
    "Unsqueeze": (same_type_reshape, unsqueeze_squeeze),
}


@graph_pass("Exact algebraic simplifications (x*1, Neg(Neg x), Transpose pairs, ...) to a "
            "fixed point.")
def simplify(module: Module) -> Module:
    return rewrite_module(module, RULES, "simplify")
