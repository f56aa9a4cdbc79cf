"""Storage-only dtypes (minifloats, int4/int2) and `Reinterpret` in the loop IR: what the
interpreter computes (ml_dtypes' conversions), the text form, and what the verifier rejects."""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import pytest

from compiler.dtypes import DType
from compiler.errors import ParseError, VerifyError
from compiler.loop import (
    MINIFLOAT_DTYPES,
    NARROW_INT_DTYPES,
    STORAGE_DTYPES,
    Reinterpret,
    UndefinedBehavior,
    Var,
    parse,
    parse_expr,
    print_func,
    run,
    verify,
)

D = DType
ALL_BYTES = np.arange(256, dtype=np.uint8)


def cast_all(src: DType, dst: DType, x: np.ndarray, op: str = "") -> np.ndarray:
    """`O = dst(X)` (or `op<dst>(X)`) over x, 8 lanes at a time."""
    n = x.size
    call = f"{op}<{dst.value}>" if op else dst.value
    f = parse(f"func @c(X: {src.value}[{n}], O: {dst.value}[{n}]) {{\n"
              f"  for i in serial(0, {n // 8}) {{\n"
              f"    O[ramp(i * 8, 1, 8)] = {call}(X[ramp(i * 8, 1, 8)])\n  }}\n}}\n")
    out = np.zeros(n, dst.np)
    run(f, [x, out])
    return out


def same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return a.tobytes() == b.tobytes()


# ----------------------------------------------------------------------------- interpreter


@pytest.mark.parametrize("dtype", STORAGE_DTYPES, ids=str)
def test_every_byte_decodes_as_ml_dtypes(dtype: DType) -> None:
    x = ALL_BYTES.view(dtype.np)
    for dst in (D.float32, D.float64, D.float16, D.bfloat16):
        with np.errstate(over="ignore"):  # float8e8m0 overflows float16
            want = x.astype(np.float32).astype(dst.np)
        assert same_bytes(cast_all(dtype, dst, x), want), dst


@pytest.mark.parametrize("dtype", MINIFLOAT_DTYPES, ids=str)
def test_encoding_is_ml_dtypes_through_float32(dtype: DType) -> None:
    u = np.arange(0, 1 << 32, 1 << 18, dtype=np.uint64).astype(np.uint32)
    x = np.concatenate([u, u + 1, u - 1]).view(np.float32)
    with np.errstate(all="ignore"):
        assert same_bytes(cast_all(D.float32, dtype, x), x.astype(dtype.np))
    # float64 rounds twice, as ml_dtypes does: 1 + 2**-4 + 2**-40 is a tie in float32
    tie = 1 + 2.0 ** -(ml_dtypes.finfo(dtype.np).nmant + 1)
    y = np.array([tie + 2**-40] * 8)
    assert same_bytes(cast_all(D.float64, dtype, y), y.astype(np.float32).astype(dtype.np))


def test_minifloat_to_minifloat_goes_through_float32() -> None:
    x = ALL_BYTES.view(D.float8e5m2.np)  # inf and NaN become e4m3fn's NaN
    want = x.astype(np.float32).astype(D.float8e4m3fn.np)
    assert same_bytes(cast_all(D.float8e5m2, D.float8e4m3fn, x), want)
    e8m0 = ALL_BYTES.view(D.float8e8m0.np)  # a pair ml_dtypes does not cast directly
    want = e8m0.astype(np.float32).astype(D.float4e2m1.np)
    assert same_bytes(cast_all(D.float8e8m0, D.float4e2m1, e8m0), want)


@pytest.mark.parametrize("dtype", NARROW_INT_DTYPES, ids=str)
def test_narrow_integers_wrap_and_truncate(dtype: DType) -> None:
    ints = np.arange(-64, 64, dtype=np.int32)
    assert same_bytes(cast_all(D.int32, dtype, ints), ints.astype(dtype.np))
    lo, hi = (-8, 7) if dtype is D.int4 else (0, 15) if dtype is D.uint4 else \
        (-2, 1) if dtype is D.int2 else (0, 3)
    floats = np.linspace(lo - 0.99, hi + 0.99, 64).astype(np.float32)
    assert cast_all(D.float32, dtype, floats).astype(np.int32).tolist() == \
        np.trunc(floats).astype(np.int32).tolist()
    back = cast_all(dtype, D.int64, ALL_BYTES.view(dtype.np))  # the high bits are ignored
    assert back.tolist() == ALL_BYTES.view(dtype.np).astype(np.int64).tolist()
    with pytest.raises(UndefinedBehavior, match=f"cast of {hi + 1}.0 to {dtype.value} is out "
                                                f"of range"):
        cast_all(D.float32, dtype, np.full(8, hi + 1, np.float32))


