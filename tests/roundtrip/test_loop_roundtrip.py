"""parse(print(f)) == f for loop IR: hand-written programs, every literal, and random programs."""

from __future__ import annotations

import math
import random
import struct

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.dtypes import DType
from compiler.loop import (
    INT_DTYPES,
    THREAD_TAGS,
    Allocate,
    Buffer,
    Evaluate,
    FloatImm,
    For,
    ForKind,
    IntImm,
    PrimFunc,
    SeqStmt,
    Var,
    first_difference,
    int_range,
    parse,
    print_func,
    run,
    verify,
    walk,
)
from compiler.loop.ir import Assert, BufferStore, Call, Cast, IfThenElse, Let, LetStmt, Ramp
from compiler.loop.random_program import GenConfig, random_args, random_primfunc

HAND_WRITTEN = [
    """\
func @add(A: float32[4, 8], B: float32[4, 8], C: float32[4, 8]) {
  for i in serial(0, 4) {
    for j in vectorized(0, 8) {
      C[i, j] = A[i, j] + B[i, j]
    }
  }
}
""",
    """\
func @softmax_row(X: float32[n], Y: float32[n], n: int32) attrs {noalias = true, target = "llvm"} {
  alloc M: local float32[1] {
    M[0] = -inf
    for i in serial(0, n) {
      M[0] = max(M[0], X[i])
    }
    alloc S: local float32[1] {
      S[0] = 0.0
      for i in serial(0, n) {
        let e = exp(X[i] - M[0]) {
          Y[i] = e
          S[0] = S[0] + e
        }
      }
      for i in parallel(0, n) {
        Y[i] = Y[i] / S[0]
      }
    }
  }
}
""",
    """\
func @gpu(A: float16[64], B: float16[64]) {
  for bx in blockIdx.x(0, 4) {
    alloc tile: shared float16[16] {
      for tx in threadIdx.x(0, 16) {
        tile[tx] = A[bx * 16 + tx]
        if tx % 2 == 0 && tile[tx] > 0.0f16 {
          B[bx * 16 + tx] = tile[tx] * 2.0f16
        } else {
          B[bx * 16 + tx] = select(isnan(tile[tx]), 0.0f16, -tile[tx])
        }
      }
    }
  }
}
""",
    """\
func @ints("weird name": int8[4], out: uint32[4], k: int64) {
  for i in unrolled(0i64, 4i64) {
    out[i] = uint32("weird name"[i]) << 3u32 ^ ~uint32(k)
    assert truncmod(i, 4i64) == i % 4i64, "mod agrees on \\"non-negative\\" values"
  }
  out[ramp(0, 1, 4)] = out[ramp(0, 1, 4)] + broadcast((let t = 7u32 in t * t), 4)
  eval -(1.0f64) - -0.0f64 + float64(popcount(k))
  seq {
    eval k
  }
}
""",
]


@pytest.mark.parametrize("text", HAND_WRITTEN, ids=lambda t: t.split("(")[0][6:])
def test_hand_written_programs(text):
    f = parse(text)
    verify(f)
    assert print_func(f) == text
    assert parse(print_func(f)) == f


def _roundtrip(f: PrimFunc) -> None:
    g = parse(print_func(f))
    diff = first_difference(f, g)
    assert diff is None, f"{diff}\n{print_func(f)}"


def _literal_func(*values) -> PrimFunc:
    return PrimFunc("lits", (), SeqStmt(tuple(Evaluate(v) for v in values)))


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=str)
def test_integer_literals_of_every_dtype(dtype):
    lo, hi = int_range(dtype)
    f = _literal_func(*(IntImm(v, dtype) for v in {lo, lo + 1, -1 if lo else 0, 0, 1, hi}))
    verify(f)
    _roundtrip(f)


def test_bool_literals():
    _roundtrip(_literal_func(IntImm(0, DType.bool), IntImm(1, DType.bool)))


SPECIAL = [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, -1.5, 0.1, 1e-40, 5e-324, 3.4e38,
           65504.0, 6e-8, 1 / 3]


@pytest.mark.parametrize("dtype", [DType.float16, DType.bfloat16, DType.float32, DType.float64],
                         ids=str)
def test_special_float_literals(dtype):
    with np.errstate(all="ignore"):
        values = [float(np.float64(v).astype(dtype.np)) for v in SPECIAL]
    f = _literal_func(*(FloatImm(v, dtype) for v in values))
    verify(f)
    _roundtrip(f)


def _bits(v: float) -> bytes:
    return struct.pack("<d", v)


@given(st.floats(width=32), st.floats(width=16), st.floats(), st.integers(0, 2**16 - 1))
@settings(max_examples=300, deadline=None)
def test_every_float_value_roundtrips_exactly(f32, f16, f64, bf16_bits):
    bf16 = float(np.array([bf16_bits], np.uint16).view(ml_dtypes.bfloat16)[0])
    imms = [FloatImm(f32, DType.float32), FloatImm(f16, DType.float16),
            FloatImm(f64, DType.float64), FloatImm(bf16, DType.bfloat16)]
    f = _literal_func(*imms)
    verify(f)
    g = parse(print_func(f))
    for a, b in zip(f.body.stmts, g.body.stmts, strict=True):
        assert _bits(a.value.value) == _bits(b.value.value) and a.value.dtype == b.value.dtype


