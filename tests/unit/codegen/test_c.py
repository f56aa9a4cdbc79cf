"""The C backend: hand-written kernels against numpy, and random programs against the
loop-IR interpreter, bit for bit."""

from __future__ import annotations

import ctypes
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from compiler.codegen import c as cbackend
from compiler.codegen.abi import NativeKernel
from compiler.codegen.c import (
    CCompileError,
    build_shared_object,
    compile_funcs,
    emit_c,
    gcc_flags,
)
from compiler.dtypes import DType as D
from compiler.errors import AnvilError, ExecutionError, UnsupportedError, VerifyError
from compiler.loop import (
    INT_DTYPES,
    SUPPORTED_DTYPES,
    Allocate,
    Assert,
    Broadcast,
    Buffer,
    BufferLoad,
    BufferStore,
    Call,
    CmpKind,
    CmpOp,
    Evaluate,
    For,
    ForKind,
    IfThenElse,
    IntImm,
    Let,
    LetStmt,
    PrimFunc,
    Ramp,
    Var,
    and_,
    buffer,
    call,
    cast,
    const,
    floordiv,
    floormod,
    for_,
    int_range,
    is_float,
    is_storage,
    max_,
    min_,
    parse,
    select,
    seq,
    store,
    transform,
    truncdiv,
    truncmod,
    walk,
)
from compiler.loop import run as interpret
from compiler.loop.random_program import GenConfig, random_args, random_primfunc
from tests.unit.codegen import storage_cases
from tests.unit.codegen.kernels import BARRIER_KERNEL

pytestmark = pytest.mark.skipif(not cbackend.shutil.which("gcc"), reason="needs gcc")

HALF = (D.float16, D.bfloat16)
FLOATS = (D.float16, D.bfloat16, D.float32, D.float64)
N = 64


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("anvil_c_cache")


# ----------------------------------------------------------------------------- helpers


def c_arg(p: Buffer | Var, value: object) -> object:
    """Scalars go in as plain values (the ABI rounds 16-bit floats once, to their bits)."""
    return value


def run_c(module: cbackend.CModule, f: PrimFunc, args: dict[str, object]) -> None:
    module.kernel(f.name)(*[c_arg(p, args[p.name]) for p in f.params])


def copy_args(args: dict[str, object]) -> dict[str, object]:
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}


def bits_equal(want: np.ndarray, got: np.ndarray) -> bool:
    """Bitwise equality of two arrays, where any NaN equals any NaN (payloads aside)."""
    if want.dtype.kind in "fV" or want.dtype == D.bfloat16.np:
        wn, gn = np.isnan(want.astype(np.float64)), np.isnan(got.astype(np.float64))
        uint = f"u{want.itemsize}"
        return bool((wn == gn).all() and (want.view(uint)[~wn] == got.view(uint)[~gn]).all())
    return want.tobytes() == got.tobytes()


def assert_matches_interp(module: cbackend.CModule, f: PrimFunc, args: dict[str, object]) -> None:
    want, got = copy_args(args), copy_args(args)
    interpret(f, want)
    run_c(module, f, got)
    for p in f.params:
        if isinstance(p, Buffer):
            assert bits_equal(want[p.name], got[p.name]), \
                f"{f.name}: {p.name} differs\nwant {want[p.name]!r}\ngot  {got[p.name]!r}"


def values(dtype: D, n: int = N, seed: int = 0, special: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype is D.bool:
        return rng.integers(0, 2, n).astype(bool)
    if dtype in INT_DTYPES:
        lo, hi = int_range(dtype)
        out = rng.integers(lo, hi, n, dtype=dtype.np, endpoint=True)
        out[:4] = [lo, hi, 0, 1] if special else out[:4]
        return out
    with np.errstate(all="ignore"):
        out = (rng.standard_normal(n) * 10).astype(dtype.np)
        if special:
            out[:6] = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.5]).astype(dtype.np)
    return out


def elementwise(name: str, dtypes: tuple[D, ...], fn, n: int = N) -> PrimFunc:
    """`O[i] = fn(A0[i], A1[i], ...)`."""
    i = Var("i")
    ins = [buffer(f"A{k}", dt, (n,)) for k, dt in enumerate(dtypes)]
    value = fn(*[b[i] for b in ins])
    out = buffer("O", value.dtype, (n,))
    return PrimFunc(name, (*ins, out), for_(i, n, store(out, value, i)))


def run_elementwise(module: cbackend.CModule, f: PrimFunc, *arrays: np.ndarray) -> np.ndarray:
    out_param = f.params[-1]
    out = np.zeros(N, out_param.dtype.np)
    module.kernel(f.name)(*arrays, out)
    return out


# ----------------------------------------------------------------------------- emitted C


