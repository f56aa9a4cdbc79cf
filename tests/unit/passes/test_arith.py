"""Interval analysis, constant evaluation, linear forms and simplifier rules."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.dtypes import DType
from compiler.loop import FloatImm, IntImm, Var, parse, parse_expr, print_expr, print_func
from compiler.loop.ir import (
    STORAGE_DTYPES,
    BinKind,
    BinOp,
    Buffer,
    CmpKind,
    CmpOp,
    Select,
    UnKind,
    UnOp,
    is_storage,
)
from compiler.loop.traverse import substitute, walk
from compiler.passes import PassManager, named_pipeline
from compiler.passes.arith import (
    Bounds,
    Interval,
    build_linear,
    eval_const,
    linear,
)
from compiler.passes.simplifier import simplify_node

I = Var("i")
J = Var("j")
N = Var("n")
A = Buffer("A", DType.float32, (IntImm(16),))


def expr(text: str):  # type: ignore[no-untyped-def]
    return parse_expr(text, [I, J, N, A])


def bounds_with(**ranges: tuple[int, int]) -> Bounds:
    b = Bounds()
    for name, (lo, hi) in ranges.items():
        b.bind(Var(name), Interval(lo, hi))
    return b


@pytest.mark.parametrize("text, lo, hi", [
    ("i * 4 + j", 0, 15),
    ("(i * 4 + j) // 4", 0, 3),
    ("(i * 4 + j) % 3", 0, 2),
    ("i - j", -3, 3),
    ("min(i, 2) - max(j, 1)", -3, 1),
    ("select(i < 2, i, 10)", 0, 10),
    ("truncmod(i - 5, 3)", -2, 0),
    ("(i & 6) | 1", 0, 3),
    ("i << 2", 0, 12),
    ("-i", -3, 0),
])
def test_intervals(text: str, lo: int, hi: int) -> None:
    b = bounds_with(i=(0, 3), j=(0, 3))
    assert b.of(expr(text)) == Interval(lo, hi)


def test_overflow_gives_the_whole_dtype() -> None:
    b = bounds_with(n=(0, 2**31 - 1))
    e = expr("n * 2")
    assert b.of(e) == Interval(-2**31, 2**31 - 1)
    assert b.may_wrap(e) and not b.no_wrap(e)
    assert b.no_wrap(expr("n // 2 + 1"))


def test_scan_collects_loop_and_let_ranges() -> None:
    f = parse("""\
