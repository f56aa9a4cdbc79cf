"""Elementwise ops: unary math, binary arithmetic, comparisons, logic and bitwise ops, the
variadic Max/Min/Sum/Mean, Where, Clip, Identity and Dropout.

The factories `unary`, `binary` and `variadic` build most of them (activation.py reuses
them). Float16, bfloat16 and float8 math is done in float32 and rounded once to the input
type; float32 math stays in float32 (Pow alone runs in float64 and rounds once). Integer
arithmetic wraps (two's complement); integer Div truncates toward zero and integer Mod
(fmod=0) takes the sign of the divisor. Integer division by zero is undefined in ONNX; the
reference returns 0.

Each op also has a compute definition (its lowering to loops) built by the one factory
`pointwise` from a loop-IR twin of its numpy body: the same formula, at the same (work)
precision, rounded once to the output dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr, is_float
from compiler.lower import te, topi
from compiler.ops.base import (
    Attr,
    EvalCtx,
    InferCtx,
    Kind,
    OpDef,
    broadcast_shapes,
    check_dtype,
    numel,
    register,
)

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

D = DType
FLOATS = (D.float16, D.bfloat16, D.float32, D.float64)
FLOAT8 = (D.float8e4m3fn, D.float8e4m3fnuz, D.float8e5m2, D.float8e5m2fnuz)
SIGNED = (D.int8, D.int16, D.int32, D.int64)
UNSIGNED = (D.uint8, D.uint16, D.uint32, D.uint64)
INTS = SIGNED + UNSIGNED
NUMERIC = FLOATS + INTS
ANY = tuple(d for d in DType)

Fn = Callable[..., Any]  # (array..., attrs) -> array
Lower = Callable[..., Expr]  # (input exprs at work precision, None where absent..., attrs) -> Expr
Compute = Callable[["LowerCtx", list["te.Tensor | None"]], list[te.Tensor]]


def work(x: np.ndarray) -> np.ndarray:
    """x in the dtype its float math runs in: float32 for every float narrower than 32 bits."""
    if x.dtype.kind == "f" and x.dtype.itemsize >= 4:
        return x
    dt = DType.from_np(x.dtype) if x.dtype != object else DType.string
    return x.astype(np.float32) if dt.is_float else x


def floatfn(f: Callable[..., np.ndarray]) -> Fn:
    """Lift numpy math over float arrays to an op body: compute in `work` precision."""

    def body(*args: Any) -> np.ndarray:
        *xs, _attrs = args
        return f(*(work(x) for x in xs))

    return body


def _out(y: Any, dtype: np.dtype) -> np.ndarray:
    """A fresh array of the declared dtype (never a view of an input)."""
    return np.asarray(y).astype(dtype)


def _need(ctx: InferCtx, i: int) -> TensorType:
    t = ctx.input(i)
    if t is None:
        raise ctx.fail(f"input {i} is required")
    return t


# ---------------------------------------------------------------------------------------
# Lowering


def work_expr(e: Expr) -> Expr:
    """The loop-IR twin of `work`: float16 and bfloat16 values widened to float32."""
    return B.cast(D.float32, e) if e.dtype in (D.float16, D.bfloat16) else e


def _load(t: te.Tensor, shape: tuple[int, ...], axes: Sequence[Expr]) -> Expr:
    if t.ndim > len(shape):  # a one-element bound of higher rank than x (Clip)
        return t[(te.idx(0),) * t.ndim]
    return topi.load_bcast(t, shape, axes)


def pointwise(fn: Lower) -> Compute:
    """The compute of an elementwise op: out = fn(*inputs, attrs) over the numpy broadcast
    of the present inputs, each read at work precision (None where absent), the result cast
    once to the output dtype."""

    def compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
        out = ctx.out_types[0]

        def body(*axes: Expr) -> Expr:
            xs = [None if t is None else work_expr(_load(t, out.shape, axes)) for t in ins]
            return fn(*xs, ctx.attrs)

        return [te.compute(ctx.op, out.shape, body, out.dtype)]

    return compute


def fconst(like: Expr, value: float) -> Expr:
    """`value` as an immediate of `like`'s dtype (rounded to it)."""
    return topi.scalar(value, like.dtype)


