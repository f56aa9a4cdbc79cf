"""InterpretEach at graph level: a pass that changes what `main` computes is named, with the
output index and the first differing position; tolerances, given inputs, skipped modules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from compiler.graph.ir import Binding, Call, Function, Module
from compiler.graph.parser import parse
from compiler.passes import InterpretEach, PassFailed, PassInfo, PassManager, base
from compiler.passes.graph_util import Emitter, map_functions
from compiler.passes.instruments import compare_graph_outputs

SRC = """\
func @main(%x: float32[2, 3], %k: int64[3]) {
  %r = Relu(%x) : float32[2, 3]
  %c = const float32[] [2.0]
  %m = Mul(%r, %c) : float32[2, 3]
  %n = Neg(%k) : int64[3]
  return %m, %n
}
"""
MODULE = parse(SRC)


def _register(monkeypatch: pytest.MonkeyPatch, name: str, fn: Any) -> None:
    info = PassInfo(name, "graph", f"test pass {name}", (), fn, "graph", module=f"tests.{name}")
    monkeypatch.setitem(base._REGISTRY, ("graph", name), info)


def _rename_op(old: str, new: str):  # type: ignore[no-untyped-def]
    def rewrite(fn: Function) -> Function:
        body = tuple(Binding(b.outs, Call(new, b.expr.args, b.expr.attrs), b.origin)
                     if isinstance(b.expr, Call) and b.expr.op == old else b for b in fn.body)
        return Function(fn.name, fn.params, body, fn.results)

    return lambda m: map_functions(m, rewrite)


def _scale_first_result(factor: float):  # type: ignore[no-untyped-def]
    def rewrite(module: Module) -> Module:
        main = module.main
        em = Emitter(main)
        y = em.call("Mul", [main.results[0], em.const(np.float32(factor))])[0]
        fn = Function(main.name, main.params, main.body + tuple(em.take()),
                      (y,) + main.results[1:])
        return Module((fn,), module.opset)

    return rewrite


def test_identity_passes_are_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "same", lambda m: m)
    inst = InterpretEach(seed=3)
    assert PassManager("same,same", instruments=[inst]).run(MODULE) is MODULE
    assert inst.skipped == [] and len(inst.reference["main"]) == 2
    x, k = inst.inputs["main"]
    assert x.dtype == np.float32 and k.dtype == np.int64 and np.abs(k).max() <= 4
    np.testing.assert_array_equal(inst.reference["main"][0], np.maximum(x, 0) * 2)


def test_wrong_float_pass_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "same", lambda m: m)
    _register(monkeypatch, "relu_to_abs", _rename_op("Relu", "Abs"))
    x = np.array([[1.0, -2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    k = np.arange(3, dtype=np.int64)
    with pytest.raises(PassFailed) as info:
        PassManager("same,relu_to_abs", instruments=[InterpretEach([x, k])]).run(MODULE)
    err = info.value
    assert err.pass_name == "relu_to_abs" and err.stage == "mismatch"
    assert str(err).startswith("pass relu_to_abs failed after [same]: @main changed meaning: "
                               "output 0 at [0, 1] differs: expected 0.0, got 4.0")


def test_wrong_integer_pass_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "neg_to_abs", _rename_op("Neg", "Abs"))
    args = {"x": np.ones((2, 3), np.float32), "k": np.array([0, 0, 5], np.int64)}
    with pytest.raises(PassFailed, match=r"output 1 at \[2\] differs: expected -5, got 5"):
        PassManager("neg_to_abs", instruments=[InterpretEach(args)]).run(MODULE)


def test_float_tolerance(monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "nudge", _scale_first_result(1 + 1e-6))
    PassManager("nudge", instruments=[InterpretEach()]).run(MODULE)  # within rtol=1e-4
    with pytest.raises(PassFailed, match="output 0 at .* differs"):
        PassManager("nudge", instruments=[InterpretEach(rtol=1e-8, atol=0.0)]).run(MODULE)
    _register(monkeypatch, "double", _scale_first_result(2.0))
    with pytest.raises(PassFailed, match="changed meaning"):
        PassManager("double", instruments=[InterpretEach(rtol=0.1)]).run(MODULE)


def test_a_pass_that_breaks_the_module_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def drop_result(module: Module) -> Module:
        main = module.main
        return Module((Function(main.name, main.params, main.body, main.results[:1]),))

    _register(monkeypatch, "drop_result", drop_result)
    with pytest.raises(PassFailed, match="1 outputs, expected 2"):
        PassManager("drop_result", instruments=[InterpretEach()]).run(MODULE)


def test_nan_positions_must_match() -> None:
    ref = [np.array([1.0, np.nan, np.inf], np.float32)]
    assert compare_graph_outputs(ref, [ref[0].copy()]) is None
    moved = [np.array([np.nan, 1.0, np.inf], np.float32)]
    assert compare_graph_outputs(ref, moved).startswith("output 0 at [0] differs")
    sign = [np.array([1.0, np.nan, -np.inf], np.float32)]
    assert "at [2]" in compare_graph_outputs(ref, sign)
    bits = [np.array([1.0, np.nan, np.inf], np.float32)]
    zero = [np.array([-0.0], np.float32)]
    assert compare_graph_outputs(ref, bits, 0.0, 0.0) is None
    assert compare_graph_outputs([np.zeros(1, np.float32)], zero) is None
    assert compare_graph_outputs([np.zeros(1, np.float32)], zero, 0.0, 0.0) is not None
    assert "dtype" in compare_graph_outputs(ref, [ref[0].astype(np.float64)])


def test_symbolic_params_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    module = parse(SRC.replace("float32[2, 3]", "float32[N, 3]"))
    _register(monkeypatch, "relu_to_abs", _rename_op("Relu", "Abs"))
    inst = InterpretEach()
    PassManager("relu_to_abs", instruments=[inst]).run(module)
    assert inst.skipped == ["main"] and inst.reference == {}
    given = InterpretEach({"x": -np.ones((4, 3), np.float32), "k": np.zeros(3, np.int64)})
    with pytest.raises(PassFailed, match="output 0 at \\[0, 0\\] differs"):
        PassManager("relu_to_abs", instruments=[given]).run(module)


def test_subgraph_changes_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    src = """\
func @main(%x: float32[2], %c: bool[]) {
  %y = If(%c) {else_branch=func @e() {
      %n = Neg(%x) : float32[2]
      return %n
    }, then_branch=func @t() {
      %a = Abs(%x) : float32[2]
      return %a
    }} : float32[2]
  return %y
}
"""
    module = parse(src)
    _register(monkeypatch, "neg_to_relu", _rename_op("Neg", "Relu"))
    args = [np.array([1.0, -1.0], np.float32), np.array(False)]
    with pytest.raises(PassFailed, match=r"output 0 at \[0\] differs: expected -1.0, got 1.0"):
        PassManager("neg_to_relu", instruments=[InterpretEach(args)]).run(module)
    args[1] = np.array(True)  # the changed branch does not run: nothing to see
    PassManager("neg_to_relu", instruments=[InterpretEach(args)]).run(module)