func @f(A: float32[16], n: int32) {
  for i in serial(2, 4) {
    let k = i * 2 {
      A[k] = 1.0
    }
  }
  for i in serial(0, 9) {
    A[i] = 2.0
  }
}
""")
    b = Bounds(f)
    assert b.ranges[Var("i")] == Interval(0, 8)  # hull of both loops named i
    assert b.ranges[Var("k")] == Interval(4, 10)
    assert Var("n") not in b.ranges


_OPS = (BinKind.add, BinKind.sub, BinKind.mul, BinKind.min, BinKind.max, BinKind.bitand,
        BinKind.bitor, BinKind.bitxor)


def _random_int_expr(rng: random.Random, x: Var, depth: int):  # type: ignore[no-untyped-def]
    dt = x.dtype
    if depth == 0 or rng.random() < 0.2:
        return x if rng.random() < 0.6 else IntImm(rng.randint(-9, 9) % 128 if dt.is_signed
                                                   else rng.randint(0, 9), dt)
    a = _random_int_expr(rng, x, depth - 1)
    kind = rng.random()
    if kind < 0.5:
        return BinOp(rng.choice(_OPS), a, _random_int_expr(rng, x, depth - 1))
    if kind < 0.7:
        op = rng.choice((BinKind.floordiv, BinKind.floormod, BinKind.truncdiv, BinKind.truncmod))
        return BinOp(op, a, IntImm(rng.choice((1, 2, 3, 7)), dt))
    if kind < 0.8:
        return BinOp(rng.choice((BinKind.shl, BinKind.shr)), a, IntImm(rng.randint(0, 3), dt))
    if kind < 0.9:
        return Select(CmpOp(CmpKind.lt, x, IntImm(rng.randint(0, 9), dt)), a,
                      _random_int_expr(rng, x, depth - 1))
    return UnOp(UnKind.neg, a)


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(-40, 40), st.integers(0, 20),
       st.sampled_from([DType.int8, DType.int32, DType.uint8]))
def test_intervals_are_sound(rng: random.Random, lo: int, width: int, dtype: DType) -> None:
    """Every value a random expression takes for x in [lo, lo + width] lies in its interval."""
    x = Var("x", dtype)
    lo = max(lo, 0) if dtype is DType.uint8 else lo
    e = _random_int_expr(rng, x, 4)
    b = Bounds()
    b.bind(x, Interval(lo, lo + width))
    rng_e = b.of(e)
    assert rng_e is not None
    for v in range(lo, lo + width + 1):
        value = eval_const(substitute(e, {x: IntImm(v, dtype)}))
        if isinstance(value, IntImm):
            assert value.value in rng_e, f"{print_expr(e)} at x={v}: {value.value} !in {rng_e}"


def test_eval_const_uses_the_interpreter() -> None:
    assert eval_const(expr("7 // 2 + 1")) == IntImm(4)
    assert eval_const(parse_expr("100i8 + 100i8")) == IntImm(-56, DType.int8)
    assert eval_const(parse_expr("1 // 0")) is None  # undefined: not folded
    assert eval_const(parse_expr("0.1 + 0.2")) == FloatImm(0.30000001192092896)
    assert eval_const(parse_expr("-0.0 * 1.0")) == FloatImm(-0.0)
    assert eval_const(parse_expr("0.0 / 0.0")) is None  # x86's default NaN is negative
    assert str(eval_const(parse_expr("ramp(1, 2, 4) * broadcast(3, 4)"))) == "ramp(3, 6, 4)"


@pytest.mark.parametrize("text", [
    *(f"{d.name}(1.0)" for d in STORAGE_DTYPES),
    "float8e4m3fn(-0.0)", "float8e5m2(0.0 / 0.0)", "int4(7)", "uint2(3)",
    "float8e4m3fn(broadcast(2.0, 4))", "select(true, float8e5m2(1.0), float8e5m2(2.0))",
])
def test_storage_only_values_never_become_immediates(text: str) -> None:
    e = parse_expr(text)
    assert eval_const(e) is None
    out = simplify_node(e, Bounds(), stmts=False)
    assert not any(isinstance(n, (IntImm, FloatImm)) and is_storage(n.dtype) for n in walk(out))


def test_casts_through_storage_only_dtypes_still_fold() -> None:
    assert eval_const(parse_expr("float32(float8e4m3fn(1.7))")) == FloatImm(1.75)
    assert eval_const(parse_expr("int32(int4(9))")) == IntImm(-7)
    assert eval_const(parse_expr("int32(float4e2m1(-2.2))")) == IntImm(-2)


PAD = """func @pad(A: float8e4m3fn[4], B: float8e4m3fn[6]) {
  for i in serial(0, 6) {
    B[i] = float8e4m3fn(0.0)
  }
  for i in serial(0, 4) {
    B[i + 1] = A[i]
  }
}
"""


@pytest.mark.parametrize("pipe", ["const_fold", "simplify", str(named_pipeline(3, "loop"))])
def test_folding_passes_leave_storage_only_casts_verifying(pipe: str) -> None:
    out = PassManager(pipe).run(parse(PAD))  # verified after every pass
    assert "float8e4m3fn(0.0)" in print_func(out)


def test_linear_forms_are_exact_modulo_2_to_the_bits() -> None:
    e = expr("(i + 3) * 4 - (i * 2 + 1) * 2 + j")
    terms, const = linear(e)
    assert terms == {J: 1} and const == 10
    assert print_expr(build_linear(terms, const, DType.int32)) == "j + 10"
    u = parse_expr("x - 1u8", [Var("x", DType.uint8)])
    t, c = linear(u)
    assert print_expr(build_linear(t, c, DType.uint8)) == "x - 1u8"


@pytest.mark.parametrize("before, after", [
    ("i + 0", "i"),
    ("3 + i - 3", "i"),
    ("(i + 1) * 2 - 2 * i", "2"),
    ("i * 4 + j - (j + i * 4)", "0"),
    ("(i * 4 + j) // 4", "i"),
    ("(i * 4 + j) % 4", "j"),
    ("(i * 4 + j) // 4 * 4 + (i * 4 + j) % 4", "i * 4 + j"),
    ("n // 8 * 8 + n % 8", "n"),
    ("min(i, 10)", "i"),
    ("max(i, j + 4)", "j + 4"),
    ("i < 4", "true"),
    ("i + 1 <= i", "false"),
    ("select(i >= 0, n, 0)", "n"),
    ("!(i < n)", "i >= n"),
    ("n // 4 // 2", "n // 8"),
    ("n % 8 % 4", "n % 4"),
    ("truncdiv(i + j, 2)", "(i + j) // 2"),
    ("16 - (i + 1)", "15 - i"),
])
def test_simplifier(before: str, after: str) -> None:
    b = bounds_with(i=(0, 3), j=(0, 3))
    fired: Counter[str] = Counter()
    out = simplify_node(expr(before), b, stmts=False, fired=fired)
    assert print_expr(out) == after
    assert fired or before == after


@pytest.mark.parametrize("text", [
    "A[0] + 0.0",     # -0.0 + 0.0 is +0.0
    "A[0] * 0.0",     # NaN, inf and -0.0
    "A[0] - A[0]",    # NaN and inf
    "A[0] == A[0]",   # NaN
    "min(A[0], A[1]) == A[0]",
])
def test_simplifier_keeps_inexact_float_rewrites_out(text: str) -> None:
    assert simplify_node(expr(text), Bounds(), stmts=False) == expr(text)


def test_simplifier_reaches_a_fixpoint_on_random_programs() -> None:
    from compiler.loop.random_program import random_primfunc

    for seed in range(30):
        f = random_primfunc(seed)
        once = simplify_node(f, Bounds(f))
        assert simplify_node(once, Bounds(once)) == once, seed


def test_wrapping_arithmetic_is_not_reasoned_away() -> None:
    b = bounds_with(n=(0, 2**31 - 1))
    e = expr("n + 1 > n")  # false for n = MAX (wraps)
    assert print_expr(simplify_node(e, b, stmts=False)) == "n + 1 > n"
    e2 = BinOp(BinKind.floordiv, expr("n * 2"), IntImm(2))
    assert print_expr(simplify_node(e2, b, stmts=False)) == "n * 2 // 2"