def unary(name: str, fn: Fn, dtypes: Sequence[DType], *, out: DType | None = None,
          attrs: dict[str, Attr] | None = None, check: Callable[[InferCtx], None] | None = None,
          kind: Kind = Kind.ELEMWISE, lower: Lower | None = None, doc: str = "") -> OpDef:
    """y = fn(x, attrs), same shape; dtype `out` or the input's. `lower` is fn's loop-IR
    twin (over an expression at work precision)."""

    def infer(ctx: InferCtx) -> list[TensorType]:
        t = _need(ctx, 0)
        check_dtype(ctx, t, dtypes)
        if check is not None:
            check(ctx)
        return [TensorType(t.shape, out or t.dtype)]

    def ref(ctx: EvalCtx, ins: list[np.ndarray | None]) -> list[np.ndarray]:
        x = ins[0]
        return [_out(fn(x, ctx.attrs), out.np if out else x.dtype)]

    return register(OpDef(name, infer, ref, attrs=dict(attrs or {}), kind=kind, doc=doc,
                          compute=pointwise(lower) if lower else None))


def binary(name: str, fn: Fn, dtypes: Sequence[DType], *, out: DType | None = None,
           rhs: Sequence[DType] | None = None, attrs: dict[str, Attr] | None = None,
           check: Callable[[InferCtx], None] | None = None, kind: Kind = Kind.BROADCAST,
           lower: Lower | None = None, doc: str = "") -> OpDef:
    """c = fn(a, b, attrs) with numpy broadcasting. Both inputs share one dtype unless `rhs`
    gives b its own allowed set. The result has dtype `out` or a's."""

    def infer(ctx: InferCtx) -> list[TensorType]:
        a, b = _need(ctx, 0), _need(ctx, 1)
        check_dtype(ctx, a, dtypes, "input A")
        if rhs is not None:
            check_dtype(ctx, b, rhs, "input B")
        elif a.dtype != b.dtype:
            raise ctx.fail(f"input dtypes differ: {a.dtype} and {b.dtype}")
        if check is not None:
            check(ctx)
        return [TensorType(broadcast_shapes(ctx, a.shape, b.shape), out or a.dtype)]

    def ref(ctx: EvalCtx, ins: list[np.ndarray | None]) -> list[np.ndarray]:
        a, b = ins[0], ins[1]
        y = fn(a, b, ctx.attrs)
        return [_out(np.broadcast_to(y, np.broadcast_shapes(a.shape, b.shape)),
                     out.np if out else a.dtype)]

    return register(OpDef(name, infer, ref, attrs=dict(attrs or {}), kind=kind, inputs=(2, 2),
                          doc=doc, compute=pointwise(lower) if lower else None))


def variadic(name: str, fold: Callable[[np.ndarray, np.ndarray], np.ndarray],
             dtypes: Sequence[DType], *, mean: bool = False,
             lower: Callable[[Expr, Expr], Expr] | None = None, doc: str = "") -> OpDef:
    """Fold N >= 1 inputs of one dtype, broadcasting all of them together. `lower` is
    fold's loop-IR twin."""

    def infer(ctx: InferCtx) -> list[TensorType]:
        ts = list(ctx.inputs)
        if not ts or any(t is None for t in ts):
            raise ctx.fail("every input is required")
        check_dtype(ctx, ts[0], dtypes)
        for t in ts[1:]:
            if t.dtype != ts[0].dtype:
                raise ctx.fail(f"input dtypes differ: {ts[0].dtype} and {t.dtype}")
        return [TensorType(broadcast_shapes(ctx, *(t.shape for t in ts)), ts[0].dtype)]

    def ref(ctx: EvalCtx, ins: list[np.ndarray | None]) -> list[np.ndarray]:
        xs = [work(x) for x in ins]
        acc = np.broadcast_to(xs[0], np.broadcast_shapes(*(x.shape for x in xs)))
        for x in xs[1:]:
            acc = fold(acc, x)
        if mean:
            acc = acc / np.asarray(len(xs), dtype=acc.dtype)
        return [_out(acc, ins[0].dtype)]

    def lower_all(*args: Any) -> Expr:
        *xs, _attrs = args
        acc = xs[0]
        for x in xs[1:]:
            acc = lower(acc, x)
        return acc / fconst(acc, len(xs)) if mean else acc

    return register(OpDef(name, infer, ref, kind=Kind.BROADCAST, inputs=(1, None), doc=doc,
                          compute=pointwise(lower_all) if lower else None))


