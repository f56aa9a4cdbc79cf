"""compiler/ops/activation.py: references against onnxruntime, and clean errors."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError

RNG = np.random.default_rng(1)


def one_node(op: str, inputs: list[np.ndarray], attrs: dict | None = None,
             opset: int = 22) -> onnx.ModelProto:
    names = [f"x{i}" for i in range(len(inputs))]
    node = helper.make_node(op, names, ["y"], **(attrs or {}))
    vis = [helper.make_tensor_value_info(n, DType.from_np(a.dtype).onnx, a.shape)
           for n, a in zip(names, inputs, strict=True)]
    graph = helper.make_graph([node], "g", vis, [helper.make_empty_tensor_value_info("y")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def check_against_ort(op: str, inputs: list[np.ndarray], attrs: dict | None = None,
                      opset: int = 22) -> None:
    model = one_node(op, inputs, attrs, opset)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, {f"x{i}": a for i, a in enumerate(inputs)})
    (got,) = prepare(model).run(inputs)
    assert got.dtype == want.dtype and got.shape == want.shape
    rtol = 2e-3 if want.dtype == np.float16 else 1e-5
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-6, equal_nan=True)


def rand(dtype, shape=(3, 4, 5)) -> np.ndarray:
    x = (RNG.standard_normal(shape) * 4).astype(dtype)
    x.flat[:3] = [0.0, 30.0, -30.0]  # saturation regions of exp-based functions
    return x


CASES = [
    ("Relu", {}), ("LeakyRelu", {"alpha": 0.3}), ("Elu", {"alpha": 0.7}), ("Selu", {}),
    ("Celu", {"alpha": 2.0}), ("Sigmoid", {}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
    ("HardSwish", {}), ("Softplus", {}), ("Softsign", {}), ("Mish", {}),
    ("ThresholdedRelu", {"alpha": 0.5}), ("Shrink", {"lambd": 1.5, "bias": 0.5}),
    ("Gelu", {}), ("Gelu", {"approximate": "tanh"}),
]


@pytest.mark.parametrize("op,attrs", CASES, ids=[f"{o}{len(a)}" for o, a in CASES])
def test_float32_matches_ort(op, attrs):
    check_against_ort(op, [rand(np.float32)], attrs)


@pytest.mark.parametrize("op", ["Relu", "Sigmoid", "Elu", "LeakyRelu", "Softplus", "Gelu",
                                "HardSigmoid", "Selu"])
def test_float16_matches_ort(op):
    check_against_ort(op, [rand(np.float16)])


@pytest.mark.parametrize("op", ["Relu", "Sigmoid"])  # onnxruntime's only float64 kernels here
def test_float64_matches_ort(op):
    check_against_ort(op, [rand(np.float64)])


def test_integer_relu_shrink_prelu():
    x = RNG.integers(-50, 50, size=(2, 3, 4)).astype(np.int32)
    check_against_ort("Relu", [x])
    check_against_ort("Shrink", [x], {"lambd": 10.0, "bias": 2.5})
    xs = rand(np.float32, (2, 3, 4))
    check_against_ort("PRelu", [xs, rand(np.float32, (3, 1))])
    check_against_ort("PRelu", [xs, rand(np.float32, (4,))])


def test_swish_and_swiglu_by_hand():
    a = np.array([[-2.0, 0.0, 1.0, 3.0]], dtype=np.float32)
    b = np.array([[1.0, 2.0, -1.0, 0.5]], dtype=np.float32)
    sig = 1 / (1 + np.exp(-1.5 * a.astype(np.float64)))
    (y,) = prepare(one_node("Swish", [a], {"alpha": 1.5}, opset=24)).run([a])
    np.testing.assert_allclose(y, a * sig, rtol=1e-6)
    (y,) = prepare(one_node("SwiGLU", [a, b], {"alpha": 1.5}, opset=28)).run([a, b])
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, a * sig * b, rtol=1e-6)


def error(model: onnx.ModelProto) -> str:
    with pytest.raises(AnvilError) as e:
        prepare(model)
    return str(e.value)


def test_errors():
    f = np.zeros((2, 3), np.float32)
    assert "Gelu: approximate must be 'none' or 'tanh', got 'fast'" in error(
        one_node("Gelu", [f], {"approximate": "fast"}))
    assert "Celu: alpha must be nonzero" in error(one_node("Celu", [f], {"alpha": 0.0}))
    assert "PRelu: slope shape [2, 1] does not broadcast to X shape [3]" in error(
        one_node("PRelu", [np.zeros(3, np.float32), np.zeros((2, 1), np.float32)]))
    assert "SwiGLU: A and B must have one shape, got [2, 3] and [3]" in error(
        one_node("SwiGLU", [f, np.zeros(3, np.float32)], opset=28))
    assert "Relu: input dtype uint8 not supported" in error(
        one_node("Relu", [np.zeros(3, np.uint8)]))
    assert "LeakyRelu has no attribute 'beta'" in error(one_node("LeakyRelu", [f], {"beta": 1.0}))