def test_emitted_c_is_readable(cache: Path) -> None:
    A, B = buffer("A", D.float32, (8, 4)), buffer("B", D.float32, (8, 4))
    i, j = Var("i"), Var("j")
    body = for_(i, 8, for_(j, 4, store(B, A[i, j] * 2.0 + 1.0, i, j)), ForKind.parallel)
    f = PrimFunc("scale", (A, B), body)
    src = emit_c(f)
    assert "int32_t scale(float *A, float *B) {" in src
    assert "    #pragma omp parallel for schedule(static)\n" \
           "    for (int32_t i = 0; i < 8; ++i) {\n" \
           "        for (int32_t j = 0; j < 4; ++j) {\n" \
           "            B[i * 4 + j] = (A[i * 4 + j] * 2.0f) + 1.0f;\n" in src
    assert "anv_" not in src  # no helper needed here
    a = np.arange(32, dtype=np.float32).reshape(8, 4)
    b = np.zeros_like(a)
    compile_funcs(f, cache_dir=cache).kernel("scale")(a, b)
    assert (b == a * 2 + 1).all()


def test_ir_names_become_c_identifiers(cache: Path) -> None:
    weird = ["x y", "for", "exp", "1st", "é", 'q"uote', "lane", "status", "INT32_MAX", "anv_x"]
    bufs = [buffer(name, D.float32, (2,)) for name in weird]
    v = Var("int")
    body = LetStmt(v, IntImm(1), seq(*[store(b, call("exp", b[v]), 0) for b in bufs]))
    f = PrimFunc("main", tuple(bufs), body)
    src = emit_c(f)
    for text in ("float *x_y", "float *for_1", "float *exp_1", "float *v_1st", "float *lane_1",
                 "float *status_1", "float *v_INT32_MAX", "float *v_anv_x", "const int32_t int_1",
                 "int32_t main_1("):
        assert text in src
    module = compile_funcs(f, cache_dir=cache)
    arrays = [np.array([0.0, 1.0], np.float32) for _ in bufs]
    module.kernel("main")(*arrays)
    assert all(a[0] == np.float32(np.e) for a in arrays)


# ----------------------------------------------------------------------------- arithmetic


def test_float32_arithmetic_is_exact(cache: Path) -> None:
    ops = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
           "div": lambda a, b: a / b, "fma_like": lambda a, b: a * b + a}
    funcs = [elementwise(k, (D.float32, D.float32), fn) for k, fn in ops.items()]
    module = compile_funcs(funcs, cache_dir=cache)
    a, b = values(D.float32, seed=1), values(D.float32, seed=2)
    with np.errstate(all="ignore"):
        for f, fn in zip(funcs, ops.values(), strict=True):
            assert bits_equal(fn(a, b), run_elementwise(module, f, a, b)), f.name


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_integer_ops_wrap_and_divide_like_numpy(dtype: D, cache: Path) -> None:
    bits = dtype.bits
    ops = {
        "add": (lambda a, b: a + b, np.add), "sub": (lambda a, b: a - b, np.subtract),
        "mul": (lambda a, b: a * b, np.multiply), "neg": (lambda a, b: -a, lambda a, b: -a),
        "bitnot": (lambda a, b: ~a, lambda a, b: ~a), "xor": (lambda a, b: a ^ b, np.bitwise_xor),
        "shl": (lambda a, b: a << floormod(b, bits), lambda a, b: a << (b % bits)),
        "shr": (lambda a, b: a >> floormod(b, bits), lambda a, b: a >> (b % bits)),
        "floordiv": (floordiv, np.floor_divide), "floormod": (floormod, np.mod),
        "truncdiv": (truncdiv, lambda a, b: np.array(
            [abs(int(x)) // abs(int(y)) * (1 if (x < 0) == (y < 0) else -1)
             for x, y in zip(a, b, strict=True)]).astype(dtype.np)),
        "truncmod": (truncmod, lambda a, b: np.fmod(a, b)),
        "min": (min_, np.minimum), "max": (max_, np.maximum),
        # literals: `~1` and `5 >> 40` must be computed at the dtype's width
        "literals": (lambda a, b: (~const(1, dtype) >> const(bits - 2, dtype))
                     ^ (truncdiv(const(7, dtype), const(3, dtype)) >> const(bits - 1, dtype)),
                     lambda a, b: np.full_like(a, (~np.array(1, dtype.np)) >> (bits - 2))),
        "abs": (lambda a, b: call("abs", a), np.abs),
        "popcount": (lambda a, b: call("popcount", a),
                     lambda a, b: np.bitwise_count(a.view(f"u{a.itemsize}")).astype(dtype.np)),
    }
    funcs = [elementwise(k, (dtype, dtype), fn) for k, (fn, _) in ops.items()]
    module = compile_funcs(funcs, cache_dir=cache)
    a, b = values(dtype, seed=3), values(dtype, seed=4)
    lo = int_range(dtype)[0]
    b[b == 0] = 3
    if dtype.is_signed:
        b[(a == lo) & (b == -1)] = 5
    with np.errstate(all="ignore"):
        for f, (_, ref) in zip(funcs, ops.values(), strict=True):
            want = np.asarray(ref(a, b)).astype(dtype.np)
            assert bits_equal(want, run_elementwise(module, f, a, b)), f.name


