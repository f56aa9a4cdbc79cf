"""compiler/passes/graph/bind_shapes.py: symbolic dims of main's params bound to integers,
types re-inferred everywhere, bad specs rejected in one line, outputs unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model
from compiler.graph.ir import Call, walk_functions
from compiler.passes.pipeline import parse_pipeline
from tests.unit.passes.graph.corpus_check import apply, assert_same_outputs, check_corpus, gir

RNG = np.random.default_rng(0)

TWO = """\
func @main(%x: float32[N, 4], %y: float32[4]) {
  %a = Add(%x, %y) : float32[N, 4]
  %r = ReduceSum(%a) {keepdims=1, noop_with_empty_axes=0} : float32[?, ?]
  return %r
}
"""


def _types(module) -> list[tuple]:
    return [o.type.shape for f in walk_functions(module.main) for b in f.body for o in b.outs]


def test_binds_the_batch_of_a_cnn() -> None:
    m = import_model("corpus/models/tiny_cnn.onnx")
    out = apply(m, 'bind_shapes{dims="N=2"}')
    assert [p.name for p in out.main.params] == ["x"]
    assert out.main.params[0].type.shape == (2, 3, 32, 32)
    assert all(all(isinstance(d, int) for d in s) for s in _types(out))
    assert out.main.results[0].type.shape == (2, 10)
    assert_same_outputs(m, out, [RNG.standard_normal((2, 3, 32, 32)).astype(np.float32)])


def test_empty_dims_only_reinfers() -> None:
    m = gir(TWO)
    out = apply(m, "bind_shapes")
    assert out.main.params == m.main.params
    assert out.main.results[0].type.shape == (1, 1)
    xs = [RNG.standard_normal((3, 4)).astype(np.float32), np.ones(4, np.float32)]
    assert_same_outputs(m, out, xs)


def test_subgraphs_are_retyped() -> None:
    m = gir("""\
func @main(%c: bool[], %x: float32[N, 2]) {
  %y = If(%c) {else_branch=func @else_branch() {
      %e = Neg(%x) : float32[N, 2]
      return %e
    }, then_branch=func @then_branch() {
      %t = Abs(%x) : float32[N, 2]
      return %t
    }} : float32[N, 2]
  %z = Relu(%y) : float32[N, 2]
  return %z
}
""")
    out = apply(m, 'bind_shapes{dims=" N = 5 "}')
    assert set(_types(out)) == {(5, 2)}
    x = RNG.standard_normal((5, 2)).astype(np.float32)
    for c in (True, False):
        assert_same_outputs(m, out, [np.array(c), x])


def test_pipeline_text_round_trips() -> None:
    p = parse_pipeline('bind_shapes{dims="N=1,seq=128"}', "graph")
    assert p.passes[0].arg_dict() == {"dims": "N=1,seq=128"}
    assert parse_pipeline(str(p), "graph") == p


@pytest.mark.parametrize("dims, message", [
    ("N", "bad dim binding 'N'"),
    ("N=x", "bad dim binding 'N=x'"),
    ("N=1,", "bad dim binding ''"),
    ("N=-2", "negative"),
    ("N=1,N=2", "bound twice"),
    ("M=1", "no parameter has dim M"),
    ("N=3", "contradict"),
])
def test_bad_dims_are_one_line_errors(dims: str, message: str) -> None:
    m = gir("""\
func @main(%x: float32[N], %y: float32[2]) {
  %a = Add(%x, %y) : float32[2]
  return %a
}
""")
    with pytest.raises(AnvilError) as err:
        apply(m, f'bind_shapes{{dims="{dims}"}}')
    text = str(err.value)
    assert message in text and "\n" not in text
    assert apply(m, 'bind_shapes{dims="N=2"}').main.params[0].type.shape == (2,)
    assert apply(m, 'bind_shapes{dims="N=1"}').main.params[0].type.shape == (1,)


def test_unbound_symbols_stay() -> None:
    m = gir("""\
func @main(%x: float32[B, S]) {
  %y = Relu(%x) : float32[B, S]
  return %y
}
""")
    out = apply(m, 'bind_shapes{dims="S=7"}')
    assert out.main.params[0].type.shape == ("B", 7)
    relu = out.main.body[0]
    assert isinstance(relu.expr, Call) and relu.outs[0].type.shape == ("B", 7)
    assert_same_outputs(m, out, [RNG.standard_normal((2, 7)).astype(np.float32)])


def test_light_and_node_models() -> None:
    check_corpus("bind_shapes")