# ---------------------------------------------------------------------------------------
# Unary math


def erf(x: np.ndarray) -> np.ndarray:
    """erf in float64 via math.erf (numpy has none), rounded to x's dtype."""
    y = np.frompyfunc(math.erf, 1, 1)(x.astype(np.float64)) if x.size else x
    return np.asarray(y, dtype=np.float64).astype(x.dtype)

def intrinsic(op: str) -> Lower:
    """Lowering of a unary op that is one loop-IR intrinsic."""
    return lambda x, a: B.call(op, x)


for _name, _f, _op in (
    ("Acos", np.arccos, "acos"), ("Acosh", np.arccosh, "acosh"), ("Asin", np.arcsin, "asin"),
    ("Asinh", np.arcsinh, "asinh"), ("Atan", np.arctan, "atan"),
    ("Atanh", np.arctanh, "atanh"), ("Cos", np.cos, "cos"), ("Cosh", np.cosh, "cosh"),
    ("Sin", np.sin, "sin"), ("Sinh", np.sinh, "sinh"), ("Tan", np.tan, "tan"),
    ("Tanh", np.tanh, "tanh"), ("Exp", np.exp, "exp"), ("Log", np.log, "log"),
    ("Sqrt", np.sqrt, "sqrt"), ("Floor", np.floor, "floor"), ("Ceil", np.ceil, "ceil"),
    ("Round", np.round, "round"), ("Erf", erf, "erf"),
):
    unary(_name, floatfn(_f), FLOATS, lower=intrinsic(_op))

unary("Reciprocal", floatfn(np.reciprocal), FLOATS, lower=lambda x, a: 1.0 / x)


def _abs_lower(x: Expr, a: dict[str, Any]) -> Expr:
    return x if x.dtype in UNSIGNED else B.call("abs", x)


def _sign_lower(x: Expr, a: dict[str, Any]) -> Expr:
    """1, -1, or x itself for zeros and NaN (np.sign keeps NaN)."""
    if x.dtype in UNSIGNED:
        return B.cast(x.dtype, x > 0)
    return topi.let(x, lambda v: B.select(v > 0, 1, B.select(v < 0, -1, v)))


unary("Abs", lambda x, a: np.abs(x), NUMERIC, lower=_abs_lower)
unary("Neg", lambda x, a: np.negative(x), FLOATS + SIGNED, lower=lambda x, a: -x)
unary("Sign", lambda x, a: np.sign(x), NUMERIC, lower=_sign_lower)
unary("Not", lambda x, a: np.logical_not(x), (D.bool,), lower=lambda x, a: B.not_(x))
unary("BitwiseNot", lambda x, a: np.invert(x), INTS, lower=lambda x, a: ~x)
unary("IsNaN", lambda x, a: np.isnan(work(x)), FLOATS + FLOAT8, out=D.bool,
      lower=intrinsic("isnan"))


def _isinf(x: np.ndarray, a: dict[str, Any]) -> np.ndarray:
    x = work(x)
    return np.isinf(x) & (((x > 0) & bool(a["detect_positive"]))
                          | ((x < 0) & bool(a["detect_negative"])))