def test_float_min_max_are_ieee_2019(cache: Path) -> None:
    pairs = [(0.0, -0.0), (-0.0, 0.0), (np.nan, 1.0), (1.0, np.nan), (-np.inf, 3.0),
             (2.0, 1.0), (-0.0, -0.0)]
    a = np.array([p[0] for p in pairs] * 10)[:N]
    b = np.array([p[1] for p in pairs] * 10)[:N]
    for dtype in FLOATS:
        funcs = [elementwise(f"min_{dtype.value}", (dtype, dtype), min_),
                 elementwise(f"max_{dtype.value}", (dtype, dtype), max_)]
        module = compile_funcs(funcs, cache_dir=cache)
        x, y = a.astype(dtype.np), b.astype(dtype.np)
        lo, hi = run_elementwise(module, funcs[0], x, y), run_elementwise(module, funcs[1], x, y)
        assert np.signbit(lo[0]) and np.signbit(lo[1]) and not np.signbit(hi[0])
        assert np.isnan(lo[2]) and np.isnan(lo[3]) and np.isnan(hi[2]) and np.isnan(hi[3])
        assert bits_equal(np.minimum(x[4:7], y[4:7]), lo[4:7])
        assert bits_equal(np.maximum(x[4:7], y[4:7]), hi[4:7])


@pytest.mark.parametrize("dtype", HALF)
def test_half_arithmetic_rounds_every_operation(dtype: D, cache: Path) -> None:
    ops = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
           "div": lambda a, b: a / b, "chain": lambda a, b: (a * b + a) / b - a,
           "sqrt": lambda a, b: call("sqrt", a), "cmp": lambda a, b: select(a < b, a, -b),
           "neg": lambda a, b: -a}
    funcs = [elementwise(k, (dtype, dtype), fn) for k, fn in ops.items()]
    module = compile_funcs(funcs, cache_dir=cache)
    args = {"A0": values(dtype, seed=5), "A1": values(dtype, seed=6)}
    for f in funcs:
        assert_matches_interp(module, f, {**args, "O": np.zeros(N, dtype.np)})


# ----------------------------------------------------------------------------- casts


def test_casts_between_all_dtypes_match_interpreter(cache: Path) -> None:
    dtypes = (D.bool, *INT_DTYPES, *FLOATS)
    funcs, cases = [], []
    for src in dtypes:
        for dst in dtypes:
            funcs.append(elementwise(f"cast_{src.value}_{dst.value}", (src,),
                                     lambda a, dst=dst: cast(dst, a)))
            x = values(src, seed=7, special=False)
            if is_float(src) and dst in INT_DTYPES:  # in range, so not undefined behaviour
                lo, hi = int_range(dst)
                x = np.clip(np.nan_to_num(x.astype(np.float64)), max(lo, -1e4), min(hi, 1e4))
                x = x.astype(src.np)
            cases.append({"A0": x, "O": np.zeros(N, dst.np)})
    module = compile_funcs(funcs, cache_dir=cache)
    for f, args in zip(funcs, cases, strict=True):
        assert_matches_interp(module, f, args)


def test_casts_round_once(cache: Path) -> None:
    """Conversions that a naive double rounding (through float32) gets wrong."""
    f64_f16 = elementwise("f64_f16", (D.float64,), lambda a: cast(D.float16, a))
    f64_bf16 = elementwise("f64_bf16", (D.float64,), lambda a: cast(D.bfloat16, a))
    i64_bf16 = elementwise("i64_bf16", (D.int64,), lambda a: cast(D.bfloat16, a))
    u64_bf16 = elementwise("u64_bf16", (D.uint64,), lambda a: cast(D.bfloat16, a))
    module = compile_funcs([f64_f16, f64_bf16, i64_bf16, u64_bf16], cache_dir=cache)
    x = np.full(N, 1 + 2**-11 + 2**-40)
    assert run_elementwise(module, f64_f16, x)[0] == 1 + 2**-10
    x = np.full(N, 1 + 2**-8 + 2**-40)
    assert float(run_elementwise(module, f64_bf16, x)[0]) == 1 + 2**-7
    x = np.full(N, 2**30 + 2**22 + 1, np.int64)
    assert float(run_elementwise(module, i64_bf16, x)[0]) == 2**30 + 2**23
    x = np.full(N, -(2**62 + 2**54 + 1), np.int64)
    assert float(run_elementwise(module, i64_bf16, x)[0]) == -(2**62 + 2**55)
    x = np.full(N, 2**64 - 1, np.uint64)
    assert float(run_elementwise(module, u64_bf16, x)[0]) == 2.0**64