@given(st.lists(st.text(min_size=1, max_size=8), min_size=3, max_size=3, unique=True))
@settings(max_examples=100, deadline=None)
def test_any_names_roundtrip(names):
    a, b, c = names
    A = Buffer(a, DType.float32, (IntImm(4),))
    i = Var(b)
    body = For(i, IntImm(0), IntImm(4), ForKind.serial,
               LetStmt(Var(c, DType.float32), A[i], BufferStore(A, Var(c, DType.float32), (i,))))
    f = PrimFunc(c + a, (A,), body, ((b, a),))
    verify(f)
    _roundtrip(f)


def test_every_loop_kind_tag_and_scope():
    stmts = []
    for k, kind in enumerate(ForKind):
        tag = THREAD_TAGS[k % len(THREAD_TAGS)] if kind is ForKind.thread_binding else None
        stmts.append(For(Var(f"i{k}"), IntImm(0), IntImm(2), kind, Evaluate(Var(f"i{k}")), tag))
    for tag in THREAD_TAGS:
        stmts.append(For(Var("t"), IntImm(0), IntImm(2), ForKind.thread_binding,
                         Evaluate(Var("t")), tag))
    for scope in ("global", "shared", "local"):
        buf = Buffer("T", DType.bfloat16, (IntImm(2), IntImm(3)), scope)
        stmts.append(Allocate(buf, SeqStmt(())))
    f = PrimFunc("kinds", (), SeqStmt(tuple(stmts)))
    verify(f)
    _roundtrip(f)


def test_nested_sequence_shapes():
    a, b = Evaluate(IntImm(1)), Evaluate(IntImm(2))
    for body in (
        a, SeqStmt(()), SeqStmt((a,)), SeqStmt((a, b)), SeqStmt((SeqStmt((a, b)),)),
        SeqStmt((SeqStmt(()), a)), SeqStmt((a, SeqStmt((b,)), SeqStmt((SeqStmt(()),)))),
        IfThenElse(IntImm(1, DType.bool), SeqStmt((a,)), SeqStmt(())),
    ):
        f = PrimFunc("s", (), body)
        verify(f)
        _roundtrip(f)


def test_header_comments_are_ignored():
    f = parse(HAND_WRITTEN[0])
    text = print_func(f, header=["pipeline: simplify,unroll{max_extent=8}", "seed: 42"])
    assert text.startswith("# pipeline: simplify,unroll{max_extent=8}\n# seed: 42\n")
    assert parse(text) == f


# ----------------------------------------------------------------------------- random programs


def _check_random_program(f: PrimFunc, seed: int) -> None:
    verify(f)
    text = print_func(f)
    g = parse(text)
    diff = first_difference(f, g)
    assert diff is None, f"{diff}\n{text}"
    assert print_func(g) == text
    args = random_args(f, seed)
    again = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
    out1 = run(f, args)
    out2 = run(g, again)
    for name, arr in out1.items():
        assert arr.tobytes() == out2[name].tobytes(), f"nondeterministic {name}\n{text}"


@given(st.randoms(use_true_random=False), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_programs_roundtrip_and_run_deterministically(rng, seed):
    f = random_primfunc(rng, config=GenConfig(exotic_names=True))
    _check_random_program(f, seed)


def test_random_programs_are_reproducible_from_a_seed():
    assert random_primfunc(123) == random_primfunc(random.Random(123))
    assert random_primfunc(123) != random_primfunc(124)


def test_generator_covers_every_node_kind():
    seen: set[str] = set()
    for seed in range(150):
        f = random_primfunc(seed, max_depth=3)
        _check_random_program(f, seed) if seed < 40 else verify(f)
        for n in walk(f):
            seen.add(type(n).__name__)
            if isinstance(n, For):
                seen.add(f"For.{n.kind.value}")
            if isinstance(n, Allocate):
                seen.add(f"scope.{n.buffer.scope}")
            if isinstance(n, IfThenElse) and n.else_ is not None:
                seen.add("else")
            if hasattr(n, "lanes") and not isinstance(n, Buffer) and n.lanes > 1:
                seen.add("vector")
    expected = {
        "Allocate", "Assert", "BinOp", "Broadcast", "BufferLoad", "BufferStore", "Call", "Cast",
        "CmpOp", "Evaluate", "FloatImm", "For", "IfThenElse", "IntImm", "Let", "LetStmt",
        "Ramp", "Select", "SeqStmt", "UnOp", "Var", "else", "vector",
        *(f"For.{k.value}" for k in ForKind), "scope.local", "scope.shared", "scope.global",
    }
    assert expected <= seen, expected - seen
    assert {Assert, Call, Cast, Let, Ramp}  # imported kinds are the ones checked above
