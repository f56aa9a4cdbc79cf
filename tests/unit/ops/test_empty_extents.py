"""Ops over empty extents: Resize with sizes and an aspect-ratio policy cannot scale an empty
axis (a clean error, at import when the shapes are known, else at run time); GlobalMaxPool
over an empty spatial extent is -inf in the interpreter and in compiled code alike (both
were crashes in the references)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model
from compiler.graph import interp
from compiler.graph.verifier import verify


def _model(x_shape, sizes_const: bool):
    sizes = np.array([1, 1, 4, 4], np.int64)
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"],
                            keep_aspect_ratio_policy="not_larger")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)]
    inits = [numpy_helper.from_array(sizes, "sizes")] if sizes_const else []
    if not sizes_const:
        inputs.append(helper.make_tensor_value_info("sizes", TensorProto.INT64, [4]))
    graph = helper.make_graph([node], "g", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


def test_empty_axis_with_constant_sizes_fails_at_import() -> None:
    with pytest.raises(AnvilError, match="needs non-empty axes"):
        verify(import_model(_model([1, 1, 0, 3], sizes_const=True)))


def test_empty_axis_with_run_time_sizes_fails_when_run() -> None:
    module = import_model(_model([1, 1, 0, 3], sizes_const=False))
    verify(module)
    with pytest.raises(AnvilError, match="needs non-empty axes"):
        interp.run(module, [np.zeros((1, 1, 0, 3), np.float32),
                            np.array([1, 1, 4, 4], np.int64)])


def test_global_max_pool_over_an_empty_extent_is_minus_infinity_everywhere() -> None:
    from compiler.driver import compile as compile_model

    graph = helper.make_graph([helper.make_node("GlobalMaxPool", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1, 2, 0, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.zeros((1, 2, 0, 3), np.float32)
    want = np.full((1, 2, 1, 1), -np.inf, np.float32)
    np.testing.assert_array_equal(interp.run(import_model(model), [x])[0], want)
    np.testing.assert_array_equal(compile_model(model, "llvm").run([x])[0], want)