# ----------------------------------------------------------------------------- storage dtypes


def test_storage_dtypes_decode_encode_and_reinterpret_bit_exact(cache: Path) -> None:
    """Every byte of every minifloat/int4/int2 decoded, a dense float32 grid (and float64,
    float16, bfloat16) encoded, bits reinterpreted: byte for byte against ml_dtypes."""
    rng = np.random.default_rng(11)
    cases = [*storage_cases.decode_cases(), *storage_cases.encode_cases(rng),
             *storage_cases.reinterpret_cases(rng)]
    module = compile_funcs([c.func for c in cases], cache_dir=cache)
    storage_cases.check(cases, lambda f, x, out: module.kernel(f.name)(x, out))


def test_storage_casts_match_interpreter(cache: Path) -> None:
    """Every cast with a storage-only dtype on either side."""
    rng = np.random.default_rng(12)
    funcs, cases = [], []
    for src in SUPPORTED_DTYPES:
        for dst in SUPPORTED_DTYPES:
            if src == dst or not (is_storage(src) or is_storage(dst)):
                continue
            funcs.append(elementwise(f"cast_{src.value}_{dst.value}", (src,),
                                     lambda a, dst=dst: cast(dst, a)))
            if is_storage(src):
                x = storage_cases.cast_inputs(src, dst, N, rng)
            else:
                x = values(src, seed=8)
                if is_float(src) and (dst in INT_DTYPES or is_storage(dst) and dst.is_int):
                    lo, hi = int_range(dst)
                    x = np.clip(np.nan_to_num(x.astype(np.float64)), lo, hi).astype(src.np)
            cases.append({"A0": x, "O": np.zeros(N, dst.np)})
    module = compile_funcs(funcs, cache_dir=cache)
    for f, args in zip(funcs, cases, strict=True):
        want, got = copy_args(args), copy_args(args)
        interpret(f, want)
        run_c(module, f, got)
        assert want["O"].tobytes() == got["O"].tobytes(), f.name


def test_storage_kernel_matches_interpreter(cache: Path) -> None:
    f = parse(storage_cases.MIXED)
    module = compile_funcs([f], cache_dir=cache)
    assert_matches_interp(module, f, storage_cases.mixed_args(np.random.default_rng(13)))


# ----------------------------------------------------------------------------- intrinsics

EXACT = ("sqrt", "floor", "ceil", "trunc", "round", "abs", "erf", "isnan", "isinf",
         "isfinite")
TRANSCENDENTAL = ("exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan",
                  "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh")


@pytest.mark.parametrize("dtype", FLOATS)
def test_exact_intrinsics_match_interpreter(dtype: D, cache: Path) -> None:
    funcs = [elementwise(op, (dtype,), lambda a, op=op: call(op, a)) for op in EXACT]
    funcs += [elementwise(op, (dtype, dtype), lambda a, b, op=op: call(op, a, b))
              for op in ("fmod", "copysign")]
    module = compile_funcs(funcs, cache_dir=cache)
    x = values(dtype, seed=8)
    x[6:12] = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 3.5]).astype(dtype.np)  # round half even
    y = values(dtype, seed=9)
    for f in funcs:
        args = {"A0": x, "A1": y} if len(f.params) == 3 else {"A0": x}
        assert_matches_interp(module, f, {**args, "O": np.zeros(N, f.params[-1].dtype.np)})


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in units in the last place between same-typed float arrays."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    same = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))
    width = {2: np.int16, 4: np.int32, 8: np.int64}[a.itemsize]
    ia = a.view(width).astype(object)
    ib = b.view(width).astype(object)
    dist = np.array([abs(int(p) - int(q)) if (p < 0) == (q < 0) else 10**9
                     for p, q in zip(ia, ib, strict=True)], dtype=object)
    return np.where(same, 0, dist)