def test_minifloat_to_integer_is_undefined_for_nan() -> None:
    x = np.full(8, np.nan, np.float32).astype(D.float8e4m3fn.np)
    with pytest.raises(UndefinedBehavior, match="cast of nan to int32"):
        cast_all(D.float8e4m3fn, D.int32, x)
    x = np.array([-3.75, -0.5, 0, 0.5, 1.5, 7, 448, -448], np.float32)
    got = cast_all(D.float8e4m3fn, D.int32, x.astype(D.float8e4m3fn.np))
    assert got.tolist() == [-3, 0, 0, 0, 1, 7, 448, -448]


def test_bool_casts() -> None:
    x = ALL_BYTES.view(D.float8e5m2.np)
    assert cast_all(D.float8e5m2, D.bool, x).tolist() == (x.astype(np.float32) != 0).tolist()
    assert cast_all(D.float8e8m0, D.bool, ALL_BYTES.view(D.float8e8m0.np)).all()  # no zero
    b = np.array([True, False] * 4)
    assert cast_all(D.bool, D.float4e2m1, b).astype(np.float32).tolist() == [1, 0] * 4
    assert cast_all(D.bool, D.int2, b).astype(np.int32).tolist() == [1, 0] * 4


def test_reinterpret_is_a_view() -> None:
    f32 = np.array([1.0, -0.0, np.inf, -np.nan, 2.0**-149, -1.5, 3e38, 0.1], np.float32)
    assert same_bytes(cast_all(D.float32, D.int32, f32, "reinterpret"), f32)
    bits = np.array([0x7FC00001, 0xFF800000, 1, 0, -1, 2**31 - 1, 12345, -2**31], np.int64)
    i32 = bits.astype(np.int32)
    assert same_bytes(cast_all(D.int32, D.float32, i32, "reinterpret"), i32)
    u64 = np.arange(8, dtype=np.uint64) * np.uint64(0x1234567890ABCDEF)
    assert same_bytes(cast_all(D.uint64, D.float64, u64, "reinterpret"), u64)
    f8 = ALL_BYTES.view(D.float8e4m3fnuz.np)
    assert same_bytes(cast_all(D.float8e4m3fnuz, D.int8, f8, "reinterpret"), f8)
    f = parse("func @s(O: int16[1], x: float16) {\n  O[0] = reinterpret<int16>(x)\n}\n")
    out = np.zeros(1, np.int16)
    run(f, {"O": out, "x": -2.0})
    assert out.tolist() == [np.float16(-2.0).view(np.int16)]


def test_select_let_broadcast_scratch_and_scalar_parameters() -> None:
    f = parse("""
func @k(A: float8e5m2[8], s: float8e5m2, t: int4, O: float8e5m2[8], P: int4[8]) {
  alloc T: local float8e5m2[8] {
    for i in serial(0, 8) {
      let x = A[i] {
        T[i] = select(float32(x) < 0.0, s, x)
      }
    }
    O[ramp(0, 1, 8)] = select(broadcast(true, 8), T[ramp(0, 1, 8)], broadcast(s, 8))
    P[ramp(0, 1, 8)] = broadcast(t, 8)
  }
}
""")
    a = np.array([1, -1, 2, -2, 0, np.nan, np.inf, -np.inf], np.float32).astype(
        D.float8e5m2.np)
    o, p = np.zeros(8, D.float8e5m2.np), np.zeros(8, D.int4.np)
    run(f, {"A": a, "s": 0.25, "t": -3, "O": o, "P": p})
    want = np.where(a.astype(np.float32) < 0, np.float32(0.25), a.astype(np.float32))
    assert same_bytes(o, want.astype(D.float8e5m2.np))
    assert p.astype(np.int32).tolist() == [-3] * 8


