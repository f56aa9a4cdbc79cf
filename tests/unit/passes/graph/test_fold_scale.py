"""fold_scale: constant per-channel Mul/Add after a product with constant weights folds into
its weights and bias; near misses (non-constant, shared, widening, off-channel) do not; the
interpreter agrees before and after (up to the rounding of the folded constants)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from compiler.graph.ir import Call
from tests.unit.passes.graph.corpus_check import apply
from tests.unit.passes.graph.fold_check import (
    check_light,
    check_rewrite,
    light_case,
    light_params,
    onnx_module,
    op_counts,
)

RNG = np.random.default_rng(11)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def conv_then(op: str, k: np.ndarray, bias: bool = False, swap: bool = False,
              group: int = 1) -> tuple:
    x = rand(2, 4, 5, 5)
    inits = {"W": rand(6, 4 // group, 3, 3), "k": k}
    args = ["x", "W"]
    if bias:
        inits["B"] = rand(6)
        args.append("B")
    nodes = [helper.make_node("Conv", args, ["y"], group=group),
             helper.make_node(op, ["k", "y"] if swap else ["y", "k"], ["z"])]
    return onnx_module(nodes, {"x": x}, ["z"], inits), {"x": x}


@pytest.mark.parametrize("shape", [(1, 6, 1, 1), (6, 1, 1), (), (1,), (1, 1, 1, 1)])
@pytest.mark.parametrize("op", ["Mul", "Add"])
def test_conv_channel_constant_folds(op: str, shape: tuple[int, ...]) -> None:
    m, inputs = conv_then(op, rand(*shape), bias=op == "Mul", swap=shape == ())
    out = apply(m, "fold_scale")
    assert op_counts(out) == {"Conv": 1}
    conv = out.main.body[-1]
    assert conv.outs == m.main.results and len(conv.expr.args) == 3
    check_rewrite(m, out, inputs)


def test_grouped_conv_and_conv_transpose() -> None:
    m, inputs = conv_then("Mul", rand(1, 6, 1, 1), group=2)
    assert op_counts(apply(m, "fold_scale")) == {"Conv": 1}
    x = rand(1, 4, 3, 3)
    nodes = [helper.make_node("ConvTranspose", ["x", "W"], ["y"], group=2),
             helper.make_node("Mul", ["y", "k"], ["z"]),
             helper.make_node("Add", ["z", "k"], ["u"])]
    m = onnx_module(nodes, {"x": x}, ["u"], {"W": rand(4, 3, 2, 2), "k": rand(6, 1, 1)})
    out = apply(m, "fold_scale")
    assert op_counts(out) == {"ConvTranspose": 1}
    check_rewrite(m, out, {"x": x})


def test_chain_folds_in_one_run() -> None:
    x = rand(1, 4, 5, 5)
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["y"]),
             helper.make_node("Mul", ["y", "s"], ["a"]),
             helper.make_node("Add", ["t", "a"], ["b"]),
             helper.make_node("Mul", ["b", "h"], ["c"])]
    m = onnx_module(nodes, {"x": x}, ["c"], {"W": rand(3, 4, 3, 3), "B": rand(3),
                                             "s": rand(3, 1, 1), "t": rand(1, 3, 1, 1),
                                             "h": np.float32(0.5)})
    out = apply(m, "fold_scale")
    assert op_counts(out) == {"Conv": 1}
    assert len(out.main.body) == 3  # weights, bias, Conv
    check_rewrite(m, out, {"x": x})


@pytest.mark.parametrize("k_shape", [(7,), (1, 7), ()])
def test_matmul_scale_folds(k_shape: tuple[int, ...]) -> None:
    a = rand(2, 3, 5)
    nodes = [helper.make_node("MatMul", ["a", "W"], ["y"]),
             helper.make_node("Mul", ["y", "k"], ["z"])]
    m = onnx_module(nodes, {"a": a}, ["z"], {"W": rand(5, 7), "k": rand(*k_shape)})
    out = apply(m, "fold_scale")
    assert op_counts(out) == {"MatMul": 1}
    check_rewrite(m, out, {"a": a})


@pytest.mark.parametrize("trans_b,beta,c_shape", [(0, 1.0, None), (1, 0.5, (4,)),
                                                  (0, 2.0, (3, 1)), (1, 0.0, (1, 4))])
def test_gemm_scale_and_bias_fold(trans_b: int, beta: float, c_shape) -> None:
    a = rand(3, 5)
    inits = {"G": rand(4, 5) if trans_b else rand(5, 4), "k": rand(4), "d": rand(1, 4)}
    args = ["a", "G"]
    if c_shape is not None:
        inits["C"] = rand(*c_shape)
        args.append("C")
    nodes = [helper.make_node("Gemm", args, ["y"], transB=trans_b, alpha=1.5, beta=beta),
             helper.make_node("Mul", ["y", "k"], ["z"]),
             helper.make_node("Add", ["z", "d"], ["u"])]
    m = onnx_module(nodes, {"a": a}, ["u"], inits)
    out = apply(m, "fold_scale")
    assert op_counts(out) == {"Gemm": 1}
    check_rewrite(m, out, {"a": a})


# ---------------------------------------------------------------------------------------
# near misses


def unchanged(m, inputs) -> None:
    out = apply(m, "fold_scale")
    assert out == m
    check_rewrite(m, out, inputs)


@pytest.mark.parametrize("shape", [(1, 1, 1, 3), (1, 6, 3, 1), (2, 6, 1, 1), (6,),
                                   (1, 1, 6, 1, 1)])
def test_off_channel_or_widening_constant_blocks(shape: tuple[int, ...]) -> None:
    x = rand(1, 4, 5, 5)
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"]),
             helper.make_node("Mul", ["y", "k"], ["z"])]
    k = rand(*shape)
    if shape == (6,):  # broadcasts along the last (spatial) axis: needs width 6
        x = rand(1, 4, 5, 8)
    m = onnx_module(nodes, {"x": x}, ["z"], {"W": rand(6, 4, 3, 3), "k": k})
    unchanged(m, {"x": x})


def test_shared_product_output_blocks() -> None:
    x = rand(1, 4, 5, 5)
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"]),
             helper.make_node("Mul", ["y", "k"], ["z"]), helper.make_node("Relu", ["y"], ["r"])]
    m = onnx_module(nodes, {"x": x}, ["z", "r"], {"W": rand(6, 4, 3, 3), "k": rand(6, 1, 1)})
    unchanged(m, {"x": x})


def test_product_output_returned_blocks() -> None:
    x = rand(1, 4, 5, 5)
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"]),
             helper.make_node("Mul", ["y", "k"], ["z"])]
    m = onnx_module(nodes, {"x": x}, ["z", "y"], {"W": rand(6, 4, 3, 3), "k": rand(6, 1, 1)})
    unchanged(m, {"x": x})


def test_non_constant_weights_or_factor_block() -> None:
    x, w, k = rand(1, 4, 5, 5), rand(6, 4, 3, 3), rand(6, 1, 1)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"]),
             helper.make_node("Mul", ["y", "k"], ["z"]),
             helper.make_node("Conv", ["x", "W"], ["y2"]),
             helper.make_node("Mul", ["y2", "k"], ["z2"])]
    m = onnx_module(nodes, {"x": x, "w": w, "k": k}, ["z", "z2"], {"W": w})
    unchanged(m, {"x": x, "w": w, "k": k})


def test_add_after_matmul_stays() -> None:
    a = rand(3, 5)
    nodes = [helper.make_node("MatMul", ["a", "W"], ["y"]),
             helper.make_node("Add", ["y", "d"], ["z"])]
    m = onnx_module(nodes, {"a": a}, ["z"], {"W": rand(5, 4), "d": rand(4)})
    unchanged(m, {"a": a})


def test_gemm_row_constant_blocks() -> None:
    a = rand(3, 5)
    nodes = [helper.make_node("Gemm", ["a", "G"], ["y"]),
             helper.make_node("Mul", ["y", "k"], ["z"])]
    m = onnx_module(nodes, {"a": a}, ["z"], {"G": rand(5, 4), "k": rand(3, 1)})
    unchanged(m, {"a": a})


def test_shared_weights_stay_for_the_other_user() -> None:
    x = rand(1, 4, 5, 5)
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"]),
             helper.make_node("Mul", ["y", "k"], ["z"]),
             helper.make_node("Conv", ["x", "W"], ["y2"])]
    m = onnx_module(nodes, {"x": x}, ["z", "y2"], {"W": rand(6, 4, 3, 3), "k": rand(6, 1, 1)})
    out = apply(m, "fold_scale")
    assert op_counts(out) == {"Conv": 2}
    weights = [b.expr.args[1].name for b in out.main.body if isinstance(b.expr, Call)]
    assert "W" in weights and len(set(weights)) == 2
    check_rewrite(m, out, {"x": x})


# ---------------------------------------------------------------------------------------
# light models: as imported, a converted BN's own Mul/Add (of Unsqueezed constants) follows
# it; after fold_constant and fold_batchnorm they follow the Conv and fold into it


@pytest.mark.parametrize("name", light_params(("squeezenet", "inception_v2")))
def test_light_model(name: str) -> None:
    module = light_case(name)[0]
    base = apply(module, "fold_constant,fold_batchnorm")
    out = apply(base, "fold_scale")
    folded = op_counts(base)["Mul"] - op_counts(out)["Mul"]
    if name == "inception_v2":
        assert folded == op_counts(module)["Mul"] > 0 and op_counts(out)["Add"] == 0
    elif name == "densenet121":
        assert 0 < folded < op_counts(module)["Mul"]
    check_light(name, out)