@pytest.mark.parametrize("dtype", FLOATS)
def test_transcendental_intrinsics_are_close(dtype: D, cache: Path) -> None:
    """libm and numpy's own SIMD float32 functions differ by an ulp or two."""
    funcs = [elementwise(op, (dtype,), lambda a, op=op: call(op, a)) for op in TRANSCENDENTAL]
    funcs += [elementwise(op, (dtype, dtype), lambda a, b, op=op: call(op, a, b))
              for op in ("pow", "atan2", "hypot")]
    module = compile_funcs(funcs, cache_dir=cache)
    rng = np.random.default_rng(10)
    x = rng.uniform(-0.95, 0.95, N).astype(dtype.np)
    pos = rng.uniform(1.05, 8, N).astype(dtype.np)
    for f in funcs:
        arg = pos if f.name in ("log", "log2", "log10", "acosh", "pow") else x
        args = {"A0": arg, "O": np.zeros(N, dtype.np)}
        if len(f.params) == 3:
            args["A1"] = x
        want, got = copy_args(args), copy_args(args)
        interpret(f, want)
        run_c(module, f, got)
        assert _ulps(want["O"], got["O"]).max() <= 4, f.name


# ----------------------------------------------------------------------------- vectors, lets


def test_vector_loads_stores_ramp_broadcast(cache: Path) -> None:
    A, B = buffer("A", D.float32, (4, 8)), buffer("B", D.float32, (4, 8))
    i, j = Var("i"), Var("j")
    ramp = Ramp(j * 4, IntImm(1), 4)
    value = A[i, ramp] * Broadcast(const(3.0), 4) + cast(D.float32, Ramp(IntImm(0), IntImm(2), 4))
    f = PrimFunc("vec", (A, B), for_(i, 4, for_(j, 2, store(B, value, i, ramp)),
                                     ForKind.vectorized))
    rev = Ramp(IntImm(7), IntImm(-1), 8)
    g = PrimFunc("reverse", (B,), store(B, B[0, rev], 0, Ramp(IntImm(0), IntImm(1), 8)))
    same = Ramp(IntImm(0), IntImm(0), 4)  # every lane writes B[0, 0]: the last lane wins
    h = PrimFunc("collide", (B,), store(B, cast(D.float32, Ramp(IntImm(1), IntImm(1), 4)),
                                        0, same))
    module = compile_funcs([f, g, h], cache_dir=cache)
    a = np.arange(32, dtype=np.float32).reshape(4, 8)
    b = np.zeros_like(a)
    module.kernel("vec")(a, b)
    assert (b == a * 3 + np.tile([0, 2, 4, 6], 2)).all()
    args = {"B": np.arange(32, dtype=np.float32).reshape(4, 8)}
    for func in (g, h):
        assert_matches_interp(module, func, args)


def test_let_select_and_vector_let(cache: Path) -> None:
    A, O = buffer("A", D.int32, (N,)), buffer("O", D.int32, (N,))
    i, x, v = Var("i"), Var("x"), Var("v", D.int32, 4)
    let = Let(x, A[i] * 3, select(x > 10, x - 10, -x))
    f = PrimFunc("let", (A, O), for_(i, N, store(O, let, i)))
    vec = Ramp(IntImm(0), IntImm(1), 4)
    body = LetStmt(v, A[vec] + Broadcast(IntImm(1), 4), store(O, v * v, vec))
    g = PrimFunc("vlet", (A, O), body)
    module = compile_funcs([f, g], cache_dir=cache)
    a = np.arange(-20, 44, dtype=np.int32)
    o = np.zeros(N, np.int32)
    module.kernel("let")(a, o)
    assert (o == np.where(a * 3 > 10, a * 3 - 10, -a * 3)).all()
    module.kernel("vlet")(a, o)
    assert (o[:4] == (a[:4] + 1) ** 2).all()


# ----------------------------------------------------------------------------- statements


def test_allocate_on_stack_and_heap(cache: Path) -> None:
    n, i = Var("n"), Var("i")
    A, O = buffer("A", D.float32, (n,)), buffer("O", D.float32, (n,))

    def through(scope: str, shape: tuple, name: str) -> PrimFunc:
        T = buffer("T", D.float32, shape, scope)
        body = Allocate(T, seq(for_(i, n, store(T, A[i] * 2.0, i)),
                               for_(i, n, store(O, T[i] + 1.0, i))))
        return PrimFunc(name, (A, O, n), body)

    funcs = [through("local", (16,), "stack"), through("global", (100_000,), "big"),
             through("global", (n,), "dynamic")]
    module = compile_funcs(funcs, cache_dir=cache)
    assert "float T[16];  /* local */" in module.source
    assert module.source.count("malloc(") == 2 and module.source.count("free(") == 2
    for f in funcs:
        a = np.arange(16, dtype=np.float32)
        o = np.zeros(16, np.float32)
        module.kernel(f.name)(a, o, 16)
        assert (o == a * 2 + 1).all(), f.name


