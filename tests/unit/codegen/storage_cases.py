"""Cases for the storage-only dtypes (minifloats, int4/int2) and `Reinterpret`, shared by the
C and LLVM backend tests: every byte decoded, a dense float32 grid encoded, all bit for bit
against ml_dtypes, and inputs for casts that avoid undefined behaviour."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from compiler.dtypes import DType
from compiler.loop.build import buffer, for_, store
from compiler.loop.ir import (
    MINIFLOAT_DTYPES,
    NARROW_INT_DTYPES,
    STORAGE_DTYPES,
    BufferLoad,
    BufferStore,
    Cast,
    Expr,
    IntImm,
    PrimFunc,
    Ramp,
    Reinterpret,
    Var,
    int_range,
    is_int,
    is_narrow_int,
)

D = DType
ALL_BYTES = np.arange(256, dtype=np.uint8)


@dataclass
class Case:
    func: PrimFunc
    x: np.ndarray
    want: np.ndarray


def unary(name: str, src: DType, dst: DType, n: int, make: Callable[[Expr], Expr],
          lanes: int = 1) -> PrimFunc:
    """`O[k] = make(X[k])` over n elements, scalar or `lanes` at a time."""
    x, o = buffer("X", src, [n]), buffer("O", dst, [n])
    i = Var("i")
    if lanes == 1:
        return PrimFunc(name, (x, o), for_(i, n, store(o, make(x[i]), i)))
    r = Ramp(i * lanes, IntImm(1), lanes)
    body = for_(i, n // lanes, BufferStore(o, make(BufferLoad(x, (r,))), (r,)))
    return PrimFunc(name, (x, o), body)


def every_byte(dtype: DType) -> np.ndarray:
    """All 256 byte patterns as an array of `dtype` (one element per byte)."""
    return ALL_BYTES.view(dtype.np)


def float32_grid() -> np.ndarray:
    """Dense float32 inputs for encoders: every value of the top 16 bits (so every sign,
    exponent and rounding position of a minifloat) with low halves 0, 1, 0x7fff, 0x8000,
    0x8001 and 0xffff (ties and their neighbours); infinities, NaNs and subnormals
    included."""
    hi = np.arange(1 << 16, dtype=np.uint32) << 16
    lows = np.array([0, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF], np.uint32)
    return (hi[:, None] | lows[None, :]).reshape(-1).view(np.float32)


def float64_ties(rng: np.random.Generator) -> np.ndarray:
    """float64 values at and next to minifloat rounding ties (where rounding once and
    rounding through float32 differ), and random ones of every magnitude."""
    ties = [(1 + m / 16) * 2.0**k * (1 + s * 2.0**-35)
            for k in range(-140, 130) for m in range(16) for s in (-1, 0, 1)]
    wild = rng.standard_normal(20000) * 10.0 ** rng.integers(-45, 45, 20000)
    special = [np.nan, np.inf, 0.0, 1e300, 1e-300, 2.0**-1074]
    x = np.concatenate([ties, wild, special])
    return np.concatenate([x, -x])


def with_ml_dtypes(x: np.ndarray, dst: DType) -> np.ndarray:
    with np.errstate(all="ignore"):
        if is_narrow_int(dst) and x.dtype.kind == "f":
            return np.trunc(x).astype(np.int64).astype(dst.np)
        return x.astype(dst.np)


def decode_cases() -> list[Case]:
    """Every byte of every storage-only dtype to float32 (and narrow integers to int32)."""
    cases = []
    for src in STORAGE_DTYPES:
        x = every_byte(src)
        for dst in (D.float32, *((D.int32,) if is_narrow_int(src) else ())):
            f = unary(f"dec_{src.value}_{dst.value}", src, dst, 256, lambda v, d=dst: Cast(d, v))
            cases.append(Case(f, x, with_ml_dtypes(x, dst)))
    return cases


def encode_cases(rng: np.random.Generator) -> list[Case]:
    """Minifloats from a dense float32 grid (scalar and 4 lanes), from float64 near ties,
    and from every float16 and bfloat16; narrow integers from int32 (wrapping) and float32
    (in range). ml_dtypes converts through float32, as the loop IR defines."""
    grid = float32_grid()
    f64 = float64_ties(rng)
    halves = {d: np.arange(1 << 16, dtype=np.uint16).view(d.np) for d in (D.float16,
                                                                         D.bfloat16)}
    cases = []
    for dst in MINIFLOAT_DTYPES:
        def cast(v: Expr, d: DType = dst) -> Expr:
            return Cast(d, v)

        for name, x, lanes in (("f32", grid, 1), ("f32x4", grid, 4), ("f64", f64, 1),
                               ("f16", halves[D.float16], 1), ("bf16", halves[D.bfloat16], 1)):
            src = DType.from_np(x.dtype)
            f = unary(f"enc_{name}_{dst.value}", src, dst, x.size, cast, lanes)
            with np.errstate(all="ignore"):
                want = x.astype(np.float32).astype(dst.np)
            cases.append(Case(f, x, want))
    for dst in NARROW_INT_DTYPES:
        ints = np.concatenate([np.arange(-300, 300), rng.integers(-2**31, 2**31, 1000)])
        ints = ints.astype(np.int32)
        lo, hi = int_range(dst)
        floats = rng.uniform(lo - 0.999, hi + 0.999, 1000).astype(np.float32)
        for name, x in (("i32", ints), ("f32", floats)):
            f = unary(f"enc_{name}_{dst.value}", DType.from_np(x.dtype), dst, x.size,
                      lambda v, d=dst: Cast(d, v))
            cases.append(Case(f, x, with_ml_dtypes(x, dst)))
    return cases


def reinterpret_cases(rng: np.random.Generator) -> list[Case]:
    """Bits read as another type of the same width: floats and integers both ways (NaN and
    infinity patterns included), minifloats and bytes, scalar and 4 lanes."""
    u32 = rng.integers(0, 2**32, 64, dtype=np.uint64).astype(np.uint32)
    u32[:4] = [0x7F800000, 0xFF800001, 0x7FC00000, 0x00000001]
    u64 = rng.integers(0, 2**63, 64, dtype=np.uint64) * np.uint64(2)
    # 16-bit floats without signalling NaNs (backends holding them in float32 quiet those)
    bits16 = rng.integers(0, 2**16, 64).astype(np.uint16)
    bits16[:4] = [0x7C00, 0xFC00, 0x7E00, 0x8000]
    f16 = np.where((bits16 & 0x7E00) == 0x7C00, bits16 & 0xFC00, bits16).astype(np.uint16)
    bits16[:4] = [0x7F80, 0xFF80, 0x7FC0, 0x8000]
    bf16 = np.where((bits16 & 0x7FC0) == 0x7F80, bits16 & 0xFF80, bits16).astype(np.uint16)
    pairs = [(u32.view(np.int32), D.float32), (u32.view(np.float32), D.int32),
             (u64.view(np.int64), D.float64), (u64.view(np.float64), D.uint64),
             (f16.view(np.float16), D.int16), (bf16.view(D.bfloat16.np), D.uint16),
             (f16.view(np.int16), D.float16),
             (ALL_BYTES[:64].view(np.int8), D.float8e5m2),
             (ALL_BYTES[64:128].view(D.float8e4m3fn.np), D.uint8),
             (ALL_BYTES[128:192].view(D.float8e8m0.np), D.float8e4m3fnuz)]
    cases = []
    for x, dst in pairs:
        src = DType.from_np(x.dtype)
        for lanes in (1, 4):
            f = unary(f"re_{src.value}_{dst.value}_{lanes}", src, dst, x.size,
                      lambda v, d=dst: Reinterpret(d, v), lanes)
            cases.append(Case(f, x, x.view(dst.np)))
    return cases


def check(cases: list[Case], run: Callable[[PrimFunc, np.ndarray, np.ndarray], None]) -> None:
    """Run every case (`run(func, x, out)` fills `out`) and compare its bytes."""
    for c in cases:
        got = np.zeros(c.want.shape, c.want.dtype)
        run(c.func, c.x, got)
        bad = np.nonzero(got.view(np.uint8).reshape(got.size, -1)
                         != c.want.view(np.uint8).reshape(got.size, -1))[0]
        assert bad.size == 0, (f"{c.func.name}: {bad.size} differ, first at input "
                               f"{c.x[bad[0]]!r}: got {got[bad[0]]!r}, want {c.want[bad[0]]!r}")


def cast_inputs(src: DType, dst: DType, n: int, rng: np.random.Generator) -> np.ndarray:
    """n values of the storage-only `src` (any value a program can write) for a cast to
    `dst`, none of them undefined behaviour (minifloat -> integer stays in range)."""
    if is_narrow_int(src):
        lo, hi = int_range(src)
        return rng.integers(lo, hi, n, endpoint=True).astype(src.np)
    x = rng.choice(every_byte(src)[:16 if src is D.float4e2m1 else 256], n)
    if is_int(dst) or is_narrow_int(dst):
        with np.errstate(all="ignore"):
            t = np.trunc(x.astype(np.float64))
        lo, hi = int_range(dst)
        one = np.ones(1, np.float32).astype(src.np)[0]  # float8e8m0 has no zero
        x = np.where((t >= lo) & (t < hi + 1), x, one).astype(src.np)
    return x


MIXED = """
func @mixed(A: float8e4m3fn[16], B: int4[16], s: float8e5m2, t: int2, O: float8e5m2[16],
            P: int4[16], Q: float32[16]) {
  alloc T: local float8e4m3fn[16] {
    for i in serial(0, 16) {
      T[i] = A[15 - i]
    }
    for i in vectorized(0, 16) {
      let x = T[i] {
        O[i] = select(float32(x) > 0.0, float8e5m2(x), s)
        P[i] = select(i % 2 == 0, B[i], int4(t))
        Q[i] = float32(x) + float32(B[i]) + float32(t) + float32(s)
      }
    }
    for i in serial(0, 4) {
      O[ramp(i * 4, 1, 4)] = select(i == 1, broadcast(s, 4), O[ramp(i * 4, 1, 4)])
      P[ramp(i * 4, 1, 4)] = int4(int32(P[ramp(i * 4, 1, 4)]) + broadcast(7, 4))
    }
  }
}
"""


def mixed_args(rng: np.random.Generator) -> dict[str, object]:
    """Arguments of `MIXED`: every kind of access to storage-only dtypes (scalar parameters,
    local scratch, lets, selects, broadcasts, vector loads and stores)."""
    return {"A": rng.choice(every_byte(D.float8e4m3fn), 16), "B": np.arange(-8, 8).astype(
        D.int4.np), "s": 1.5, "t": -1, "O": np.zeros(16, D.float8e5m2.np),
        "P": np.zeros(16, D.int4.np), "Q": np.zeros(16, np.float32)}