def _isinf_lower(x: Expr, a: dict[str, Any]) -> Expr:
    pos, neg = bool(a["detect_positive"]), bool(a["detect_negative"])
    inf = fconst(x, math.inf)
    if pos and neg:
        return B.call("isinf", x)
    if pos:
        return B.eq(x, inf)
    if neg:
        return B.eq(x, fconst(x, -math.inf))
    return topi.scalar(False, D.bool)


unary("IsInf", _isinf, FLOATS + FLOAT8, out=D.bool, lower=_isinf_lower,
      attrs={"detect_negative": Attr("int", 1), "detect_positive": Attr("int", 1)})


# ---------------------------------------------------------------------------------------
# Binary arithmetic


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C-style division: truncate toward zero; x / 0 gives 0 (undefined in ONNX)."""
    zero = b == 0
    bs = np.where(zero, np.ones_like(b), b)
    q = np.floor_divide(a, bs)
    r = a - q * bs
    fix = (r != 0) & ((a < 0) != (bs < 0))
    q = q + fix.astype(q.dtype)
    return np.where(zero, np.zeros_like(q), q)


def _div(a: np.ndarray, b: np.ndarray, attrs: dict[str, Any]) -> np.ndarray:
    if a.dtype.kind in "iu":
        return _int_div(a, b)
    return work(a) / work(b)


def _mod(a: np.ndarray, b: np.ndarray, attrs: dict[str, Any]) -> np.ndarray:
    a, b = work(a), work(b)
    if a.dtype.kind in "iu":
        a, b = np.broadcast_arrays(a, b)
        bs = np.where(b == 0, np.ones_like(b), b)
        r = np.fmod(a, bs) if attrs["fmod"] else np.mod(a, bs)
        return np.where(b == 0, np.zeros_like(r), r)
    return np.fmod(a, b) if attrs["fmod"] else np.mod(a, b)


def _check_fmod(ctx: InferCtx) -> None:
    if ctx.attrs["fmod"] not in (0, 1):
        raise ctx.fail(f"fmod must be 0 or 1, got {ctx.attrs['fmod']}")


def _pow(x: np.ndarray, y: np.ndarray, attrs: dict[str, Any]) -> np.ndarray:
    """x ** y in x's dtype. Float math runs in float64 and rounds once; an integer base
    with an integer exponent wraps like repeated multiplication."""
    if x.dtype.kind not in "iu" or y.dtype.kind not in "iu":
        r = np.power(x.astype(np.float64), y.astype(np.float64))
        if x.dtype.kind in "iu":
            r = np.trunc(np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0))
            return r.astype(np.int64)
        return r
    xi, e = np.broadcast_arrays(x.astype(np.int64), y.astype(np.int64))
    neg = e < 0
    r = np.power(xi, np.where(neg, 0, e))
    # x ** -n truncates to 0 except for x = 1 and x = -1 (x = 0 is undefined: 0 here).
    inv = np.where(xi == 1, 1, np.where(xi == -1, np.where(e % 2 == 0, 1, -1), 0))
    return np.where(neg, inv, r)


def _arith(op: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Fn:
    return lambda a, b, attrs: op(work(a), work(b))


def _div_lower(a: Expr, b: Expr, attrs: dict[str, Any]) -> Expr:
    """Integer division truncates; x / 0 gives 0 and MIN / -1 wraps to MIN, as in the
    reference, and the divisor of the truncdiv actually evaluated is never 0 or -1."""
    if is_float(a.dtype):
        return a / b

    def body(b: Expr) -> Expr:
        zero = B.eq(b, 0)
        if a.dtype in UNSIGNED:
            return B.select(zero, 0, B.truncdiv(a, B.select(zero, 1, b)))
        m1 = B.eq(b, -1)
        q = B.truncdiv(a, B.select(B.or_(zero, m1), 1, b))
        return B.select(zero, 0, B.select(m1, -a, q))

    return topi.let(b, body)


def _mod_lower(a: Expr, b: Expr, attrs: dict[str, Any]) -> Expr:
    """Integers: the sign of the divisor (fmod=0) or of the dividend (fmod=1); x % 0 and
    x % -1 are 0 (computed as x % 1, so no division is undefined). Floats: C fmod, or
    np.mod (fmod, moved to the divisor's sign; a zero takes the divisor's sign)."""
    if not is_float(a.dtype):
        div = B.truncmod if attrs["fmod"] else B.floormod
        if a.dtype in UNSIGNED:
            return topi.let(b, lambda b: div(a, B.select(B.eq(b, 0), 1, b)))
        return topi.let(b, lambda b: div(a, B.select(B.or_(B.eq(b, 0), B.eq(b, -1)), 1, b)))
    if attrs["fmod"]:
        return B.call("fmod", a, b)

    def body(a: Expr, b: Expr) -> Expr:
        return topi.let(B.call("fmod", a, b), lambda r: B.select(
            B.eq(r, 0.0), B.call("copysign", fconst(r, 0.0), b),
            B.select(B.ne(b < 0.0, r < 0.0), r + b, r)))

    return topi.let(a, lambda a: topi.let(b, lambda b: body(a, b)))


INT64_LO, INT64_HI = -(2.0**63), 2.0**63 - 1024  # the int64 range, as float64 bounds


def float_to_int64(x: Expr) -> Expr:
    """A float64 value as int64 by the reference's rules: truncated toward zero, NaN gives 0,
    and values beyond int64 (infinities included) clamp to its range."""
    return B.cast(D.int64, topi.let(x, lambda x: B.max_(B.min_(
        B.select(B.call("isnan", x), 0.0, x), INT64_HI), INT64_LO)))


def _pow_lower(x: Expr, y: Expr, attrs: dict[str, Any]) -> Expr:
    """Float math runs in float64 (rounded once by the caller); an integer base with a float
    exponent truncates (non-finite results give 0); integer ** integer squares and
    multiplies, wrapping, over the bits of the exponent."""
    if is_float(x.dtype) or is_float(y.dtype):
        r = B.call("pow", B.cast(D.float64, x), B.cast(D.float64, y))
        if is_float(x.dtype):
            return r
        return topi.let(B.call("trunc", r), lambda t: float_to_int64(
            B.select(B.call("isfinite", t), t, 0.0)))
    e64 = B.cast(D.int64, y)  # wraps, as the reference's astype(int64)
    steps = min(y.dtype.bits - (1 if y.dtype.is_signed else 0), 63)  # e < 2**steps when e >= 0

    def powers(x: Expr, e: Expr) -> Expr:
        def step(k: int, r: Expr, b: Expr) -> Expr:
            if k == steps:
                return r
            bit = B.ne((e >> k) & 1, 0)
            return topi.let(B.select(bit, r * b, r), lambda r2, k=k: topi.let(
                b * b, lambda b2: step(k + 1, r2, b2), "b"), "r")

        # x ** -n truncates to 0 except for x = 1 and x = -1.
        one, zero, m1 = (topi.scalar(v, x.dtype) for v in (1, 0, -1))
        odd = B.ne(e & 1, 0)
        inv = B.select(B.eq(x, 1), one, B.select(B.eq(x, -1), B.select(odd, m1, one), zero))
        return B.select(e < 0, inv, step(0, one, x))

    return topi.let(x, lambda x: topi.let(e64, lambda e: powers(x, e), "e"), "x")


binary("Add", _arith(np.add), NUMERIC, lower=lambda a, b, attrs: a + b)
binary("Sub", _arith(np.subtract), NUMERIC, lower=lambda a, b, attrs: a - b)
binary("Mul", _arith(np.multiply), NUMERIC, lower=lambda a, b, attrs: a * b)
binary("Div", _div, NUMERIC, lower=_div_lower)
binary("Pow", _pow, FLOATS + (D.int32, D.int64), rhs=NUMERIC, lower=_pow_lower)
binary("Mod", _mod, NUMERIC, attrs={"fmod": Attr("int", 0)}, check=_check_fmod,
       lower=_mod_lower)

# ---------------------------------------------------------------------------------------
# Comparisons, logic, bitwise


def _cmp(op: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Fn:
    return lambda a, b, attrs: np.asarray(op(work(a), work(b)), dtype=bool)


binary("Equal", _cmp(np.equal), NUMERIC + (D.bool, D.string), out=D.bool,
       lower=lambda a, b, attrs: B.eq(a, b))
binary("Greater", _cmp(np.greater), NUMERIC, out=D.bool, lower=lambda a, b, attrs: a > b)
binary("GreaterOrEqual", _cmp(np.greater_equal), NUMERIC, out=D.bool,
       lower=lambda a, b, attrs: a >= b)
binary("Less", _cmp(np.less), NUMERIC, out=D.bool, lower=lambda a, b, attrs: a < b)
binary("LessOrEqual", _cmp(np.less_equal), NUMERIC, out=D.bool,
       lower=lambda a, b, attrs: a <= b)
binary("And", lambda a, b, attrs: np.logical_and(a, b), (D.bool,),
       lower=lambda a, b, attrs: B.and_(a, b))
binary("Or", lambda a, b, attrs: np.logical_or(a, b), (D.bool,),
       lower=lambda a, b, attrs: B.or_(a, b))
binary("Xor", lambda a, b, attrs: np.logical_xor(a, b), (D.bool,),
       lower=lambda a, b, attrs: B.ne(a, b))
binary("BitwiseAnd", lambda a, b, attrs: np.bitwise_and(a, b), INTS,
       lower=lambda a, b, attrs: a & b)
binary("BitwiseOr", lambda a, b, attrs: np.bitwise_or(a, b), INTS,
       lower=lambda a, b, attrs: a | b)
binary("BitwiseXor", lambda a, b, attrs: np.bitwise_xor(a, b), INTS,
       lower=lambda a, b, attrs: a ^ b)


def _bitshift(x: np.ndarray, y: np.ndarray, attrs: dict[str, Any]) -> np.ndarray:
    """Shift amounts outside [0, bits) give what sign extension alone gives: -1 for a right
    shift of a negative x, else 0. Right shifts of signed x are arithmetic."""
    x, y = np.broadcast_arrays(x, y)
    bits = x.dtype.itemsize * 8
    ok = (y >= 0) & (y < bits)
    s = np.where(ok, y, 0).astype(x.dtype)
    if attrs["direction"] == "LEFT":
        return np.where(ok, np.left_shift(x, s), np.zeros_like(x))
    fill = np.where(x < 0, -1, 0).astype(x.dtype)
    return np.where(ok, np.right_shift(x, s), fill)


def _bitshift_lower(x: Expr, y: Expr, attrs: dict[str, Any]) -> Expr:
    """The reference's rule, with the amount actually shifted by kept in [0, bits)."""
    bits = x.dtype.bits
    signed = x.dtype in SIGNED

    def body(x: Expr, y: Expr) -> Expr:
        ok = B.and_(y >= 0, y < bits) if signed else y < bits
        s = B.select(ok, y, 0)
        zero = topi.scalar(0, x.dtype)
        if attrs["direction"] == "LEFT":
            return B.select(ok, x << s, zero)
        fill = B.select(x < 0, topi.scalar(-1, x.dtype), zero) if signed else zero
        return B.select(ok, x >> s, fill)

    return topi.let(x, lambda x: topi.let(y, lambda y: body(x, y)))


