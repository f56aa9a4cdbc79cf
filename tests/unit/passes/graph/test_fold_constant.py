"""compiler/passes/graph/fold_constant.py: which calls fold, which stay, and that the
interpreter computes the same outputs before and after."""

from __future__ import annotations

import numpy as np

from compiler.graph.ir import Call, Const
from tests.unit.passes.graph.corpus_check import (
    all_ops,
    apply,
    assert_same_outputs,
    check_corpus,
    gir,
    ops,
)

RNG = np.random.default_rng(0)


def test_chain_folds_and_reshape_becomes_static() -> None:
    m = gir("""\
func @main(%x: float32[N, 4]) {
  %a = const int64[2] [2, 2]
  %b = const int64[2] [1, 3]
  %c = Add(%a, %b) : int64[2]
  %s = Shape(%x) {start=1} : int64[1]
  %n = Concat(%c, %s) {axis=0} : int64[3]
  %r = Reshape(%x, %n) {allowzero=0} : float32[?, ?, ?]
  %q = Shape(%r) {start=0} : int64[3]
  %z = Relu(%r) : float32[?, ?, ?]
  return %z, %q
}
""")
    out = apply(m, "fold_constant")
    assert ops(out) == ["Reshape", "Relu"]
    assert out.main.results[0].type.shape == (3, 5, 4)
    q = next(b for b in out.main.body if b.outs[0].name == "q")
    assert isinstance(q.expr, Const) and q.expr.value.array.tolist() == [3, 5, 4]
    assert_same_outputs(m, out, [RNG.standard_normal((15, 4)).astype(np.float32)])


def test_shape_queries_fold_only_on_static_dims() -> None:
    m = gir("""\
func @main(%x: float32[N, 4, 0]) {
  %all = Shape(%x) {start=0} : int64[3]
  %tail = Shape(%x) {start=-2} : int64[2]
  %head = Shape(%x) {end=1, start=0} : int64[1]
  %size = Size(%x) : int64[]
  return %all, %tail, %head, %size
}
""")
    out = apply(m, "fold_constant")
    kinds = {b.outs[0].name: type(b.expr).__name__ for b in out.main.body}
    assert kinds == {"all": "Call", "tail": "Const", "head": "Call", "size": "Const"}
    assert_same_outputs(m, out, [np.zeros((2, 4, 0), np.float32)])


def test_folded_value_has_the_interpreter_type() -> None:
    m = gir("""\
func @main(%x: float16[2]) {
  %a = const float32[2] [1.5, -2.25]
  %h = Cast(%a) {round_mode="up", saturate=1, to=10} : float16[2]
  %y = Mul(%x, %h) : float16[2]
  return %y
}
""")
    out = apply(m, "fold_constant")
    assert ops(out) == ["Mul"]
    h = next(b for b in out.main.body if isinstance(b.expr, Const))
    assert h.expr.value.array.dtype == np.float16
    assert_same_outputs(m, out, [np.array([3, 4], np.float16)])


def test_max_bytes_keeps_large_outputs() -> None:
    m = gir("""\
func @main(%x: float32[]) {
  %shape = const int64[1] [1000]
  %big = ConstantOfShape(%shape) : float32[1000]
  %y = Mul(%big, %x) : float32[1000]
  return %y
}
""")
    x = [np.array(3, np.float32)]
    kept = apply(m, "fold_constant{max_bytes=3999}")
    assert ops(kept) == ["ConstantOfShape", "Mul"]
    folded = apply(m, "fold_constant{max_bytes=4000}")
    assert ops(folded) == ["Mul"]
    assert_same_outputs(m, kept, x)
    assert_same_outputs(m, folded, x)


def test_random_ops_never_fold() -> None:
    m = gir("""\
func @main(%x: float32[2]) {
  %r = RandomNormal() {dtype=1, mean=0.0, scale=1.0, shape=[2]} : float32[2]
  %c = const float32[2] [1.0, 2.0]
  %l = RandomUniformLike(%c) {high=1.0, low=0.0} : float32[2]
  %s = Add(%r, %l) : float32[2]
  %y = Add(%s, %x) : float32[2]
  return %y
}
""")
    out = apply(m, "fold_constant")
    assert ops(out) == ["RandomNormal", "RandomUniformLike", "Add", "Add"]


def test_runtime_errors_stay_in_the_program() -> None:
    m = gir("""\
func @main(%c: bool[]) {
  %t = const float32[3] [1.0, 2.0, 3.0]
  %i = const int64[] [7]
  %ok = const float32[] [0.0]
  %y = If(%c) {else_branch=func @else_branch() {
      %g = Gather(%t, %i) {axis=0} : float32[]
      return %g
    }, then_branch=func @then_branch() {
      return %ok
    }} : float32[]
  return %y
}
""")
    out = apply(m, "fold_constant")
    assert all_ops(out) == ["If", "Gather"]
    assert_same_outputs(m, out, [np.array(True)])


def test_subgraphs_fold_with_outer_constants() -> None:
    m = gir("""\
func @main(%x: float32[2], %n: int64[], %c: bool[]) {
  %k = const float32[2] [1.0, 2.0]
  %y = Loop(%n, %c, %x) {body=func @body(%i: int64[], %cond: bool[], %a: float32[2]) {
      %k2 = Mul(%k, %k) : float32[2]
      %a2 = Add(%a, %k2) : float32[2]
      %cond2 = Identity(%cond) : bool[]
      return %cond2, %a2
    }} : float32[2]
  return %y
}
""")
    out = apply(m, "fold_constant")
    assert all_ops(out) == ["Loop", "Add", "Identity"]
    x = RNG.standard_normal(2).astype(np.float32)
    assert_same_outputs(m, out, [x, np.array(3), np.array(True)])


def test_calls_with_subgraphs_stay() -> None:
    m = gir("""\
func @main() {
  %c = const bool[] [1]
  %a = const float32[] [1.0]
  %y = If(%c) {else_branch=func @else_branch() {
      return %a
    }, then_branch=func @then_branch() {
      %b = Neg(%a) : float32[]
      return %b
    }} : float32[]
  return %y
}
""")
    out = apply(m, "fold_constant")
    assert ops(out) == ["If"]
    then = dict(out.main.body[-1].expr.attrs)["then_branch"]
    assert [type(b.expr) for b in then.body] == [Const]
    assert_same_outputs(m, out, [])
    assert not any(isinstance(b.expr, Call) for b in then.body)


def test_fixed_point_in_one_run() -> None:
    m = gir("""\
func @main(%x: float32[6], %v: float32[1]) {
  %s = const int64[2] [2, 3]
  %r = Reshape(%x, %s) {allowzero=0} : float32[?, ?]
  %q = Shape(%r) {start=0} : int64[2]
  %one = const int64[] [1]
  %p = Gather(%q, %one) {axis=0} : int64[]
  %zero = const int64[1] [0]
  %u = Unsqueeze(%p, %zero) : int64[1]
  %e = Expand(%v, %u) : float32[?]
  %y = Add(%r, %e) : float32[?, ?]
  return %y
}
""")
    once = apply(m, "fold_constant")
    assert ops(once) == ["Reshape", "Expand", "Add"]
    assert once.main.results[0].type.shape == (2, 3)
    assert apply(once, "fold_constant") == once
    assert_same_outputs(m, once, [np.arange(6, dtype=np.float32), np.ones(1, np.float32)])


def test_light_and_node_models() -> None:
    check_corpus("fold_constant")
