"""The loop interpreter against independently computed results, and its UB checks."""

from __future__ import annotations

import math
import time
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from compiler.dtypes import DType
from compiler.errors import ExecutionError, VerifyError
from compiler.loop import INTRINSICS, AssertFailure, UndefinedBehavior, is_float, parse, run


def evaluate(expr: str, dtype: str, lanes: int = 1, params: str = "", **args: object):
    """Run `OUT[...] = expr` and return the stored value (or vector)."""
    idx = "0" if lanes == 1 else f"ramp(0, 1, {lanes})"
    extra = ", " + params if params else ""
    f = parse(f"func @t(OUT: {dtype}[{lanes}]{extra}) {{\n  OUT[{idx}] = {expr}\n}}\n")
    out = np.zeros(lanes, DType(dtype).np)
    run(f, {"OUT": out, **args})
    return out[0] if lanes == 1 else out


def round_exact(x: Fraction, bits: int) -> Fraction:
    """x rounded to `bits` significant bits, ties to even (a reference independent of numpy)."""
    if x == 0:
        return x
    e = math.floor(math.log2(abs(x)))
    while Fraction(2) ** e > abs(x):
        e -= 1
    while Fraction(2) ** (e + 1) <= abs(x):
        e += 1
    scale = Fraction(2) ** (e - bits + 1)
    return round(x / scale) * scale


# ----------------------------------------------------------------------------- kernels


def test_elementwise_add_with_vectorized_inner_loop():
    f = parse("""
func @add(A: float32[4, 8], B: float32[4, 8], C: float32[4, 8]) {
  for i in serial(0, 4) {
    for j in vectorized(0, 8) {
      C[i, j] = A[i, j] + B[i, j]
    }
  }
}
""")
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 4, 8), dtype=np.float32)
    c = np.zeros((4, 8), np.float32)
    out = run(f, [a, b, c])
    assert out["C"] is c
    np.testing.assert_array_equal(c, a + b)


def test_matmul_64_matches_sequential_float32_and_is_fast():
    f = parse("""
func @mm(A: float32[64, 64], B: float32[64, 64], C: float32[64, 64]) {
  for i in parallel(0, 64) {
    for j in serial(0, 64) {
      C[i, j] = 0.0
      for k in serial(0, 64) {
        C[i, j] = C[i, j] + A[i, k] * B[k, j]
      }
    }
  }
}
""")
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 64, 64), dtype=np.float32)
    c = np.full((64, 64), np.nan, np.float32)
    start = time.perf_counter()
    run(f, {"A": a, "B": b, "C": c})
    elapsed = time.perf_counter() - start
    expected = np.zeros((64, 64), np.float32)
    for k in range(64):  # same summation order, every step rounded to float32
        expected = expected + a[:, k : k + 1] * b[k : k + 1, :]
    np.testing.assert_array_equal(c, expected)
    assert elapsed < 5.0, f"64^3 matmul took {elapsed:.2f}s"


def test_scratch_prefix_sum_in_local_memory():
    f = parse("""
func @scan(A: int32[6], B: int32[6]) {
  alloc T: local int32[6] {
    T[0] = A[0]
    for i in serial(1, 5) {
      T[i] = T[i - 1] + A[i]
    }
    for i in unrolled(0, 6) {
      B[i] = T[i]
    }
  }
}
""")
    a = np.array([3, -1, 4, 1, -5, 9], np.int32)
    b = np.zeros(6, np.int32)
    run(f, [a, b])
    np.testing.assert_array_equal(b, np.cumsum(a).astype(np.int32))


def test_thread_bound_loops_run_every_thread():
    f = parse("""
func @k(A: float32[12], C: float32[12]) {
  for b in blockIdx.x(0, 3) {
    for t in threadIdx.x(0, 4) {
      C[b * 4 + t] = A[b * 4 + t] * 2.0 + 1.0
    }
  }
}
""")
    a = np.arange(12, dtype=np.float32)
    c = np.zeros(12, np.float32)
    run(f, [a, c])
    np.testing.assert_array_equal(c, a * np.float32(2) + np.float32(1))


