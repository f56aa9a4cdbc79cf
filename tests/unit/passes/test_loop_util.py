"""Dependence and safety analyses shared by the loop passes."""

from __future__ import annotations

import pytest

from compiler.loop import For, parse
from compiler.passes.arith import Bounds
from compiler.passes.loop_util import NameSupply, independent, invariant, may_ub

HEAD = ("func @f(A: float32[8, 8], B: float32[8], I: int32[8], F: float8e4m3fn[8], "
        "Q: int4[8], n: int32) {\n")


def first_loop(body: str) -> For:
    f = parse(HEAD + body + "\n}\n")
    assert isinstance(f.body, For)
    return f.body


@pytest.mark.parametrize("body, ok", [
    ("for i in serial(0, 8) { B[i] = B[i] * 2.0 }", True),
    ("for i in serial(0, 8) { B[i] = A[i, 0] + A[0, i] }", True),
    ("for i in serial(1, 7) { B[i] = B[i - 1] }", False),           # carried dependence
    ("for i in serial(0, 8) { B[0] = B[0] + 1.0 }", False),         # reduction
    ("for i in serial(0, 8) { B[i % 4] = 1.0 }", False),            # not injective
    ("for i in serial(0, 8) { B[I[i] % 8] = 1.0 }", False),         # indirect
    ("for i in serial(0, 8) { A[n % 8, i] = 0.0 }", True),          # invariant other index
    ("for i in serial(0, 8) { for j in serial(0, 8) { A[i, j] = A[i, j] + 1.0 } }", True),
])
def test_independent(body: str, ok: bool) -> None:
    loop = first_loop(body)
    assert independent(loop.body, [loop.var]) is ok


@pytest.mark.parametrize("body, ub", [
    ("B[0] = float32(n // 2)", False),
    ("B[0] = float32(2 // n)", True),
    ("B[0] = float32(n << 3)", False),
    ("B[0] = float32(1 << n)", True),
    ("B[0] = B[n % 8]", False),
    ("B[0] = B[n]", True),
    ("B[0] = float32(int32(B[1]))", True),
    ("B[0] = float32(int32(F[1]))", True),       # minifloat -> int: NaN, inf, out of range
    ("B[0] = float32(uint8(F[1]))", True),
    ("Q[0] = int4(B[1])", True),                 # float -> narrow int: out of range
    ("Q[0] = int4(F[1])", True),
    ("B[0] = float32(F[1])", False),             # minifloat -> float is always defined
    ("B[0] = float32(int32(Q[1]))", False),      # narrow int -> int is always defined
    ("Q[0] = int4(I[1])", False),                # int -> narrow int wraps
])
def test_may_ub(body: str, ub: bool) -> None:
    f = parse(HEAD + body + "\n}\n")
    assert may_ub(f.body.value, Bounds(f), [p.name for p in f.params]) is ub  # type: ignore[attr-defined]


def test_fresh_names_avoid_everything_in_use() -> None:
    names = NameSupply(parse(HEAD + "for i in serial(0, 8) { B[i] = 0.0 }\n}\n"))
    assert names.fresh("i") == "i_1"
    assert names.fresh("i") == "i_2"
    assert names.fresh("A") == "A_1"
    assert names.fresh("k") == "k"


def test_barrier_is_never_loop_invariant() -> None:
    loop = first_loop("for i in serial(0, 8) { B[i] = 0.0\n eval barrier() }")
    (store, bar) = loop.body.stmts  # type: ignore[attr-defined]
    assert invariant(store.value, {loop.var}, set())
    assert not invariant(bar.value, {loop.var}, set())
