"""fold_batchnorm: inference BNs fold into the Conv/ConvTranspose/MatMul/Gemm before them, or
become Mul + Add; near misses keep their structure; the interpreter agrees before and after
(up to the rounding of the folded constants)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from compiler.graph.ir import Call, Const
from tests.unit.passes.graph.corpus_check import apply, gir
from tests.unit.passes.graph.fold_check import (
    LIGHT,
    check_light,
    check_rewrite,
    light_case,
    onnx_module,
    op_counts,
)

RNG = np.random.default_rng(7)


def rand(*shape: int, lo: float | None = None) -> np.ndarray:
    if lo is not None:
        return RNG.uniform(lo, lo + 1.0, shape).astype(np.float32)
    return RNG.standard_normal(shape).astype(np.float32)


def bn_params(c: int, prefix: str = "") -> dict[str, np.ndarray]:
    return {f"{prefix}scale": rand(c, lo=0.5), f"{prefix}beta": rand(c),
            f"{prefix}mean": rand(c), f"{prefix}var": rand(c, lo=0.5)}


def bn(x: str, y: str, prefix: str = "", **attrs) -> object:
    return helper.make_node("BatchNormalization", [x] + [f"{prefix}{k}" for k in
                                                          ("scale", "beta", "mean", "var")],
                            [y], epsilon=1e-3, **attrs)


@pytest.mark.parametrize("group,bias,spatial", [(1, True, 2), (2, False, 2), (4, True, 1),
                                               (1, False, 3)])
def test_conv_bn_folds(group: int, bias: bool, spatial: int) -> None:
    c_in, c_out = 4, 8
    x = rand(2, c_in, *([5] * spatial))
    inits = {"W": rand(c_out, c_in // group, *([3] * spatial)), **bn_params(c_out)}
    args = ["x", "W"]
    if bias:
        inits["B"] = rand(c_out)
        args.append("B")
    nodes = [helper.make_node("Conv", args, ["y"], group=group, pads=[1] * 2 * spatial),
             bn("y", "z")]
    m = onnx_module(nodes, {"x": x}, ["z"], inits)
    out = apply(m, "fold_batchnorm")
    assert op_counts(out) == {"Conv": 1}
    conv = out.main.body[-1]
    assert conv.outs == m.main.results and len(conv.expr.args) == 3  # a bias is created
    assert sum(isinstance(b.expr, Const) for b in out.main.body) == 2  # old constants gone
    check_rewrite(m, out, {"x": x})


def test_conv_transpose_bn_folds() -> None:
    x = rand(1, 4, 3, 3)
    inits = {"W": rand(4, 3, 2, 2), "B": rand(6), **bn_params(6)}
    nodes = [helper.make_node("ConvTranspose", ["x", "W", "B"], ["y"], group=2, strides=[2, 2]),
             bn("y", "z")]
    m = onnx_module(nodes, {"x": x}, ["z"], inits)
    out = apply(m, "fold_batchnorm")
    assert op_counts(out) == {"ConvTranspose": 1}
    check_rewrite(m, out, {"x": x})


@pytest.mark.parametrize("trans_b,beta,with_c", [(0, 1.0, False), (1, 0.5, True),
                                                 (0, 0.0, True)])
def test_gemm_bn_folds(trans_b: int, beta: float, with_c: bool) -> None:
    a = rand(3, 5)
    inits = {"G": rand(6, 5) if trans_b else rand(5, 6), **bn_params(6)}
    args = ["a", "G"]
    if with_c:
        inits["C"] = rand(1, 6)
        args.append("C")
    nodes = [helper.make_node("Gemm", args, ["y"], transB=trans_b, alpha=2.0, beta=beta),
             bn("y", "z")]
    m = onnx_module(nodes, {"a": a}, ["z"], inits)
    out = apply(m, "fold_batchnorm")
    assert op_counts(out) == {"Gemm": 1}
    assert out.main.body[-1].expr.attr_dict["beta"] == 1.0
    check_rewrite(m, out, {"a": a})


def test_matmul_bn_folds_into_weights_and_add() -> None:
    a = rand(3, 5)
    m = onnx_module([helper.make_node("MatMul", ["a", "W"], ["y"]), bn("y", "z")], {"a": a},
                    ["z"], {"W": rand(5, 6), **bn_params(6)})
    out = apply(m, "fold_batchnorm")
    assert op_counts(out) == {"MatMul": 1, "Add": 1}
    check_rewrite(m, out, {"a": a})


def test_fallback_is_mul_add_with_channel_constants() -> None:
    x = rand(2, 3, 4, 4)
    m = onnx_module([helper.make_node("Relu", ["x"], ["r"]), bn("r", "z")], {"x": x}, ["z"],
                    bn_params(3))
    out = apply(m, "fold_batchnorm")
    assert op_counts(out) == {"Relu": 1, "Mul": 1, "Add": 1}
    consts = [b.expr.value for b in out.main.body if isinstance(b.expr, Const)]
    assert [c.shape for c in consts] == [(3, 1, 1), (3, 1, 1)]
    check_rewrite(m, out, {"x": x})


def test_fallback_on_rank_two_input() -> None:
    x = rand(4, 3)
    m = onnx_module([bn("x", "z")], {"x": x}, ["z"], bn_params(3))
    out = apply(m, "fold_batchnorm")
    assert op_counts(out) == {"Mul": 1, "Add": 1}
    check_rewrite(m, out, {"x": x})


def test_conv_output_used_twice_does_not_fold_into_conv() -> None:
    x = rand(1, 2, 4, 4)
    w = rand(4, 2, 1, 1)
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"]), bn("y", "z"),
             helper.make_node("Relu", ["y"], ["r"])]
    m = onnx_module(nodes, {"x": x}, ["z", "r"], {"W": w, **bn_params(4)})
    out = apply(m, "fold_batchnorm")
    assert op_counts(out) == {"Conv": 1, "Mul": 1, "Add": 1, "Relu": 1}
    conv = next(b for b in out.main.body if isinstance(b.expr, Call) and b.expr.op == "Conv")
    assert conv.expr.args[1].name == "W"  # weights untouched
    check_rewrite(m, out, {"x": x})


def test_bn_output_used_twice_still_folds() -> None:
    x = rand(1, 2, 4, 4)
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"]), bn("y", "z"),
             helper.make_node("Relu", ["z"], ["r"])]
    m = onnx_module(nodes, {"x": x}, ["z", "r"], {"W": rand(4, 2, 1, 1), **bn_params(4)})
    out = apply(m, "fold_batchnorm")
    assert op_counts(out) == {"Conv": 1, "Relu": 1}
    check_rewrite(m, out, {"x": x})


def test_conv_weights_not_constant() -> None:
    x, w = rand(1, 2, 4, 4), rand(4, 2, 1, 1)
    m = onnx_module([helper.make_node("Conv", ["x", "w"], ["y"]), bn("y", "z")],
                    {"x": x, "w": w}, ["z"], bn_params(4))
    out = apply(m, "fold_batchnorm")
    assert op_counts(out) == {"Conv": 1, "Mul": 1, "Add": 1}
    check_rewrite(m, out, {"x": x, "w": w})


def test_matmul_with_3d_output_is_not_a_channel_product() -> None:
    t = rand(2, 3, 4)
    m = onnx_module([helper.make_node("MatMul", ["t", "W"], ["y"]), bn("y", "z")], {"t": t},
                    ["z"], {"W": rand(4, 5), **bn_params(3)})
    out = apply(m, "fold_batchnorm")
    assert op_counts(out) == {"MatMul": 1, "Mul": 1, "Add": 1}
    check_rewrite(m, out, {"t": t})


def test_statistics_not_constant_or_training_mode_stay() -> None:
    x = rand(2, 3, 4)
    p = bn_params(3)
    m = onnx_module([bn("x", "z"), bn("x", "t", training_mode=1)],
                    {"x": x, "scale": p.pop("scale")}, ["z", "t"], p)
    out = apply(m, "fold_batchnorm")
    assert out == m


def test_float16_conv_folds() -> None:
    x = rand(1, 3, 4, 4).astype(np.float16)
    params = {k: v.astype(np.float16) for k, v in bn_params(4).items()}
    m = onnx_module([helper.make_node("Conv", ["x", "W"], ["y"]), bn("y", "z")], {"x": x},
                    ["z"], {"W": rand(4, 3, 1, 1).astype(np.float16), **params})
    out = apply(m, "fold_batchnorm")
    assert op_counts(out) == {"Conv": 1}
    check_rewrite(m, out, {"x": x}, rtol=1e-2, scale=1e-2)


def test_gir_conv_bn_with_symbolic_batch() -> None:
    m = gir("""func @main(%x: float32[N, 2, 3]) {
  %w = const float32[2, 2, 1] [1.0, 2.0, 3.0, 4.0]
  %s = const float32[2] [2.0, 0.5]
  %b = const float32[2] [1.0, -1.0]
  %y = Conv(%x, %w) {group=1} : float32[N, 2, 3]
  %z = BatchNormalization(%y, %s, %b, %b, %s) {epsilon=0.0, momentum=0.9, training_mode=0}
    : float32[N, 2, 3]
  return %z
}""")
    out = apply(m, "fold_batchnorm")
    assert op_counts(out) == {"Conv": 1}
    assert out.main.results == m.main.results
    check_rewrite(m, out, {"x": rand(2, 2, 3)})


# ---------------------------------------------------------------------------------------
# light models


@pytest.mark.parametrize("name", LIGHT)
def test_light_model(name: str) -> None:
    module = light_case(name)[0]
    out = apply(module, "fold_batchnorm")
    before, after = op_counts(module), op_counts(out)
    bns = before["BatchNormalization"]
    assert after["BatchNormalization"] == 0
    folded = bns - after["Mul"] + before["Mul"]  # the rest became Mul + Add
    assert after["Conv"] == before["Conv"]
    if name in ("resnet50", "shufflenet", "inception_v2"):
        assert folded == bns > 0  # every BN follows a Conv used by it alone
    elif name == "densenet121":
        assert 0 < folded < bns  # BNs after a Concat cannot fold
    check_light(name, out)