def test_barrier_is_a_no_op_for_serial_threads():
    f = parse("""
func @k(A: float32[8], C: float32[8]) {
  for t in threadIdx.x(0, 8) {
    alloc T: shared float32[8] {
      T[t] = A[t] * 2.0
      eval barrier()
      C[t] = T[t] + 1.0
    }
  }
}
""")
    a = np.arange(8, dtype=np.float32)
    c = np.zeros(8, np.float32)
    run(f, [a, c])
    np.testing.assert_array_equal(c, a * np.float32(2) + np.float32(1))


def test_dynamic_shape_and_scalar_params():
    f = parse("""
func @scale(A: float32[n], n: int32, s: float32) {
  for i in serial(0, n) {
    A[i] = A[i] * s
  }
}
""")
    a = np.arange(5, dtype=np.float32)
    run(f, {"A": a, "n": 5, "s": 1.5})
    np.testing.assert_array_equal(a, np.arange(5, dtype=np.float32) * np.float32(1.5))


def test_vector_ramp_broadcast_and_gather():
    f = parse("""
func @v(A: float32[8], C: float32[8], D: float32[4]) {
  C[ramp(0, 2, 4)] = A[ramp(1, 2, 4)] + broadcast(1.0, 4)
  C[ramp(1, 2, 4)] = select(A[ramp(0, 2, 4)] > broadcast(3.0, 4), broadcast(-1.0, 4),
                            A[ramp(0, 2, 4)])
  D[ramp(0, 1, 4)] = A[ramp(5, 1, 4) % broadcast(8, 4)]
}
""")
    a = np.arange(8, dtype=np.float32)
    c, d = np.zeros(8, np.float32), np.zeros(4, np.float32)
    run(f, [a, c, d])
    np.testing.assert_array_equal(c[0::2], a[1::2] + 1)
    np.testing.assert_array_equal(c[1::2], np.where(a[0::2] > 3, -1, a[0::2]))
    np.testing.assert_array_equal(d, a[[5, 6, 7, 0]])


def test_vector_store_with_repeated_lanes_writes_in_lane_order():
    f = parse("func @t(C: int32[2]) {\n  C[ramp(0, 0, 4)] = ramp(1, 1, 4)\n}\n")
    c = np.zeros(2, np.int32)
    run(f, [c])
    assert c.tolist() == [4, 0]


def test_let_if_assert_evaluate():
    f = parse("""
func @t(A: int32[4]) {
  let x = A[0] * 3 {
    if x > 5 {
      A[1] = (let y = x + 1 in y * y)
    } else {
      A[1] = -1
    }
  }
  assert A[1] != 0, "nonzero"
  eval A[2]
}
""")
    a = np.array([2, 0, 0, 0], np.int32)
    run(f, [a])
    assert a[1] == 49
    a = np.array([1, 0, 0, 0], np.int32)
    run(f, [a])
    assert a[1] == -1


# ----------------------------------------------------------------------------- integer semantics


@pytest.mark.parametrize(("expr", "dtype", "expected"), [
    ("127i8 + 1i8", "int8", -128),
    ("200u8 * 2u8", "uint8", 144),
    ("0u8 - 1u8", "uint8", 255),
    ("-(-128i8)", "int8", -128),
    ("~0u8", "uint8", 255),
    ("~5", "int32", -6),
    ("2147483647 + 1", "int32", -2147483648),
    ("6 & 3 | 8 ^ 1", "int32", (6 & 3) | (8 ^ 1)),
    ("min(-3, 2) + max(-3, 2)", "int32", -1),
])
def test_integer_arithmetic_wraps(expr, dtype, expected):
    assert int(evaluate(expr, dtype)) == expected


