"""simplify: each rule fires where it is exact and not on a near miss, and the interpreter
computes the same bits before and after (inputs hold -0.0, NaN and infinities)."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.dtypes import DType
from compiler.frontend.onnx import import_model
from compiler.graph.ir import Module
from compiler.ops.cast import cast_array
from compiler.passes.graph.simplify import LOSSLESS, RULES
from oracles.models import LIGHT_MODELS, light_input, load_light, randomize_light_model
from tests.unit.passes.graph.corpus_check import (
    apply,
    assert_same_outputs,
    check_corpus,
    gir,
    ops,
)
from tests.unit.passes.graph.rule_check import (
    Case,
    check_case,
    rewritten,
    uncovered_rules,
)

F4 = "%x: float32[4]"
CASES = [
    # neutral operands
    Case("add_neg_zero", "%z = const float32[] [-0.0]\n%y = Add(%x, %z) : float32[4]", F4, []),
    Case("neg_zero_add", "%z = const float32[] [-0.0]\n%y = Add(%z, %x) : float32[4]", F4, []),
    Case("add_pos_zero_kept", "%z = const float32[] [0.0]\n%y = Add(%x, %z) : float32[4]", F4,
         ["Add"]),
    Case("add_mixed_zeros_kept",
         "%z = const float32[2] [-0.0, 0.0]\n%y = Add(%x, %z) : float32[2]", "%x: float32[2]",
         ["Add"]),
    Case("sub_pos_zero", "%z = const float32[] [0.0]\n%y = Sub(%x, %z) : float32[4]", F4, []),
    Case("sub_neg_zero_kept", "%z = const float32[] [-0.0]\n%y = Sub(%x, %z) : float32[4]", F4,
         ["Sub"]),
    Case("zero_sub_kept", "%z = const float32[] [0.0]\n%y = Sub(%z, %x) : float32[4]", F4,
         ["Sub"]),
    Case("int_add_zero", "%z = const int64[] [0]\n%y = Add(%z, %x) : int64[4]",
         "%x: int64[4]", []),
    Case("mul_one", "%o = const float32[4] [1.0, 1.0, 1.0, 1.0]\n%y = Mul(%o, %x) : float32[4]",
         F4, []),
    Case("mul_zero_kept", "%o = const float32[] [0.0]\n%y = Mul(%x, %o) : float32[4]", F4,
         ["Mul"]),
    Case("mul_one_grows_kept",
         "%o = const float32[2, 1] [1.0, 1.0]\n%y = Mul(%x, %o) : float32[2, 4]", F4, ["Mul"]),
    Case("mul_one_symbolic", "%o = const float32[1, 3] [1.0, 1.0, 1.0]\n"
         "%y = Mul(%x, %o) : float32[N, 3]", "%x: float32[N, 3]", []),
    Case("mul_one_symbolic_kept", "%o = const float32[3] [1.0, 1.0, 1.0]\n"
         "%y = Mul(%x, %o) : float32[N, 3]", "%x: float32[N, 1]", ["Mul"]),
    Case("div_one", "%o = const float16[] [1.0]\n%y = Div(%x, %o) : float16[4]",
         "%x: float16[4]", []),
    Case("one_div_kept", "%o = const float32[] [1.0]\n%y = Div(%o, %x) : float32[4]", F4,
         ["Div"]),
    Case("pow_one", "%o = const int64[] [1]\n%y = Pow(%x, %o) : float32[4]", F4, []),
    Case("int_pow_int_one", "%o = const int32[] [1]\n%y = Pow(%x, %o) : int64[4]",
         "%x: int64[4]", []),
    Case("int_pow_float_one_kept", "%o = const float32[] [1.0]\n%y = Pow(%x, %o) : int64[4]",
         "%x: int64[4]", ["Pow"]),
    # unary chains
    Case("neg_neg", "%a = Neg(%x) : float32[4]\n%y = Neg(%a) : float32[4]", F4, []),
    Case("neg_abs_kept", "%a = Abs(%x) : float32[4]\n%y = Neg(%a) : float32[4]", F4,
         ["Abs", "Neg"]),
    Case("not_not", "%a = Not(%x) : bool[4]\n%y = Not(%a) : bool[4]", "%x: bool[4]", []),
    Case("abs_abs", "%a = Abs(%x) : int8[4]\n%y = Abs(%a) : int8[4]", "%x: int8[4]", ["Abs"]),
    Case("abs_neg_kept", "%a = Neg(%x) : float32[4]\n%y = Abs(%a) : float32[4]", F4,
         ["Neg", "Abs"]),
    Case("relu_relu", "%a = Relu(%x) : float32[4]\n%y = Relu(%a) : float32[4]", F4, ["Relu"]),
    Case("floor_floor", "%a = Floor(%x) : float32[4]\n%y = Floor(%a) : float32[4]", F4,
         ["Floor"]),
    Case("ceil_ceil", "%a = Ceil(%x) : float16[4]\n%y = Ceil(%a) : float16[4]",
         "%x: float16[4]", ["Ceil"]),
    Case("round_round", "%a = Round(%x) : float64[4]\n%y = Round(%a) : float64[4]",
         "%x: float64[4]", ["Round"]),
    Case("floor_ceil_kept", "%a = Ceil(%x) : float32[4]\n%y = Floor(%a) : float32[4]", F4,
         ["Ceil", "Floor"]),
    Case("relu_neg_relu_kept", "%a = Relu(%x) : float32[4]\n%b = Neg(%a) : float32[4]\n"
         "%y = Relu(%b) : float32[4]", F4, ["Relu", "Neg", "Relu"]),
    # casts
    Case("cast_same", '%y = Cast(%x) {round_mode="up", saturate=1, to=1} : float32[4]', F4,
         []),
    Case("castlike_same", "%l = const float32[] [0.0]\n"
         '%y = CastLike(%x, %l) {round_mode="up", saturate=1} : float32[4]', F4, []),
    Case("cast_round_trip", '%a = Cast(%x) {round_mode="up", saturate=1, to=1} : float32[4]\n'
         '%y = Cast(%a) {round_mode="up", saturate=1, to=10} : float16[4]', "%x: float16[4]",
         []),
    Case("cast_lossy_round_trip_kept",
         '%a = Cast(%x) {round_mode="up", saturate=1, to=10} : float16[4]\n'
         '%y = Cast(%a) {round_mode="up", saturate=1, to=1} : float32[4]', F4,
         ["Cast", "Cast"]),
    Case("cast_widening_chain",
         '%a = Cast(%x) {round_mode="up", saturate=1, to=6} : int32[4]\n'
         '%y = Cast(%a) {round_mode="up", saturate=1, to=11} : float64[4]', "%x: int8[4]",
         ["Cast"]),
    Case("cast_int32_float32_kept",
         '%a = Cast(%x) {round_mode="up", saturate=1, to=1} : float32[4]\n'
         '%y = Cast(%a) {round_mode="up", saturate=1, to=6} : int32[4]', "%x: int32[4]",
         ["Cast", "Cast"]),
    Case("cast_widen_then_narrow_kept",
         '%a = Cast(%x) {round_mode="up", saturate=1, to=11} : float64[4]\n'
         '%y = Cast(%a) {round_mode="up", saturate=1, to=1} : float32[4]', "%x: int32[4]",
         ["Cast", "Cast"]),
    Case("bool_cast_round_trip", '%a = Cast(%x) {round_mode="up", saturate=1, to=3} : int8[4]\n'
         '%y = Cast(%a) {round_mode="up", saturate=1, to=9} : bool[4]', "%x: bool[4]", []),
    # transposes
    Case("transpose_identity", "%y = Transpose(%x) {perm=[0, 1]} : float32[2, 3]",
         "%x: float32[2, 3]", []),
    Case("transpose_kept", "%y = Transpose(%x) {perm=[1, 0]} : float32[3, 2]",
         "%x: float32[2, 3]", ["Transpose"]),
    Case("transpose_pair_cancels", "%a = Transpose(%x) : float32[4, 3, 2]\n"
         "%y = Transpose(%a) : float32[2, 3, 4]", "%x: float32[2, 3, 4]", []),
    Case("transpose_pair_composes", "%a = Transpose(%x) {perm=[1, 2, 0]} : float32[3, 4, 2]\n"
         "%y = Transpose(%a) {perm=[1, 0, 2]} : float32[4, 3, 2]", "%x: float32[2, 3, 4]",
         ["Transpose"]),
    # reshapes and friends
    Case("reshape_pair",
         "%s = const int64[1] [6]\n%a = Reshape(%x, %s) {allowzero=0} : float32[6]\n"
         "%t = const int64[2] [3, -1]\n%y = Reshape(%a, %t) {allowzero=0} : float32[3, 2]",
         "%x: float32[2, 3]", ["Reshape"]),
    Case("reshape_pair_zero_copy",
         "%s = const int64[3] [3, 1, 2]\n%a = Reshape(%x, %s) {allowzero=0} : float32[3, 1, 2]\n"
         "%t = const int64[2] [0, 2]\n%y = Reshape(%a, %t) {allowzero=0} : float32[3, 2]",
         "%x: float32[2, 3]", ["Reshape"]),
    Case("reshape_same_type",
         "%s = const int64[2] [-1, 3]\n%y = Reshape(%x, %s) {allowzero=0} : float32[N, 3]",
         "%x: float32[N, 3]", []),
    Case("reshape_kept",
         "%s = const int64[2] [3, 2]\n%y = Reshape(%x, %s) {allowzero=0} : float32[3, 2]",
         "%x: float32[2, 3]", ["Reshape"]),
    Case("flatten_same_type", "%y = Flatten(%x) {axis=1} : float32[2, 3]",
         "%x: float32[2, 3]", []),
    Case("flatten_kept", "%y = Flatten(%x) {axis=1} : float32[2, 12]",
         "%x: float32[2, 3, 4]", ["Flatten"]),
    Case("flatten_unknown_kept", "%y = Flatten(%x) {axis=1} : float32[?, 3]",
         "%x: float32[?, 3]", ["Flatten"]),
    Case("expand_same", "%s = const int64[2] [1, 3]\n%y = Expand(%x, %s) : float32[N, 3]",
         "%x: float32[N, 3]", []),
    Case("expand_grows_kept", "%s = const int64[2] [2, 3]\n%y = Expand(%x, %s) : float32[2, 3]",
         "%x: float32[1, 3]", ["Expand"]),
    Case("concat_one", "%y = Concat(%x) {axis=0} : float32[4]", F4, []),
    Case("concat_two_kept", "%y = Concat(%x, %x) {axis=0} : float32[8]", F4, ["Concat"]),
    Case("slice_all", "%s = const int64[2] [0, -5]\n%e = const int64[2] [5, 9223372036854775807]\n"
         "%y = Slice(%x, %s, %e) : float32[2, 3]", "%x: float32[2, 3]", []),
    Case("slice_part_kept", "%s = const int64[1] [1]\n%e = const int64[1] [5]\n"
         "%y = Slice(%x, %s, %e) : float32[3]", F4, ["Slice"]),
    Case("slice_reverse_kept", "%s = const int64[1] [-1]\n%e = const int64[1] [-9]\n"
         "%st = const int64[1] [-1]\n%a = const int64[1] [0]\n"
         "%y = Slice(%x, %s, %e, %a, %st) : float32[4]", F4, ["Slice"]),
    Case("squeeze_unsqueeze", "%a = const int64[2] [0, -1]\n"
         "%u = Unsqueeze(%x, %a) : float32[1, 2, 3, 1]\n%y = Squeeze(%u, %a) : float32[2, 3]",
         "%x: float32[2, 3]", []),
    Case("squeeze_unsqueeze_kept", "%a = const int64[1] [0]\n%b = const int64[1] [1]\n"
         "%u = Unsqueeze(%x, %a) : float32[1, 1, 3]\n%y = Squeeze(%u, %b) : float32[1, 3]",
         "%x: float32[1, 3]", ["Unsqueeze", "Squeeze"]),
    Case("unsqueeze_squeeze", "%a = const int64[1] [1]\n"
         "%u = Squeeze(%x, %a) : float32[2, 3]\n%y = Unsqueeze(%u, %a) : float32[2, 1, 3]",
         "%x: float32[2, 1, 3]", []),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_rule(case: Case) -> None:
    check_case(case, "simplify")


def test_every_rule_has_cases() -> None:
    assert not uncovered_rules(CASES, RULES)


def test_chains_reach_a_fixed_point() -> None:
    _, after = simplified("""func @main(%x: float32[4]) {
  %a = Neg(%x) : float32[4]
  %b = Neg(%a) : float32[4]
  %c = Neg(%b) : float32[4]
  %d = Neg(%c) : float32[4]
  %o = const float32[] [1.0]
  %e = Mul(%d, %o) : float32[4]
  %f = Transpose(%e) : float32[4]
  %g = Relu(%f) : float32[4]
  %h = Relu(%g) : float32[4]
  %i = Relu(%h) : float32[4]
  return %i, %e
}
""")
    assert ops(after) == ["Relu"]
    assert after.main.results[1] == after.main.params[0]


def test_rewrites_inside_subgraphs() -> None:
    _, after = simplified("""func @main(%x: float32[4], %c: bool[]) {
  %y = If(%c) {else_branch=func @e() {
    %n = Neg(%x) : float32[4]
    %m = Neg(%n) : float32[4]
    return %m
  }, then_branch=func @t() {
    %a = Abs(%x) : float32[4]
    %b = Abs(%a) : float32[4]
    return %b
  }} : float32[4]
  return %y
}
""")
    branches = dict(after.main.body[0].expr.attrs)
    assert [b.expr.op for b in branches["else_branch"].body] == []
    assert [b.expr.op for b in branches["then_branch"].body] == ["Abs"]


def test_keeps_params_and_results() -> None:
    before, after = simplified("""func @main(%x: float32[4], %unused: int8[2]) {
  %a = Neg(%x) : float32[4]
  %b = Neg(%a) : float32[4]
  return %b, %b, %x
}
""")
    assert after.main.params == before.main.params
    assert after.main.results == (before.main.params[0],) * 3


def test_is_idempotent() -> None:
    module = gir(CASES[0].text())
    once = apply(module, "simplify")
    assert apply(once, "simplify") == once


# ---------------------------------------------------------------------------------------
# the LOSSLESS table against the reference Cast


def _all_values(dt: DType) -> np.ndarray:
    if dt == DType.bool:
        return np.array([False, True])
    if dt.is_int:
        info = np.iinfo(dt.np)
        rng = np.random.default_rng(0)
        edges = [info.min, info.min + 1, -1, 0, 1, info.max - 1, info.max]
        vals = np.array([v for v in edges if info.min <= v <= info.max], dtype=dt.np)
        return np.concatenate([vals, rng.integers(info.min, info.max, 2000, dtype=dt.np,
                                                  endpoint=True)])
    if dt in (DType.float16, DType.bfloat16):
        return np.arange(1 << 16, dtype=np.uint16).view(dt.np)  # every bit pattern
    bits = np.dtype(f"u{dt.np.itemsize}")
    rng = np.random.default_rng(0)
    raw = rng.integers(0, np.iinfo(bits).max, 20000, dtype=bits, endpoint=True)
    specials = np.array([-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45, 5e-324],
                        dtype=dt.np)
    return np.concatenate([specials, raw.view(dt.np)])


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal values, NaN where NaN and zeros of the same sign (payloads aside)."""
    if a.dtype != b.dtype:
        return False
    if a.dtype.kind in "biu":
        return bool(np.array_equal(a, b))
    with np.errstate(invalid="ignore"):
        x, y = a.astype(np.float64), b.astype(np.float64)
    return bool(np.all((np.isnan(x) & np.isnan(y)) | (x == y) & (np.signbit(x) == np.signbit(y))))