def _check_direction(ctx: InferCtx) -> None:
    if ctx.attrs["direction"] not in ("LEFT", "RIGHT"):
        raise ctx.fail(f"direction must be LEFT or RIGHT, got {ctx.attrs['direction']!r}")


binary("BitShift", _bitshift, INTS, attrs={"direction": Attr("string")},
       check=_check_direction, lower=_bitshift_lower)

# ---------------------------------------------------------------------------------------
# Variadic

variadic("Max", np.maximum, NUMERIC, lower=B.max_)
variadic("Min", np.minimum, NUMERIC, lower=B.min_)
variadic("Sum", np.add, FLOATS, lower=lambda a, b: a + b)
variadic("Mean", np.add, FLOATS, mean=True, lower=lambda a, b: a + b)

# ---------------------------------------------------------------------------------------
# Where, Clip, Identity


def _where_infer(ctx: InferCtx) -> list[TensorType]:
    c, x, y = _need(ctx, 0), _need(ctx, 1), _need(ctx, 2)
    check_dtype(ctx, c, (D.bool,), "condition")
    if x.dtype != y.dtype:
        raise ctx.fail(f"X and Y dtypes differ: {x.dtype} and {y.dtype}")
    return [TensorType(broadcast_shapes(ctx, c.shape, x.shape, y.shape), x.dtype)]