def test_int64_multiplication_wraps_like_numpy():
    a, b = 3_037_000_500, 3_037_000_500
    expected = (np.array([a], np.int64) * np.array([b], np.int64))[0]
    assert evaluate(f"{a}i64 * {b}i64", "int64") == expected


def evaluate_vector(template: str, a: list, b: list, dtype: str):
    """`template` over x = A[0:4] and y = B[0:4] as vectors."""
    expr = template.format(x="A[ramp(0, 1, 4)]", y="B[ramp(0, 1, 4)]")
    np_dt = DType(dtype).np
    return evaluate(expr, dtype, 4, params=f"A: {dtype}[4], B: {dtype}[4]",
                    A=np.array(a, np_dt), B=np.array(b, np_dt))


@pytest.mark.parametrize("b", [3, -3, 1, -1, 4])
def test_division_kinds(b):
    numerators = [-7, 7, -8, 8, 0, -1, 2147483647, -2147483648]
    for template, ref in {
        "{x} // {y}": lambda a: a // b,
        "{x} % {y}": lambda a: a % b,
        "truncdiv({x}, {y})": lambda a: int(Fraction(a, b)),  # rounds toward zero
        "truncmod({x}, {y})": lambda a: a - b * int(Fraction(a, b)),
    }.items():
        usable = [a for a in numerators if not (a == -(2**31) and b == -1)]
        for a in usable:
            assert evaluate(template.format(x=a, y=b), "int32") == ref(a), (template, a)
        four = usable[:4]
        got = evaluate_vector(template, four, [b] * 4, "int32")
        assert got.tolist() == [ref(a) for a in four], template


@pytest.mark.parametrize(("expr", "dtype", "expected"), [
    ("-8 >> 1", "int32", -4),
    ("248u8 >> 1u8", "uint8", 124),
    ("1i8 << 7i8", "int8", -128),
    ("3 << 31", "int32", -(2**31)),
    ("-1i64 >> 63i64", "int64", -1),
])
def test_shifts(expr, dtype, expected):
    assert int(evaluate(expr, dtype)) == expected


# ----------------------------------------------------------------------------- float semantics


def test_float32_rounds_after_every_operation():
    one_ulp = float(np.float32(1) + np.finfo(np.float32).eps)
    args = {"A": np.array([one_ulp, one_ulp, -1.0], np.float32)}
    got = evaluate("A[0] * A[1] + A[2]", "float32", params="A: float32[3]", **args)
    # (1 + 2^-23)^2 = 1 + 2^-22 + 2^-46 rounds to 1 + 2^-22 in float32; in float64 (or with
    # a fused multiply-add) the 2^-46 would survive.
    assert got == np.float32(2.0**-22)


def test_float16_and_bfloat16_arithmetic():
    got = evaluate("A[0] + A[1]", "float16", params="A: float16[2]",
                   A=np.array([2048, 1], np.float16))
    assert got == np.float16(2048)  # 2049 is a tie between 2048 and 2050: even wins
    got = evaluate("1.0bf16 + 0.00390625bf16", "bfloat16")
    assert float(got) == 1.0  # 1 + 2^-8 is a tie in bfloat16 (ulp 2^-7): even wins
    got = evaluate("1.0bf16 + 0.005859375bf16", "bfloat16")
    assert float(got) == 1.0078125


def test_float_division_by_zero_is_ieee():
    assert evaluate("1.0 / 0.0", "float32") == np.inf
    assert np.isnan(evaluate("0.0f64 / 0.0f64", "float64"))


@pytest.mark.parametrize("vector", [False, True])
def test_min_max_are_ieee_minimum_maximum(vector):
    def ev(op, x, y):
        if vector:
            return evaluate_vector(f"{op}({{x}}, {{y}})", [x] * 4, [y] * 4, "float32")[0]
        return evaluate(f"{op}(A[0], A[1])", "float32", params="A: float32[2]",
                        A=np.array([x, y], np.float32))

    nan = float("nan")
    for x, y in ((nan, 1.0), (1.0, nan)):
        assert np.isnan(ev("min", x, y)) and np.isnan(ev("max", x, y))
    for x, y in ((0.0, -0.0), (-0.0, 0.0)):
        assert np.signbit(ev("min", x, y)) and not np.signbit(ev("max", x, y))
    assert ev("min", 2.0, -3.0) == -3.0 and ev("max", 2.0, -3.0) == 2.0