def test_assert_returns_its_index_everywhere(cache: Path) -> None:
    n, i = Var("n"), Var("i")
    O = buffer("O", D.int32, (8,))
    big = buffer("T", D.int32, (n,))
    ok = Assert(CmpOp(CmpKind.ge, n, IntImm(0)), "n >= 0")
    body = seq(
        ok,
        IfThenElse(CmpOp(CmpKind.eq, n, IntImm(1)), Assert(const(False), "top level")),
        Allocate(big, seq(
            store(big, IntImm(7), 0),
            IfThenElse(CmpOp(CmpKind.eq, n, IntImm(2)), Assert(const(False), "under malloc")),
            store(O, big[0], 0))),
        for_(i, 8, seq(
            store(O, i, i),
            IfThenElse(and_(CmpOp(CmpKind.eq, n, IntImm(3)), CmpOp(CmpKind.eq, i, IntImm(5))),
                       Assert(const(False), "in a parallel loop"))), ForKind.parallel),
    )
    f = PrimFunc("checks", (O, n), body)
    kernel = compile_funcs(f, cache_dir=cache).kernel("checks")
    o = np.zeros(8, np.int32)
    kernel(o, 4)
    assert (o == np.arange(8)).all()
    for n_value, message in ((1, "top level"), (2, "under malloc"), (3, "in a parallel loop")):
        with pytest.raises(ExecutionError, match=message):
            kernel(np.zeros(8, np.int32), n_value)


def test_if_else_evaluate_and_scalar_params(cache: Path) -> None:
    funcs = []
    for dt in (D.bool, *INT_DTYPES, *FLOATS):
        s, O = Var("s", dt), buffer("O", dt, (2,))
        cond = CmpOp(CmpKind.ne, s, const(0, dt)) if dt is not D.bool else s
        body = seq(Evaluate(s), IfThenElse(cond, store(O, s, 0), store(O, s, 1)))
        funcs.append(PrimFunc(f"param_{dt.value}", (s, O), body))
    module = compile_funcs(funcs, cache_dir=cache)
    for f in funcs:
        dt = f.params[0].dtype
        value = True if dt is D.bool else (-3 if dt.is_signed and dt in INT_DTYPES else 5)
        if is_float(dt):
            value = -2.5
        assert_matches_interp(module, f, {"s": value, "O": np.zeros(2, dt.np)})




def test_barrier_is_a_comment(cache: Path) -> None:
    f = parse(BARRIER_KERNEL)
    src = emit_c(f)
    assert src.count("/* barrier(): __syncthreads() on a GPU") == 2
    module = compile_funcs([f], cache_dir=cache)
    assert_matches_interp(module, f, {"A": np.arange(8, dtype=np.float32),
                                      "C": np.zeros(8, np.float32)})


def test_loop_kinds_and_bounds(cache: Path) -> None:
    O = buffer("O", D.int64, (16,))
    funcs = []
    for kind in (ForKind.unrolled, ForKind.vectorized, ForKind.serial):
        i = Var("i")
        funcs.append(PrimFunc(f"k_{kind.value}", (O,), for_(i, 16, store(O, cast(
            D.int64, i) * 3, i), kind)))
    t = Var("t")
    funcs.append(PrimFunc("threads", (O,), For(t, IntImm(0), IntImm(16), ForKind.thread_binding,
                                                store(O, cast(D.int64, t), t), "threadIdx.x")))
    for dt, lo, extent in ((D.int32, 2**31 - 8, 8), (D.uint8, 250, 6), (D.int8, -128, 16),
                           (D.int64, -(2**63), 3), (D.int32, 3, -4), (D.uint64, 2**64 - 2, 2)):
        k = Var("k", dt)
        value = cast(D.int64, k) if dt is not D.uint64 else \
            cast(D.int64, k - IntImm(2**64 - 16, dt))
        index = floormod(cast(D.int32, k), IntImm(16))
        funcs.append(PrimFunc(f"bounds_{dt.value}_{extent}", (O,), For(
            k, IntImm(lo, dt), IntImm(extent, dt), ForKind.serial, store(O, value, index))))
    n, m = Var("n"), Var("m")
    funcs.append(PrimFunc("dynamic", (O, n), for_(
        m, floormod(n, 7) + 1, store(O, cast(D.int64, m), m), ForKind.parallel, min=n - 5)))
    module = compile_funcs(funcs, cache_dir=cache)
    for f in funcs:
        args = {"O": np.zeros(16, np.int64), "n": 12}
        assert_matches_interp(module, f, {k: v for k, v in args.items()
                                          if k in {p.name for p in f.params}})