# ----------------------------------------------------------------------------- text form


def test_text_round_trips() -> None:
    text = """func @f(A: float8e4m3fn[4], B: int4[4], C: float4e2m1[4], x: float32, n: uint2) {
  for i in serial(0, 4) {
    A[i] = float8e4m3fn(reinterpret<float32>(reinterpret<int32>(x) + i))
    B[i] = select(int32(n) == 1, int4(i), B[i])
    C[i] = float4e2m1(float32(A[i]) * 2.0)
  }
  alloc T: local float8e8m0[4] {
    T[0] = float8e8m0(reinterpret<uint8>(A[0]))
  }
}
"""
    f = parse(text)
    verify(f)
    assert print_func(f) == text
    assert parse(print_func(f)) == f


def test_reinterpret_syntax() -> None:
    x = Var("x", D.float32)
    e = parse_expr("reinterpret<uint32>(x) >> 23", [x])
    assert e.a == Reinterpret(D.uint32, x)
    assert str(Reinterpret(D.int32, Var("reinterpret", D.float32))) == \
        'reinterpret<int32>("reinterpret")'
    with pytest.raises(ParseError, match="reinterpret takes a scalar type"):
        parse_expr("reinterpret<int32x4>(x)", [x])
    with pytest.raises(ParseError, match="expected '<'"):
        parse_expr("reinterpret(x)", [x])


# ----------------------------------------------------------------------------- verifier

HEADER = ("func @f(F: float8e5m2[4], I: int4[4], W: float32[4], x: float32, b: bool, "
          "h: float16) {\n")

ACCEPTED = [
    "F[0] = F[1]",
    "F[0] = select(b, F[1], float8e5m2(x))",
    "let v = I[0] {\n I[1] = v\n}",
    "F[ramp(0, 1, 4)] = broadcast(F[0], 4)",
    "W[0] = float32(I[0]) + float32(F[0])",
    "I[0] = int4(reinterpret<int16>(h))",
    "eval reinterpret<uint8>(F[0])",
    "eval reinterpret<float8e4m3fn>(reinterpret<int8>(F[0]))",
    "eval reinterpret<bfloat16>(h)",
]
REJECTED = {
    "F[0] = F[1] + F[2]": "add does not accept float8e5m2 operands (a storage-only dtype",
    "I[0] = -I[1]": "neg does not accept a int4 operand (a storage-only dtype",
    "eval I[0] < I[1]": "lt does not accept int4 operands",
    "eval F[0] == F[1]": "eq does not accept float8e5m2 operands",
    "eval exp(F[0])": "exp does not accept float8e5m2 arguments",
    "eval I[I[0]]": "index must be an integer, not int4",
    "eval reinterpret<int32>(x) + reinterpret<int16>(x)": "cannot reinterpret float32 (32 bits) "
                                                         "as int16 (16 bits)",
    "eval reinterpret<uint8>(b)": "cannot reinterpret bool",
    "eval reinterpret<uint4>(I[0])": "cannot reinterpret int4 (4 bits) as uint4",
}


@pytest.mark.parametrize("body", ACCEPTED)
def test_allowed_operations_verify(body: str) -> None:
    verify(parse(HEADER + body + "\n}\n"))


@pytest.mark.parametrize("body", list(REJECTED))
def test_storage_arithmetic_and_bad_reinterprets_are_rejected(body: str) -> None:
    with pytest.raises(VerifyError, match=re.escape(REJECTED[body])):
        verify(parse(HEADER + body + "\n}\n"))


def test_no_literals_of_storage_dtypes() -> None:
    from compiler.loop import FloatImm, IntImm, PrimFunc, buffer, store

    f8, i4 = buffer("F", D.float8e4m3fn, [1]), buffer("I", D.int4, [1])
    for buf, imm in ((f8, FloatImm(1.0, D.float8e4m3fn)), (i4, IntImm(1, D.int4))):
        with pytest.raises(VerifyError, match="no literals of the storage-only dtype"):
            verify(PrimFunc("f", (buf,), store(buf, imm, 0)))