def test_comparisons_with_nan_are_unordered():
    assert evaluate("nan != nan", "bool") and not evaluate("nan == nan", "bool")
    assert not evaluate("nan < 1.0", "bool") and not evaluate("nan >= 1.0", "bool")


# ----------------------------------------------------------------------------- casts


@pytest.mark.parametrize(("expr", "dtype", "expected"), [
    ("int32(-2.7)", "int32", -2),
    ("int32(2.7)", "int32", 2),
    ("uint8(-0.5)", "uint8", 0),
    ("int8(300)", "int8", 44),
    ("uint8(-1)", "uint8", 255),
    ("int32(2147483647.9f64)", "int32", 2147483647),
    ("int64(int8(-1))", "int64", -1),
    ("uint32(-1i64)", "uint32", 2**32 - 1),
    ("int32(true)", "int32", 1),
])
def test_integer_casts(expr, dtype, expected):
    assert int(evaluate(expr, dtype)) == expected


def test_casts_to_float_round_once():
    big = 2**24 + 2**16 + 1
    expected = round_exact(Fraction(big), 8)
    assert Fraction(float(evaluate(f"bfloat16({big})", "bfloat16"))) == expected
    wide = 2**60 + 2**36 + 1
    expected = round_exact(Fraction(wide), 24)
    assert Fraction(float(evaluate(f"float32({wide}i64)", "float32"))) == expected
    x = 1 + 2**-8 + 2**-30
    expected = round_exact(Fraction(x), 8)
    assert Fraction(float(evaluate(f"bfloat16({x!r}f64)", "bfloat16"))) == expected
    x = 1 + 2**-11 + 2**-40
    assert Fraction(float(evaluate(f"float16({x!r}f64)", "float16"))) == \
        round_exact(Fraction(x), 11)
    assert evaluate("float16(65520)", "float16") == np.inf


def test_bool_casts():
    assert evaluate("bool(nan)", "bool") and not evaluate("bool(-0.0)", "bool")
    assert evaluate("bool(256)", "bool")
    assert evaluate("float32(true) + float32(false)", "float32") == 1.0


# ----------------------------------------------------------------------------- intrinsics


@pytest.mark.parametrize(("name", "ref"), [
    ("exp", math.exp), ("log", math.log), ("sqrt", math.sqrt), ("tanh", math.tanh),
    ("erf", math.erf), ("sin", math.sin), ("atan", math.atan), ("log1p", math.log1p),
    ("expm1", math.expm1), ("cosh", math.cosh),
])
def test_unary_float_intrinsics(name, ref):
    x = 0.7311
    assert math.isclose(evaluate(f"{name}({x!r}f64)", "float64"), ref(x), rel_tol=1e-14)
    got32 = evaluate(f"{name}({x})", "float32")
    assert isinstance(got32, np.float32)
    assert math.isclose(float(got32), ref(float(np.float32(x))), rel_tol=3e-7)


def test_binary_float_intrinsics():
    assert evaluate("pow(2.0f64, 0.5f64)", "float64") == pytest.approx(math.sqrt(2), rel=1e-15)
    assert evaluate("atan2(1.0f64, -1.0f64)", "float64") == pytest.approx(3 * math.pi / 4)
    assert evaluate("fmod(-7.5f64, 2.0f64)", "float64") == math.fmod(-7.5, 2.0)
    assert evaluate("copysign(3.0, -0.0)", "float32") == -3.0
    assert evaluate("hypot(3.0, 4.0)", "float32") == 5.0