def test_parallel_loop_runs_on_several_threads_of_one_pool(cache: Path) -> None:
    if (os.cpu_count() or 1) < 2 or os.environ.get("OMP_NUM_THREADS") == "1":
        pytest.skip("needs two CPUs")
    O, i = buffer("O", D.int32, (256,)), Var("i")
    f = PrimFunc("who", (O,), for_(i, 256, store(O, IntImm(0), i), ForKind.parallel))
    src = emit_c(f)
    assert "#pragma omp parallel for schedule(static)" in src
    # Record which OpenMP thread ran each iteration.
    src = src.replace("O[i] = 0;", "O[i] = omp_get_thread_num();")
    src = "int omp_get_thread_num(void);\n" + src
    path = build_shared_object(src, gcc_flags(), cache)
    lib = ctypes.CDLL(str(path))
    kernel = NativeKernel(f, ctypes.cast(lib.who, ctypes.c_void_p).value, lib)
    o = np.full(256, -1, np.int32)
    kernel(o)
    assert len(set(o.tolist())) > 1 and o.min() == 0
    threads = len(os.listdir("/proc/self/task"))
    for _ in range(20):
        kernel(o)
    assert len(os.listdir("/proc/self/task")) == threads  # a pool, not a thread per call


def test_parallel_kernel_is_correct(cache: Path) -> None:
    A, O = buffer("A", D.float32, (512, 128)), buffer("O", D.float32, (512,))
    i, j = Var("i"), Var("j")
    acc = buffer("acc", D.float32, (1,), "local")
    row = Allocate(acc, seq(store(acc, const(0.0), 0),
                            for_(j, 128, store(acc, acc[0] + A[i, j] * A[i, j], 0)),
                            store(O, call("sqrt", acc[0]), i)))
    f = PrimFunc("norms", (A, O), for_(i, 512, row, ForKind.parallel))
    a = np.random.default_rng(11).standard_normal((512, 128)).astype(np.float32)
    o = np.zeros(512, np.float32)
    compile_funcs(f, cache_dir=cache).kernel("norms")(a, o)
    want = np.zeros(512, np.float32)
    for j_ in range(128):  # the same float32 additions in the same order
        want = want + a[:, j_] * a[:, j_]
    assert bits_equal(np.sqrt(want), o)


# ----------------------------------------------------------------------------- differential

_INEXACT_UNARY = {op: ("sqrt", "floor", "ceil", "trunc", "round")[k % 5]
                  for k, op in enumerate(TRANSCENDENTAL)}


def _race_free(loop: For) -> bool:
    """Every buffer the body writes (other than its own allocations) is accessed only at
    `[..., var, ...]` in one fixed dimension, so iterations touch disjoint elements."""
    stores = {n.buffer.name for n in walk(loop.body) if isinstance(n, BufferStore)}
    stores -= {n.buffer.name for n in walk(loop.body) if isinstance(n, Allocate)}
    dims: dict[str, set[int]] = {}
    for n in walk(loop.body):
        if isinstance(n, (BufferLoad, BufferStore)) and n.buffer.name in stores:
            here = {k for k, ix in enumerate(n.indices) if ix == loop.var}
            dims[n.buffer.name] = dims.get(n.buffer.name, here) & here
    return all(dims.values())


def comparable(f: PrimFunc) -> PrimFunc:
    """`f` with the intrinsics libm rounds differently from numpy replaced by exact ones,
    and parallel loops whose iterations could race made serial."""

    def fix(n: object) -> object:
        if isinstance(n, Call) and is_float(n.args[0].dtype):
            if n.op in _INEXACT_UNARY:
                return Call(_INEXACT_UNARY[n.op], n.args, n.dtype)
            if n.op in ("pow", "atan2", "hypot"):
                return Call("copysign" if n.op == "pow" else "fmod", n.args, n.dtype)
        if isinstance(n, For) and n.kind is ForKind.parallel and not _race_free(n):
            return For(n.var, n.min, n.extent, ForKind.serial, n.body, n.thread)
        return None

    return transform(f, fix)


def _corpus(seeds: range, config: GenConfig | None = None) -> list[PrimFunc]:
    return [comparable(random_primfunc(s, config=config, name=f"r{s}")) for s in seeds]


def _compile_chunks(chunks: list[list[PrimFunc]], cache: Path, opt_level: int
                    ) -> list[cbackend.CModule]:
    with ThreadPoolExecutor(len(chunks)) as pool:
        return list(pool.map(lambda fs: compile_funcs(fs, opt_level, cache_dir=cache), chunks))


@pytest.mark.parametrize("opt_level,seeds,exotic", [(2, range(0, 90), False),
                                                    (0, range(1000, 1150), True)])
