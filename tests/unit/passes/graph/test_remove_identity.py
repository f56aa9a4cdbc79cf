"""remove_identity: each rule fires where the op computes its input unchanged and not on a
near miss, and the interpreter computes the same bits before and after."""

from __future__ import annotations

import pytest

from compiler.frontend.onnx import import_model
from compiler.graph.ir import Const, Module
from compiler.passes.graph.remove_identity import RULES
from oracles.models import LIGHT_MODELS, light_input, load_light, randomize_light_model
from tests.unit.passes.graph.corpus_check import (
    apply,
    assert_same_outputs,
    check_corpus,
    ops,
)
from tests.unit.passes.graph.rule_check import (
    Case,
    check_case,
    rewritten,
    uncovered_rules,
)

F = "%x: float32[2, 3]"
CASES = [
    Case("identity", "%y = Identity(%x) : float32[2, 3]", F, []),
    Case("identity_chain", "%a = Identity(%x) : float32[2, 3]\n%b = Identity(%a) : float32[2, 3]"
         "\n%y = Neg(%b) : float32[2, 3]", F, ["Neg"]),
    Case("identity_refines_type_kept", "%y = Identity(%x) : float32[2, 3]", "%x: float32[2, ?]",
         ["Identity"]),
    Case("dropout_inference", "%y = Dropout(%x) : float32[2, 3]", F, []),
    Case("dropout_ratio", "%r = const float32[] [0.5]\n"
         "%y, %m = Dropout(%x, %r) : float32[2, 3], bool[2, 3]", F, []),
    Case("dropout_training_false", "%r = const float32[] [0.5]\n%t = const bool[] [false]\n"
         "%y = Dropout(%x, %r, %t) : float32[2, 3]", F, []),
    Case("dropout_training_ratio_zero", "%r = const float32[] [0.0]\n%t = const bool[] [true]\n"
         "%y = Dropout(%x, %r, %t) : float32[2, 3]", F, []),
    Case("dropout_training_kept", "%r = const float32[] [0.5]\n"
         "%y = Dropout(%x, %r, %t) : float32[2, 3]", F + ", %t: bool[]", ["Dropout"]),
    Case("dropout_mask_used_kept", "%y, %m = Dropout(%x) : float32[2, 3], bool[2, 3]", F,
         ["Dropout"], "%y, %m"),
    Case("flatten_same_type", "%y = Flatten(%x) {axis=1} : float32[2, 3]", F, []),
    Case("squeeze_nothing", "%a = const int64[0] []\n%y = Squeeze(%x, %a) : float32[N, 3]",
         "%x: float32[N, 3]", []),
    Case("unsqueeze_kept", "%a = const int64[1] [0]\n%y = Unsqueeze(%x, %a) : float32[1, 2, 3]",
         F, ["Unsqueeze"]),
    Case("reshape_unknown_kept", "%s = const int64[2] [-1, 3]\n"
         "%y = Reshape(%x, %s) {allowzero=0} : float32[?, 3]", "%x: float32[?, 3]",
         ["Reshape"]),
    Case("chain_to_reshape", "%f = Flatten(%x) {axis=0} : float32[1, 24]\n"
         "%a = const int64[1] [0]\n%s = Squeeze(%f, %a) : float32[24]\n"
         "%u = Unsqueeze(%s, %a) : float32[1, 24]\n%t = const int64[2] [6, 4]\n"
         "%y = Reshape(%u, %t) {allowzero=0} : float32[6, 4]", "%x: float32[2, 3, 4]",
         ["Reshape"]),
    Case("chain_back_to_input", "%f = Flatten(%x) {axis=2} : float32[6, 4]\n"
         "%t = const int64[3] [2, 3, 4]\n%y = Reshape(%f, %t) {allowzero=0} : float32[2, 3, 4]",
         "%x: float32[2, 3, 4]", []),
    Case("chain_with_zero_dim", "%f = Flatten(%x) {axis=1} : float32[0, 12]\n"
         "%t = const int64[3] [3, 0, 4]\n%y = Reshape(%f, %t) {allowzero=1} : float32[3, 0, 4]",
         "%x: float32[0, 3, 4]", ["Reshape"]),
    Case("chain_symbolic_kept", "%f = Flatten(%x) {axis=1} : float32[N, 12]\n"
         "%t = const int64[2] [-1, 4]\n%y = Reshape(%f, %t) {allowzero=0} : float32[?, 4]",
         "%x: float32[N, 3, 4]", ["Flatten", "Reshape"]),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_rule(case: Case) -> None:
    check_case(case, "remove_identity")


def test_every_rule_has_cases() -> None:
    assert not uncovered_rules(CASES, RULES)


def test_collapsed_chain_has_a_static_shape() -> None:
    _, after = removed(next(c for c in CASES if c.name == "chain_to_reshape").text())
    const = next(b.expr for b in after.main.body if isinstance(b.expr, Const))
    assert const.value.array.tolist() == [6, 4]
    assert after.main.body[-1].expr.args[0] == after.main.params[0]


def test_zero_dims_use_allowzero() -> None:
    _, after = removed(next(c for c in CASES if c.name == "chain_with_zero_dim").text())
    assert after.main.body[-1].expr.attr_dict["allowzero"] == 1


def test_inside_subgraphs() -> None:
    _, after = removed("""func @main(%x: float32[4], %c: bool[]) {
  %y = If(%c) {else_branch=func @e() {
    %n = Identity(%x) : float32[4]
    return %n
  }, then_branch=func @t() {
    %a = Dropout(%x) : float32[4]
    %b = Neg(%a) : float32[4]
    return %b
  }} : float32[4]
  return %y
}
""")
    branches = dict(after.main.body[0].expr.attrs)
    assert branches["else_branch"].body == ()
    assert [b.expr.op for b in branches["then_branch"].body] == ["Neg"]


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model(name: str) -> None:
    model = randomize_light_model(load_light(name)[0], seed=1)
    module = import_model(model)
    out = apply(module, "remove_identity,simplify")
    inputs = light_input(model)
    assert_same_outputs(module, out, [inputs[p.name] for p in module.main.params])
    if "Dropout" in ops(module):
        assert "Dropout" not in ops(out)


def test_node_models() -> None:
    assert check_corpus("remove_identity") > 50


def removed(text: str) -> tuple[Module, Module]:
    return rewritten(text, "remove_identity")
