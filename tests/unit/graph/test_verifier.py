"""The graph verifier rejects each kind of malformed module with a clean message."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.dtypes import DType
from compiler.errors import VerifyError
from compiler.graph.ir import Binding, Call, Const, Function, Module, Tensor, TensorType, Var
from compiler.graph.parser import parse
from compiler.graph.verifier import verify

F32 = DType.float32


def _fn(text: str) -> Module:
    return parse(text)


GOOD = """
func @main(%x: float32[N, 3]) {
  %w = const float32[3] [1.0, 2.0, 3.0]
  %y = Add(%x, %w) : float32[N, 3]
  %z = Relu(%y) : float32[N, 3]
  return %z
}
"""


def test_good_module_verifies():
    verify(_fn(GOOD))


@pytest.mark.parametrize("bad, msg", [
    (GOOD.replace("%y = Add(%x, %w) : float32[N, 3]", "%y = Add(%x, %w) : float32[N, 4]"),
     r"declared float32\[N, 4\]"),
    (GOOD.replace("%y = Add(%x, %w) : float32[N, 3]", "%y = Add(%x, %w) : int32[N, 3]"),
     "declared int32"),
    (GOOD.replace("Relu(%y)", "Frob(%y)"), "unknown op 'Frob'"),
    (GOOD.replace("Relu(%y)", "Relu(%y) {alpha=1.0}"), "no attribute 'alpha'"),
    (GOOD.replace("Relu(%y)", "Relu(%y, %y)"), "takes 1..1 inputs"),
])
def test_rejections(bad, msg):
    with pytest.raises(VerifyError, match=msg):
        verify(_fn(bad))


def test_use_before_def_and_redefinition():
    x = Var("x", TensorType((3,), F32))
    y = Var("y", TensorType((3,), F32))
    use_before = Function("main", (x,), (Binding((y,), Call("Relu", (y,))),), (y,))
    with pytest.raises(VerifyError, match="used before it is defined"):
        verify(use_before)
    c = Binding((x,), Const(Tensor(np.zeros(3, np.float32))))
    with pytest.raises(VerifyError, match="defined twice"):
        verify(Function("main", (x,), (c,), (x,)))
    with pytest.raises(VerifyError, match="result %y is not defined"):
        verify(Function("main", (x,), (), (y,)))


def test_const_type_must_match_value():
    v = Var("c", TensorType((2,), F32))
    b = Binding((v,), Const(Tensor(np.zeros(3, np.float32))))
    with pytest.raises(VerifyError, match="declared float32\\[2\\]"):
        verify(Function("main", (), (b,), (v,)))


def test_subgraph_may_use_outer_values():
    text = """
func @main(%c: bool[], %x: float32[2]) {
  %y = If(%c) {else_branch=func @e() {
      %n = Neg(%x) : float32[2]
      return %n
    }, then_branch=func @t() {
      return %x
    }} : float32[2]
  return %y
}
"""
    verify(parse(text))
    m = parse(text)
    x = m.main.params[1]
    late = Var("late", x.type)
    sub = Function("t", (), (), (late,))
    call = m.main.body[0].expr
    attrs = tuple((k, sub if k == "then_branch" else v) for k, v in call.attrs)
    bad = Function("main", m.main.params,
                   (Binding(m.main.body[0].outs, Call("If", call.args, attrs)),
                    Binding((late,), Call("Neg", (x,)))), m.main.results)
    with pytest.raises(VerifyError, match="result %late is not defined"):
        verify(bad)