def _where_ref(ctx: EvalCtx, ins: list[np.ndarray | None]) -> list[np.ndarray]:
    c, x, y = ins
    return [np.asarray(np.where(c, x, y), dtype=x.dtype)]


register(OpDef("Where", _where_infer, _where_ref, kind=Kind.BROADCAST, inputs=(3, 3),
               compute=pointwise(lambda c, x, y, attrs: B.select(c, x, y))))


def _clip_infer(ctx: InferCtx) -> list[TensorType]:
    x = _need(ctx, 0)
    check_dtype(ctx, x, NUMERIC)
    for i, what in ((1, "min"), (2, "max")):
        t = ctx.input(i)
        if t is None:
            continue
        if t.dtype != x.dtype:
            raise ctx.fail(f"{what} has dtype {t.dtype}, input has {x.dtype}")
        n = numel(t.shape)
        if (t.shape is not None and len(t.shape) > 1) or (n is not None and n != 1):
            raise ctx.fail(f"{what} must be a scalar, got shape {list(t.shape or [])}")
    return [TensorType(x.shape, x.dtype)]


def _clip_ref(ctx: EvalCtx, ins: list[np.ndarray | None]) -> list[np.ndarray]:
    x = ins[0]
    lo = ins[1] if len(ins) > 1 else None
    hi = ins[2] if len(ins) > 2 else None
    y = work(x)
    # max(min, x) then min(max, x): with min > max every element becomes max.
    if lo is not None:
        y = np.maximum(y, work(lo).reshape(()))
    if hi is not None:
        y = np.minimum(y, work(hi).reshape(()))
    return [_out(y, x.dtype)]