def test_rounding_intrinsics():
    assert [float(evaluate(f"round({v})", "float32")) for v in ("2.5", "3.5", "-2.5", "0.5")] \
        == [2.0, 4.0, -2.0, 0.0]
    assert evaluate("floor(-1.5)", "float32") == -2.0
    assert evaluate("ceil(-1.5)", "float32") == -1.0
    assert evaluate("trunc(-1.5)", "float32") == -1.0
    assert not np.signbit(evaluate("abs(-0.0)", "float32"))


def test_integer_intrinsics_and_predicates():
    assert evaluate("abs(-2147483648)", "int32") == -2147483648
    assert evaluate("abs(-5i8)", "int8") == 5
    assert evaluate("popcount(-1i8)", "int8") == 8
    assert evaluate("popcount(7u32)", "uint32") == 3
    assert evaluate("popcount(ramp(-1, 1, 4))", "int32", 4).tolist() == [32, 0, 1, 1]
    assert evaluate("isnan(nan) && isinf(-inf) && isfinite(1.0) && !isfinite(inf)", "bool")


def test_half_precision_intrinsics_round_from_float32():
    got = evaluate("sqrt(2.0f16)", "float16")
    assert isinstance(got, np.float16) and got == np.float16(math.sqrt(2))
    got = evaluate("exp(1.0bf16)", "bfloat16")
    assert got == ml_dtypes.bfloat16(math.e)


def _intrinsic_cases():
    for name, intr in sorted(INTRINSICS.items()):
        if intr.result == "void":
            continue  # barrier(): a statement, see test_barrier_is_a_no_op_for_serial_threads
        for dtype in ("float16", "bfloat16", "float32", "float64", "int8", "int64", "uint32"):
            floaty = is_float(DType(dtype))
            if {"float": floaty, "int": not floaty, "num": True}[intr.operand]:
                yield name, dtype


@pytest.mark.parametrize(("name", "dtype"), list(_intrinsic_cases()))
def test_every_intrinsic_agrees_between_scalar_and_vector_paths(name, dtype):
    intr = INTRINSICS[name]
    floaty = is_float(DType(dtype))
    result = "bool" if intr.result == "bool" else dtype
    values = np.array([0.75, -3] if floaty else [5, -3 if dtype[0] == "i" else 3],
                      DType(dtype).np)
    params = f"A: {dtype}[2]"
    scalars = [evaluate(f"{name}({', '.join([f'A[{k}]'] * intr.arity)})", result,
                        params=params, A=values) for k in range(2)]
    vector = evaluate(f"{name}({', '.join(['A[ramp(0, 1, 2)]'] * intr.arity)})", result, 2,
                      params=params, A=values)
    assert vector.dtype == DType(result).np
    as_f64 = np.array([float(v) for v in scalars])
    np.testing.assert_array_equal(as_f64, vector.astype(np.float64))


# ----------------------------------------------------------------------------- undefined behaviour


