"""The ONNX backend API surface: prepare / run_model / run_node / supports_device."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from compiler import backend
from compiler.errors import AnvilError


def test_supports_device():
    assert backend.supports_device("CPU")
    assert not backend.supports_device("CUDA")
    assert not backend.supports_device("nonsense")


def test_run_node_matches_numpy():
    node = helper.make_node("Add", ["a", "b"], ["c"])
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([10, 20, 30], np.float32)
    (c,) = backend.run_node(node, [a, b])
    np.testing.assert_array_equal(c, a + b)


def test_run_model_and_named_inputs():
    g = helper.make_graph(
        [helper.make_node("Sub", ["x", "y"], ["z"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.INT32, [3]),
         helper.make_tensor_value_info("y", TensorProto.INT32, [3])],
        [helper.make_tensor_value_info("z", TensorProto.INT32, [3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
    x, y = np.array([5, 6, 7], np.int32), np.array([1, 1, 9], np.int32)
    (z,) = backend.run_model(m, [x, y])
    np.testing.assert_array_equal(z, x - y)
    rep = backend.prepare(m)
    (z2,) = rep.run({"y": y, "x": x})
    np.testing.assert_array_equal(z2, x - y)


def test_prepare_refuses_unknown_device_and_target():
    node = helper.make_node("Relu", ["x"], ["y"])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [1])],
                          [helper.make_tensor_value_info("y", 1, [1])])
    m = helper.make_model(g)
    with pytest.raises(AnvilError, match="device"):
        backend.prepare(m, device="TPU")
    with pytest.raises(AnvilError, match="unknown target"):
        backend.prepare(m, target="fpga")
