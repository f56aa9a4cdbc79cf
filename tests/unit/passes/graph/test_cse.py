"""compiler/passes/graph/cse.py: repeated constants and deterministic calls are computed once,
random and differing ones are not, and the interpreter computes the same outputs before and
after."""

from __future__ import annotations

import numpy as np

from compiler.graph.ir import Const
from tests.unit.passes.graph.corpus_check import (
    all_ops,
    apply,
    assert_same_outputs,
    check_corpus,
    gir,
    ops,
)

RNG = np.random.default_rng(0)


def _consts(module) -> list[str]:
    return [b.outs[0].name for b in module.main.body if isinstance(b.expr, Const)]


def test_repeated_calls_and_constants_merge() -> None:
    m = gir("""\
func @main(%x: float32[3]) {
  %c1 = const float32[3] [1.0, 2.0, 3.0]
  %c2 = const float32[3] [1.0, 2.0, 3.0]
  %a1 = Add(%x, %c1) : float32[3]
  %a2 = Add(%x, %c2) : float32[3]
  %e1 = Exp(%a1) : float32[3]
  %e2 = Exp(%a2) : float32[3]
  %y = Mul(%e1, %e2) : float32[3]
  return %y, %e2
}
""")
    out = apply(m, "cse")
    assert ops(out) == ["Add", "Exp", "Mul"]
    assert _consts(out) == ["c1"]
    assert [r.name for r in out.main.results] == ["y", "e1"]
    assert_same_outputs(m, out, [RNG.standard_normal(3).astype(np.float32)])


def test_differences_keep_both() -> None:
    m = gir("""\
func @main(%x: float32[2, 3]) {
  %i = const int64[1] [1]
  %f = const float32[1] [1.0]
  %z = const float32[1] [0.0]
  %nz = const float32[1] [-0.0]
  %s0 = Softmax(%x) {axis=0} : float32[2, 3]
  %s1 = Softmax(%x) {axis=1} : float32[2, 3]
  %a = Add(%s0, %s1) : float32[2, 3]
  %b = Add(%s1, %s0) : float32[2, 3]
  %p = Add(%a, %z) : float32[2, 3]
  %q = Add(%b, %nz) : float32[2, 3]
  %r = Add(%p, %f) : float32[2, 3]
  %u = Unsqueeze(%q, %i) : float32[2, 1, 3]
  return %r, %u
}
""")
    out = apply(m, "cse")
    assert out == m
    assert_same_outputs(m, out, [RNG.standard_normal((2, 3)).astype(np.float32)])


def test_random_calls_never_merge() -> None:
    m = gir("""\
func @main(%x: float32[2]) {
  %r1 = RandomNormal() {dtype=1, mean=0.0, scale=1.0, shape=[2]} : float32[2]
  %r2 = RandomNormal() {dtype=1, mean=0.0, scale=1.0, shape=[2]} : float32[2]
  %l1 = RandomNormalLike(%x) {mean=0.0, scale=1.0} : float32[2]
  %l2 = RandomNormalLike(%x) {mean=0.0, scale=1.0} : float32[2]
  %a = Add(%r1, %r2) : float32[2]
  %b = Add(%l1, %l2) : float32[2]
  %y = Sub(%a, %b) : float32[2]
  return %y
}
""")
    assert apply(m, "cse") == m


IFS = """\
func @main(%c: bool[], %x: float32[2]) {
  %y1 = If(%c) {else_branch=func @else_branch() {
      %e = Neg(%x) : float32[2]
      return %e
    }, then_branch=func @then_branch() {
      %t = BODY : float32[2]
      return %t
    }} : float32[2]
  %y2 = If(%c) {else_branch=func @else_branch() {
      %e = Neg(%x) : float32[2]
      return %e
    }, then_branch=func @then_branch() {
      %t = BODY : float32[2]
      return %t
    }} : float32[2]
  %y = Add(%y1, %y2) : float32[2]
  return %y
}
"""


def test_equal_subgraph_calls_merge() -> None:
    m = gir(IFS.replace("BODY", "Abs(%x)"))
    out = apply(m, "cse")
    assert ops(out) == ["If", "Add"]
    x = RNG.standard_normal(2).astype(np.float32)
    for c in (True, False):
        assert_same_outputs(m, out, [np.array(c), x])


def test_subgraph_calls_with_random_bodies_stay() -> None:
    m = gir(IFS.replace("BODY", "RandomNormalLike(%x) {mean=0.0, scale=1.0}"))
    assert ops(apply(m, "cse")) == ["If", "If", "Add"]


def test_inside_subgraphs() -> None:
    m = gir("""\
func @main(%x: float32[2], %n: int64[], %c: bool[]) {
  %y = Loop(%n, %c, %x) {body=func @body(%i: int64[], %cond: bool[], %a: float32[2]) {
      %k1 = const float32[] [0.5]
      %k2 = const float32[] [0.5]
      %m1 = Mul(%a, %k1) : float32[2]
      %m2 = Mul(%a, %k2) : float32[2]
      %a2 = Add(%m1, %m2) : float32[2]
      %cond2 = Identity(%cond) : bool[]
      return %cond2, %a2
    }} : float32[2]
  return %y
}
""")
    out = apply(m, "cse")
    assert all_ops(out) == ["Loop", "Mul", "Add", "Identity"]
    x = RNG.standard_normal(2).astype(np.float32)
    assert_same_outputs(m, out, [x, np.array(3), np.array(True)])


def test_light_and_node_models() -> None:
    check_corpus("cse")