UB_CASES = {
    "oob_load": ("C[0] = A[4]", "out-of-bounds load A[4] (shape [4])"),
    "oob_negative": ("C[-1] = 0.0", "out-of-bounds store C[-1]"),
    "oob_store_in_loop": ("for i in serial(0, 4) {\n C[i + 1] = 0.0\n}", "store C[4]"),
    "oob_vector": ("C[ramp(2, 1, 4)] = broadcast(0.0, 4)", "out-of-bounds store C[[2, 3, 4, 5]]"),
    "floordiv_zero": ("C[0] = float32(n // (n - n))", "integer floordiv by zero"),
    "floormod_zero": ("C[0] = float32(n % 0)", "floormod by zero"),
    "truncdiv_zero": ("C[0] = float32(truncdiv(n, 0))", "truncdiv by zero"),
    "truncmod_zero": ("C[0] = float32(truncmod(n, n - 3))", "truncmod by zero"),
    "vector_div_zero": ("eval ramp(1, 1, 4) // ramp(-2, 1, 4)", "floordiv by zero"),
    "div_overflow": ("eval -2147483648 // -1", "overflows int32"),
    "mod_overflow": ("eval truncmod(-128i8, -1i8)", "overflows int8"),
    "shift_too_far": ("eval 1 << 32", "shift amount 32 is outside [0, 32)"),
    "shift_negative": ("eval 1 >> (n - 4)", "shift amount -1"),
    "uninit": ("alloc T: local float32[4] {\n T[0] = 1.0\n C[0] = T[1]\n}",
               "uninitialised memory T[1]"),
    "uninit_vector": ("alloc T: local float32[4] {\n T[0] = 1.0\n eval T[ramp(0, 1, 2)]\n}",
                      "uninitialised memory T[[0, 1]]"),
    "uninit_fresh_each_iteration": (
        "for i in serial(0, 2) {\n alloc T: shared float32[1] {\n"
        " if i == 0 {\n T[0] = 1.0\n }\n C[0] = T[0]\n }\n}", "uninitialised memory T[0]"),
    "cast_nan": ("eval int32(nan)", "cast of nan to int32"),
    "cast_range": ("eval int8(128.0)", "out of range"),
    "cast_negative_unsigned": ("eval uint8(-1.0)", "out of range"),
    "cast_int_max": ("eval int32(2147483648.0f64)", "out of range"),
    "loop_var_overflow": ("for i: int8 in serial(120i8, 10i8) {\n eval i\n}", "overflows int8"),
    "negative_alloc": ("alloc T: global float32[n - 5] {\n}", "negative shape"),
    "select_evaluates_both_arms": ("C[0] = select(true, 1.0, A[9])", "out-of-bounds load A[9]"),
}


@pytest.mark.parametrize("case", sorted(UB_CASES))
def test_undefined_behaviour_is_reported(case):
    body, message = UB_CASES[case]
    f = parse(f"func @t(A: float32[4], C: float32[4], n: int32) {{\n{body}\n}}\n")
    args = {"A": np.zeros(4, np.float32), "C": np.zeros(4, np.float32), "n": 3}
    with pytest.raises(UndefinedBehavior) as err:
        run(f, args)
    text = str(err.value)
    assert "\n" not in text and text.startswith("@t: ")
    assert message in text


def test_failed_assert_is_an_assert_failure():
    f = parse('func @t(n: int32) {\n  assert n < 3, "n is small"\n}\n')
    run(f, {"n": 2})
    with pytest.raises(AssertFailure, match="assertion failed: n is small"):
        run(f, {"n": 3})


def test_initialised_scratch_and_params_are_readable():
    f = parse("""
func @t(C: float32[4]) {
  alloc T: local float32[2] {
    T[ramp(0, 1, 2)] = broadcast(2.0, 2)
    C[0] = C[3] + T[1]
  }
}
""")
    c = np.array([0, 0, 0, 5], np.float32)
    run(f, [c])
    assert c[0] == 7


# ----------------------------------------------------------------------------- argument errors


def test_bad_arguments_are_execution_errors():
    f = parse("func @t(A: float32[4], n: int8) {\n  A[0] = 1.0\n}\n")
    good = np.zeros(4, np.float32)
    for args in (
        {"A": np.zeros(4, np.float64), "n": 1},
        {"A": np.zeros(5, np.float32), "n": 1},
        {"A": good},
        {"A": good, "n": 1, "m": 2},
        {"A": good, "n": 300},
        {"A": good, "n": 1.5},
        [good],
    ):
        with pytest.raises(ExecutionError):
            run(f, args)
    frozen = np.zeros(4, np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ExecutionError, match="read-only"):
        run(f, [frozen, 1])


def test_ill_formed_function_is_rejected_before_running():
    f = parse("func @t(A: float32[4]) {\n  A[0] = 1\n}\n")
    with pytest.raises(VerifyError):
        run(f, [np.zeros(4, np.float32)])
