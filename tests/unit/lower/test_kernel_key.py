"""Kernels are shared only between calls that compute the same thing: tensor attributes are
part of the key by value, not by type."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from compiler.driver import compile as compile_model
from compiler.graph.ir import Tensor
from compiler.lower.lowering import attrs_key


def test_tensor_attributes_are_keyed_by_value() -> None:
    one = (("value", Tensor(np.array([1.0], np.float32))),)
    two = (("value", Tensor(np.array([2.0], np.float32))),)
    assert attrs_key(one) != attrs_key(two)
    assert attrs_key(one) == attrs_key((("value", Tensor(np.array([1.0], np.float32))),))


def test_constant_of_shape_with_two_values_gives_two_kernels() -> None:
    fill = [numpy_helper.from_array(np.array([v], np.float32)) for v in (1.5, -2.0)]
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["a"], value=fill[0]),
             helper.make_node("ConstantOfShape", ["s"], ["b"], value=fill[1])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in "ab"])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    a, b = compile_model(model, "llvm").run([np.array([2, 3], np.int64)])
    np.testing.assert_array_equal(a, np.full((2, 3), 1.5, np.float32))
    np.testing.assert_array_equal(b, np.full((2, 3), -2.0, np.float32))