@pytest.mark.parametrize("src", list(LOSSLESS), ids=str)
def test_lossless_casts_are_exact(src: DType) -> None:
    x = _all_values(src)
    for mid in sorted(LOSSLESS[src], key=str):
        wide = cast_array(x, mid)
        assert _same(cast_array(wide, src), x), (src, mid)
        for dst in LOSSLESS.get(mid, ()):
            assert _same(cast_array(wide, dst), cast_array(x, dst)), (src, mid, dst)


@pytest.mark.parametrize("src", [DType.float16, DType.bfloat16], ids=str)
def test_float_round_trip_keeps_every_bit(src: DType) -> None:
    """Every non-NaN bit pattern comes back; a NaN comes back a NaN (its payload is not
    promised: the reference Cast may quiet or canonicalise it)."""
    x = _all_values(src)
    bits = x.view(np.uint16)
    nan = np.isnan(x.astype(np.float32))
    for mid in (DType.float32, DType.float64):
        back = cast_array(cast_array(x, mid), src)
        assert np.array_equal(back.view(np.uint16)[~nan], bits[~nan]), mid
        assert np.isnan(back[nan].astype(np.float32)).all(), mid


# ---------------------------------------------------------------------------------------
# real models


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model(name: str) -> None:
    model = randomize_light_model(load_light(name)[0], seed=1)
    module = import_model(model)
    out = apply(module, "simplify")
    inputs = light_input(model)
    assert_same_outputs(module, out, [inputs[p.name] for p in module.main.params])


def test_node_models() -> None:
    assert check_corpus("simplify") > 50


def simplified(text: str) -> tuple[Module, Module]:
    return rewritten(text, "simplify")
