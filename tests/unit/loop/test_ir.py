"""Loop-IR nodes, constructors, the traversal engine and exact numeric conversions."""

from __future__ import annotations

import math
import struct
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from compiler.dtypes import DType
from compiler.loop import (
    BinKind,
    BinOp,
    Broadcast,
    Buffer,
    BufferLoad,
    Call,
    Cast,
    CmpKind,
    CmpOp,
    Evaluate,
    FloatImm,
    For,
    ForKind,
    IntImm,
    Let,
    LetStmt,
    Node,
    PrimFunc,
    Ramp,
    RewriteError,
    Select,
    SeqStmt,
    UnOp,
    Var,
    assert_structural_equal,
    buffer,
    call,
    cast,
    children,
    const,
    first_difference,
    floordiv,
    for_,
    map_children,
    rewrite,
    select,
    store,
    substitute,
    transform,
    walk,
)
from compiler.loop.numeric import float_from_f64, float_from_ints, wrap_int

F32, F64, I32, I64 = DType.float32, DType.float64, DType.int32, DType.int64


# ----------------------------------------------------------------------------- nodes


def test_structural_equality_and_hash():
    def build():
        A = buffer("A", F32, [4])
        i = Var("i")
        return for_(i, 4, store(A, A[i] * 2.0, i), ForKind.vectorized)

    a, b = build(), build()
    assert a is not b and a == b and hash(a) == hash(b)
    assert build() != for_(Var("i"), 4, store(buffer("A", F32, [4]), 0.0, Var("i")))
    assert Var("x", I32) != Var("x", I64)
    assert {a: 1}[b] == 1


def test_float_immediates_compare_bitwise():
    assert FloatImm(-0.0) != FloatImm(0.0)
    assert FloatImm(float("nan")) == FloatImm(float("nan"))
    neg_nan = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000001))[0]
    assert FloatImm(neg_nan) == FloatImm(float("nan"))  # NaN immediates are canonical
    assert FloatImm(1.0, F32) != FloatImm(1.0, F64)
    assert hash(FloatImm(float("nan"))) == hash(FloatImm(math.nan))


def test_derived_dtypes_and_lanes():
    x = Var("x", F32)
    assert (x + x).dtype is F32 and (x + x).lanes == 1
    assert CmpOp(CmpKind.lt, x, x).dtype is DType.bool
    r = Ramp(IntImm(0), IntImm(1), 4)
    assert r.dtype is I32 and r.lanes == 4
    A = buffer("A", DType.float16, [8])
    load = A[r]
    assert load.dtype is DType.float16 and load.lanes == 4
    assert Broadcast(x, 8).lanes == 8
    assert Cast(I64, r).lanes == 4 and Cast(I64, r).dtype is I64
    assert Select(CmpOp(CmpKind.lt, x, x), x, x).dtype is F32
    assert Let(Var("y"), IntImm(1), x).dtype is F32
    assert call("isnan", x).dtype is DType.bool
    assert UnOp.__name__ and (-x).dtype is F32


def test_operators_coerce_python_numbers():
    i = Var("i", I64)
    assert i + 1 == BinOp(BinKind.add, i, IntImm(1, I64))
    assert 2 * i == BinOp(BinKind.mul, IntImm(2, I64), i)
    y = Var("y", F64)
    assert y / 2 == BinOp(BinKind.div, y, FloatImm(2.0, F64))
    assert (i < 3) == CmpOp(CmpKind.lt, i, IntImm(3, I64))
    assert i // 4 == floordiv(i, 4)
    assert select(i < 0, 0, i) == Select(i < 0, IntImm(0, I64), i)
    assert cast(F32, 3) == Cast(F32, IntImm(3))


def test_const_rounds_floats_and_checks_ints():
    assert const(0.1, F32) == FloatImm(float(np.float32(0.1)), F32)
    assert const(0.1) == const(0.1, F32)
    assert const(True) == IntImm(1, DType.bool)
    assert const(5, I64, lanes=4) == Broadcast(IntImm(5, I64), 4)
    with pytest.raises(ValueError):
        const(128, DType.int8)
    with pytest.raises(ValueError):
        const(-1, DType.uint32)


def test_primfunc_attrs_are_sorted_and_readable():
    f = PrimFunc("f", (), Evaluate(IntImm(0)), (("z", 1), ("a", "x")))
    assert f.attrs == (("a", "x"), ("z", 1))
    assert f.attr("z") == 1 and f.attr("missing", 7) == 7


def test_str_prints_text_form():
    i = Var("i")
    assert str(i * 2 + 1) == "i * 2 + 1"
    assert str(buffer("A", F32, [4])) == "A: float32[4]"


# ----------------------------------------------------------------------------- traversal


def test_map_children_keeps_identity_when_nothing_changes():
    e = Var("a") + Var("b") * 2
    assert map_children(e, lambda c: c) is e
    swapped = map_children(e, lambda c: Var("z") if c == Var("a") else c)
    assert swapped == Var("z") + Var("b") * 2


def test_children_and_walk_order():
    a, b = Var("a"), Var("b")
    e = (a + b) * IntImm(3)
    assert children(e) == [a + b, IntImm(3)]
    assert list(walk(e)) == [e, a + b, a, b, IntImm(3)]


def test_walk_sees_buffers_and_binders_unless_asked_not_to():
    A = buffer("A", F32, [4])
    i = Var("i")
    loop = for_(i, 4, store(A, 1.0, 0))
    kinds = Counter(type(n).__name__ for n in walk(loop))
    assert kinds["Var"] == 1 and kinds["Buffer"] == 1
    assert not any(isinstance(n, Var) for n in walk(loop, binders=False))