def _input_dtype(ictx: Any, i: int) -> DType:
    """Dtype of input i of the node being imported."""
    getter = getattr(ictx, "input_type", None)
    if getter is not None:
        return getter(i).dtype
    return ictx._scope.lookup(ictx.inputs[i], ictx.where).type.dtype


def _clip_upgrade(ictx: Any) -> None:
    """Clip before opset 11 took min/max as float attributes."""
    if ictx.opset >= 11:
        return
    lo, hi = ictx.attrs.pop("min", None), ictx.attrs.pop("max", None)
    dt = _input_dtype(ictx, 0).np
    ictx.inputs[1:] = [
        "" if lo is None else ictx.add_const(np.asarray(lo).astype(dt), dt),
        "" if hi is None else ictx.add_const(np.asarray(hi).astype(dt), dt),
    ]


def _clip_lower(x: Expr, lo: Expr | None = None, hi: Expr | None = None,
                attrs: dict[str, Any] | None = None) -> Expr:
    if lo is not None:
        x = B.max_(x, lo)
    if hi is not None:
        x = B.min_(x, hi)
    return x


def _clip_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    ins = (list(ins) + [None, None])[:3]
    return pointwise(lambda x, lo, hi, attrs: _clip_lower(x, lo, hi))(ctx, ins)


register(OpDef("Clip", _clip_infer, _clip_ref, kind=Kind.BROADCAST, inputs=(1, 3),
               upgrade=_clip_upgrade, compute=_clip_compute))


