"""compiler/passes/graph/dce.py: unused bindings go (in subgraphs too), params and results
stay, and the interpreter computes the same outputs before and after."""

from __future__ import annotations

import numpy as np

from tests.unit.passes.graph.corpus_check import (
    all_ops,
    apply,
    assert_same_outputs,
    check_corpus,
    gir,
    ops,
)

RNG = np.random.default_rng(0)


def test_unused_chains_go_params_and_results_stay() -> None:
    m = gir("""\
func @main(%x: float32[3], %unused: float32[3]) {
  %c = const float32[3] [1.0, 2.0, 3.0]
  %dead1 = Mul(%x, %c) : float32[3]
  %dead2 = Exp(%dead1) : float32[3]
  %y = Add(%x, %c) : float32[3]
  %z = Neg(%y) : float32[3]
  return %z, %x, %y
}
""")
    out = apply(m, "dce")
    assert ops(out) == ["Add", "Neg"]
    assert out.main.params == m.main.params
    assert out.main.results == m.main.results
    xs = [RNG.standard_normal(3).astype(np.float32) for _ in range(2)]
    assert_same_outputs(m, out, xs)


def test_unused_random_values_go() -> None:
    m = gir("""\
func @main(%x: float32[2]) {
  %r = RandomNormal() {dtype=1, mean=0.0, scale=1.0, shape=[2]} : float32[2]
  %s = RandomUniformLike(%r) {high=1.0, low=0.0} : float32[2]
  %y = Relu(%x) : float32[2]
  return %y
}
""")
    out = apply(m, "dce")
    assert ops(out) == ["Relu"]
    assert_same_outputs(m, out, [RNG.standard_normal(2).astype(np.float32)])


def test_multi_output_call_stays_while_one_output_is_used() -> None:
    m = gir("""\
func @main(%x: float32[4]) {
  %k = const int64[1] [2]
  %v, %i = TopK(%x, %k) {axis=-1, largest=1, sorted=1} : float32[2], int64[2]
  return %i
}
""")
    out = apply(m, "dce")
    assert ops(out) == ["TopK"]
    assert_same_outputs(m, out, [RNG.standard_normal(4).astype(np.float32)])


def test_subgraphs_are_cleaned_and_free_outer_values() -> None:
    m = gir("""\
func @main(%x: float32[2], %n: int64[], %c: bool[]) {
  %only_inner = Exp(%x) : float32[2]
  %y = Loop(%n, %c, %x) {body=func @body(%i: int64[], %cond: bool[], %a: float32[2]) {
      %a2 = Add(%a, %x) : float32[2]
      %dead = Mul(%only_inner, %a) : float32[2]
      %r = RandomNormal() {dtype=1, mean=0.0, scale=1.0, shape=[2]} : float32[2]
      %cond2 = Identity(%cond) : bool[]
      return %cond2, %a2
    }} : float32[2]
  return %y
}
""")
    out = apply(m, "dce")
    assert all_ops(out) == ["Loop", "Add", "Identity"]
    body = dict(out.main.body[0].expr.attrs)["body"]
    assert [p.name for p in body.params] == ["i", "cond", "a"]
    x = RNG.standard_normal(2).astype(np.float32)
    for n in (0, 3):
        assert_same_outputs(m, out, [x, np.array(n), np.array(True)])


def test_if_branch_results_stay() -> None:
    m = gir("""\
func @main(%c: bool[], %x: float32[2]) {
  %y = If(%c) {else_branch=func @else_branch() {
      %e = Neg(%x) : float32[2]
      %unused = Abs(%x) : float32[2]
      return %e
    }, then_branch=func @then_branch() {
      return %x
    }} : float32[2]
  return %y
}
""")
    out = apply(m, "dce")
    assert all_ops(out) == ["If", "Neg"]
    x = RNG.standard_normal(2).astype(np.float32)
    for c in (True, False):
        assert_same_outputs(m, out, [np.array(c), x])


def test_light_and_node_models() -> None:
    check_corpus("dce")