def test_transform_is_memoised_on_shared_subtrees():
    shared = Var("x") + 1
    e = shared * shared
    seen = Counter()

    def count(n: Node):
        seen[type(n).__name__] += 1
        return None

    assert transform(e, count) is e
    assert seen["BinOp"] == 2  # the shared `x + 1` once, the product once


def add_zero(n: Node):
    if isinstance(n, BinOp) and n.op is BinKind.add and n.b == IntImm(0):
        return n.a
    return None


def fold_add(n: Node):
    if isinstance(n, BinOp) and n.op is BinKind.add and isinstance(n.a, IntImm) \
            and isinstance(n.b, IntImm):
        return IntImm(n.a.value + n.b.value, n.dtype)
    return None


def mul_to_add(n: Node):
    if isinstance(n, BinOp) and n.op is BinKind.mul and n.b == IntImm(2):
        return n.a + n.a
    return None


def test_rewrite_reaches_a_fixpoint_and_counts_rules():
    x = Var("x")
    e = (x + (IntImm(1) + IntImm(-1))) + (IntImm(2) + IntImm(3)) * 2
    fired = Counter()
    out = rewrite(e, [add_zero, fold_add, mul_to_add], fired)
    assert out == x + IntImm(10)
    assert fired == Counter({"fold_add": 3, "add_zero": 1, "mul_to_add": 1})


def test_rewrite_inside_statements_leaves_binders_alone():
    i = Var("i")
    A = buffer("A", I32, [4])
    loop = for_(i, IntImm(2) + IntImm(2), store(A, i + 0, i))
    out = rewrite(loop, [add_zero, fold_add])
    assert out == for_(i, 4, store(A, i, i))


def test_rewrite_cycle_is_an_error():
    def flip(n: Node):
        if isinstance(n, BinOp) and n.op is BinKind.add:
            return BinOp(BinKind.add, n.b, n.a)
        return None

    with pytest.raises(RewriteError, match="no fixpoint"):
        rewrite(Var("a") + Var("b"), [flip], max_steps=50)


def test_substitute_replaces_uses_not_binders():
    i, n = Var("i"), Var("n")
    A = Buffer("A", I32, (n,))
    f = for_(i, n, store(A, i * n, i))
    out = substitute(f, {n: IntImm(8), i: IntImm(99)})
    assert isinstance(out, For) and out.var == i and out.extent == IntImm(8)
    assert out.body.buffer.shape == (IntImm(8),)
    assert out.body.value == IntImm(99) * IntImm(8)


def test_first_difference_names_the_path():
    A = buffer("A", F32, [4])
    a = SeqStmt((store(A, 1.0, 0), store(A, 2.0, 1)))
    b = SeqStmt((store(A, 1.0, 0), store(A, 2.5, 1)))
    assert first_difference(a, a) is None
    diff = first_difference(a, b)
    assert diff is not None and diff.startswith(".stmts[1].value.value")
    with pytest.raises(AssertionError, match="structural mismatch at .stmts\\[1\\]"):
        assert_structural_equal(a, b)
    assert "length 2 vs 1" in first_difference(a, SeqStmt(a.stmts[:1]))


def test_let_stmt_and_load_are_plain_nodes():
    x = Var("x", F32)
    A = buffer("A", F32, [2])
    s = LetStmt(x, A[0], store(A, x, 1))
    assert [type(c).__name__ for c in children(s)] == ["Var", "BufferLoad", "BufferStore"]
    assert isinstance(A[0], BufferLoad) and isinstance(call("exp", x), Call)


# ----------------------------------------------------------------------------- numerics


def _round_to_bits(x: Fraction, bits: int) -> Fraction:
    e = 0
    while Fraction(2) ** e > abs(x):
        e -= 1
    while Fraction(2) ** (e + 1) <= abs(x):
        e += 1
    scale = Fraction(2) ** (e - bits + 1)
    return round(x / scale) * scale


def test_bfloat16_conversions_round_once():
    rng = np.random.default_rng(0)
    # Values just off bfloat16 midpoints, where rounding twice goes wrong.
    mids = [(1 + (2 * k + 1) * 2.0**-8) * 2.0**e for k in range(0, 128, 7) for e in (-3, 0, 9)]
    xs = [m + d for m in mids for d in (2.0**-30, -(2.0**-30), 0.0)]
    xs += list(rng.standard_normal(200) * 1e3)
    got = float_from_f64(np.array(xs), DType.bfloat16).astype(np.float64)
    for x, g in zip(xs, got, strict=True):
        assert Fraction(float(g)) == _round_to_bits(Fraction(x), 8), x


def test_integers_to_half_floats_round_once():
    ints = [2**24 + 2**16 + 1, 2**24 + 2**16, -(2**30 + 2**22 + 5), 65519, 2049, 4097]
    got = float_from_ints(np.array(ints, np.int64), DType.bfloat16).astype(np.float64)
    for v, g in zip(ints, got, strict=True):
        assert Fraction(float(g)) == _round_to_bits(Fraction(v), 8)
    got16 = float_from_ints(np.array([2049, 4097, 65519, 65520], np.int64), DType.float16)
    assert got16.tolist()[:3] == [2048.0, 4096.0, 65504.0] and math.isinf(got16[3])


def test_wrap_int():
    assert wrap_int(128, DType.int8) == -128
    assert wrap_int(-1, DType.uint16) == 65535
    assert wrap_int(2**64 + 5, DType.int64) == 5