def _identity_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    return [ins[0]]  # lowering copies an input returned as an output


_identity = unary("Identity", lambda x, a: x, ANY)
_identity.compute = _identity_compute

# ---------------------------------------------------------------------------------------
# Dropout


def _dropout_infer(ctx: InferCtx) -> list[TensorType]:
    x = _need(ctx, 0)
    check_dtype(ctx, x, FLOATS + FLOAT8)
    r, t = ctx.input(1), ctx.input(2)
    if r is not None:
        check_dtype(ctx, r, FLOATS + FLOAT8, "ratio")
        if r.shape is not None and numel(r.shape) not in (None, 1):
            raise ctx.fail(f"ratio must be a scalar, got shape {list(r.shape)}")
        rv = ctx.const(1)
        if rv is not None and rv.size == 1 and not 0 <= float(rv.reshape(())) < 1:
            raise ctx.fail(f"ratio must be in [0, 1), got {float(rv.reshape(()))}")
    if t is not None:
        check_dtype(ctx, t, (D.bool,), "training_mode")
    outs = [TensorType(x.shape, x.dtype)]
    if ctx.num_outputs > 1:
        outs.append(TensorType(x.shape, D.bool))
    return outs


def _dropout_ref(ctx: EvalCtx, ins: list[np.ndarray | None]) -> list[np.ndarray]:
    x = ins[0]
    r = ins[1] if len(ins) > 1 else None
    t = ins[2] if len(ins) > 2 else None
    ratio = 0.5 if r is None else float(work(r).reshape(()))
    if not 0 <= ratio < 1:  # as the type relation checks a constant ratio
        from compiler.ops.shape import rt_fail

        raise rt_fail("Dropout", f"ratio must be in [0, 1), got {ratio}")
    training = t is not None and bool(t.reshape(()))
    if not training or ratio == 0:
        y, mask = x.copy(), np.ones(x.shape, dtype=bool)
    else:
        seed = ctx.attrs.get("seed")
        rng = np.random.RandomState(seed) if seed is not None else ctx.rng
        u = rng.uniform(0.0, 1.0, x.shape) if rng is not None else np.random.uniform(
            0.0, 1.0, x.shape)
        mask = u >= ratio
        xw = work(x)
        scale = np.asarray(1.0 / (1.0 - ratio) if ratio < 1 else 0.0, dtype=xw.dtype)
        y = _out(mask * xw * scale, x.dtype)
    return [y, mask][: max(ctx.num_outputs, 1)]


def _dropout_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """Inference (or ratio 0): the identity and a mask of ones. Training mode draws random
    numbers, which compiled code does not do."""
    r, t = ctx.value(1), ctx.value(2)
    ratio = 0.5 if r is None else float(np.asarray(r, np.float64).reshape(()))
    if t is not None and bool(t.reshape(())) and ratio != 0:
        raise ctx.fail("training mode with a nonzero ratio draws random numbers; only "
                       "inference (or ratio 0) is compiled")
    x = ins[0]
    outs = [x]
    if len(ctx.out_types) > 1:
        outs.append(te.compute("mask", x.shape, lambda *i: topi.scalar(True, D.bool)))
    return outs


def _dropout_upgrade(ictx: Any) -> None:
    """Before opset 12 ratio was an attribute and Dropout ran in inference mode."""
    if ictx.opset >= 12:
        return
    ratio = ictx.attrs.pop("ratio", None)
    ictx.attrs.pop("is_test", None)
    ictx.inputs[1:] = [] if ratio is None else [ictx.add_const(ratio, np.float32)]


register(OpDef("Dropout", _dropout_infer, _dropout_ref, attrs={"seed": Attr("int", None)},
               kind=Kind.OPAQUE, inputs=(1, 3), outputs=(1, 2), upgrade=_dropout_upgrade,
               compute=_dropout_compute, shape_inputs=(1, 2),
               doc="Training mode draws its mask from RandomState(seed) when `seed` is set."))