def test_random_programs_match_interpreter_bit_for_bit(opt_level: int, seeds: range,
                                                       exotic: bool, cache: Path) -> None:
    funcs = _corpus(seeds, GenConfig(exotic_names=exotic))
    half = len(funcs) // 2
    modules = _compile_chunks([funcs[:half], funcs[half:]], cache, opt_level)
    parallel = 0
    for k, f in enumerate(funcs):
        module = modules[0] if k < half else modules[1]
        assert_matches_interp(module, f, random_args(f, seeds[k]))
        parallel += any(isinstance(n, For) and n.kind is ForKind.parallel for n in walk(f.body))
    assert parallel >= len(funcs) // 40  # race-free parallel loops stay parallel


def test_differential_check_can_fail(cache: Path) -> None:
    """The harness notices a kernel that computes something else."""
    f = elementwise("off_by_one", (D.float32,), lambda a: a + 1.0)
    g = elementwise("off_by_one", (D.float32,), lambda a: a + 2.0)
    module = compile_funcs(g, cache_dir=cache)
    args = {"A0": values(D.float32), "O": np.zeros(N, np.float32)}
    with pytest.raises(AssertionError, match="O differs"):
        assert_matches_interp(module, f, args)  # interprets f, runs g


# ----------------------------------------------------------------------------- driver


def test_cache_hits_skip_gcc(cache: Path, monkeypatch: pytest.MonkeyPatch,
                             tmp_path: Path) -> None:
    f = elementwise("cached", (D.float32,), lambda a: a + 1.0)
    first = compile_funcs(f, cache_dir=tmp_path)
    assert first.path.parent == tmp_path and first.path.with_suffix(".c").read_text() == \
        first.source
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".c", ".so"]

    def no_gcc(*args: object, **kwargs: object) -> None:
        raise AssertionError("gcc ran on a cache hit")

    monkeypatch.setattr(subprocess, "run", no_gcc)
    again = compile_funcs(f, cache_dir=tmp_path)
    assert again.path == first.path
    x = np.ones(N, np.float32)
    assert (run_elementwise(again, f, x) == 2).all()
    monkeypatch.undo()
    other = compile_funcs(f, opt_level=0, cache_dir=tmp_path)
    assert other.path != first.path


def test_gcc_errors_are_internal_errors_naming_the_source(tmp_path: Path) -> None:
    with pytest.raises(CCompileError, match="error") as info:
        build_shared_object("int f(void) { return undeclared; }\n", gcc_flags(), tmp_path)
    assert isinstance(info.value, AnvilError)
    assert info.value.source_path is not None and info.value.source_path.exists()
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".so", ".tmp")]


def test_flags_and_clean_errors(cache: Path) -> None:
    exact = gcc_flags()
    for flag in ("-O2", "-march=native", "-ffp-contract=off", "-fno-fast-math", "-fopenmp",
                 "-fPIC", "-shared"):
        assert flag in exact
    assert "-ffast-math" in gcc_flags(fast_math=True)
    with pytest.raises(UnsupportedError):
        gcc_flags(opt_level=7)
    f = elementwise("fast", (D.float32, D.float32), lambda a, b: a * b + a)
    # Not loaded here: a fast-math shared object may switch the whole process to
    # flush-to-zero (gcc's crtfastmath), which would perturb every later test.
    module = compile_funcs(f, opt_level=3, cache_dir=cache)
    a, b = np.full(N, 1.5, np.float32), np.full(N, 2.0, np.float32)
    assert (run_elementwise(module, f, a, b) == 4.5).all()
    v = Var("v", D.float32, 4)
    with pytest.raises(UnsupportedError, match="vector scalar parameters"):
        emit_c(PrimFunc("vp", (v,), Evaluate(v)))
    with pytest.raises(UnsupportedError, match="two functions"):
        emit_c([f, f])
    with pytest.raises(VerifyError):
        emit_c(PrimFunc("bad", (), Evaluate(Var("undefined"))))
    with pytest.raises(UnsupportedError, match="no kernel named"):
        module.kernel("missing")



def test_masked_select_loop_at_gcc_O3(cache: Path) -> None:
    """gcc 12 at -O3 -march=native vectorised this PRelu loop for AVX-512 and dropped lanes
    (found by the node tests at -O3); the backend pins the vectoriser's cost model."""
    f = parse("""
func @prelu(X: float32[3, 4, 5], S: float32[3, 4, 5], Y: float32[3, 4, 5]) {
  for i in serial(0i64, 3i64) {
    for j in serial(0i64, 4i64) {
      for k in serial(0i64, 5i64) {
        let x = X[i, j, k] {
          Y[i, j, k] = select(x < 0.0, x * S[i, j, k], x)
        }
      }
    }
  }
}
""")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    s = rng.standard_normal((3, 4, 5)).astype(np.float32)
    for level in (2, 3):
        y = np.empty_like(x)
        compile_funcs([f], opt_level=level, cache_dir=cache).kernel("prelu")(x, s, y)
        np.testing.assert_array_equal(y, np.where(x < 0, x * s, x))
