"""Invalid Col2Im, GridSample and DeformConv models fail with one clean AnvilError (at type
inference where the shapes are static, at run time where they are input values); empty
GridSample outputs still run."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from compiler.errors import AnvilError, ExecutionError, TypeInferenceError
from compiler.frontend.onnx import import_model
from compiler.graph import interp
from compiler.graph.verifier import verify

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def model(op, inputs, attrs=None, opset=22):
    """A one-node model over graph inputs given as (elem_type, shape)."""
    names = [f"x{i}" for i in range(len(inputs))]
    node = helper.make_node(op, names, ["y"], **(attrs or {}))
    vis = [helper.make_tensor_value_info(n, t, s) for n, (t, s) in zip(names, inputs,
                                                                       strict=True)]
    graph = helper.make_graph([node], "g", vis, [helper.make_empty_tensor_value_info("y")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    return m


def load(m):
    mod = import_model(m)
    verify(mod)
    return mod


def col2im(image_len=2, block_len=2, attrs=None, x_shape=(1, 4, 9)):
    return model("Col2Im", [(F, x_shape), (I64, [image_len]), (I64, [block_len])], attrs,
                 opset=18)


@pytest.mark.parametrize("image_len, block_len, attrs, match", [
    (2, 4, None, "image_shape and block_shape lengths: 2 != 4"),
    (2, 0, None, "image_shape and block_shape lengths: 2 != 0"),
    (0, 0, None, "image_shape must not be empty"),
    (2, 2, {"pads": [0, -2, 0, 1]}, r"pads \[0, -2, 0, 1\] must be >= 0"),
    (2, 2, {"strides": [2]}, "strides has 1 values, expected 2"),
    (2, 2, {"dilations": [1, 0]}, r"dilations \[1, 0\] must be >= 1"),
])
def test_col2im_static_errors(image_len, block_len, attrs, match):
    with pytest.raises(TypeInferenceError, match=match):
        load(col2im(image_len, block_len, attrs))


@pytest.mark.parametrize("image, block, match", [
    ([0, 0], [0, 0], "must be positive"),
    ([4, 4], [6, 1], "does not fit the padded image_shape"),
    ([5, 5], [2, 2], r"does not hold 16 blocks of 4 elements"),
])
def test_col2im_runtime_errors(image, block, match):
    mod = load(col2im())
    x = np.zeros((1, 4, 9), np.float32)
    with pytest.raises(ExecutionError, match=match):
        interp.run(mod, [x, np.array(image, np.int64), np.array(block, np.int64)])


def test_col2im_valid_runtime_shapes_still_run():
    mod = load(col2im())
    x = np.arange(36, dtype=np.float32).reshape(1, 4, 9)
    (y,) = interp.run(mod, [x, np.array([4, 4], np.int64), np.array([2, 2], np.int64)])
    assert y.shape == (1, 1, 4, 4)
    assert y.sum() == x.sum()  # each block element adds into exactly one image element
    assert y[0, 0, 0, 0] == x[0, 0, 0]


def test_gridsample_empty_spatial_input():
    m = model("GridSample", [(F, [1, 1, 2, 0]), (F, [1, 2, 4, 2])],
              {"mode": "cubic", "align_corners": 1})
    with pytest.raises(TypeInferenceError, match=r"X spatial shape \[2, 0\] is empty"):
        load(m)


@pytest.mark.parametrize("x_shape, grid_shape, out_shape", [
    ([0, 1, 3, 2], [0, 2, 4, 2], (0, 1, 2, 4)),
    ([1, 0, 3, 2], [1, 2, 4, 2], (1, 0, 2, 4)),
    ([0, 1, 3, 2, 2], [0, 2, 4, 2, 3], (0, 1, 2, 4, 2)),
])
def test_gridsample_empty_output_runs(x_shape, grid_shape, out_shape):
    mod = load(model("GridSample", [(F, x_shape), (F, grid_shape)], {"mode": "nearest"}))
    (y,) = interp.run(mod, [np.zeros(x_shape, np.float32), np.zeros(grid_shape, np.float32)])
    assert y.shape == out_shape


@pytest.mark.parametrize("offset, mask, match", [
    ([0, 8, 2, 2], None, "offset batch != X batch: 0 != 1"),
    ([1, 8, 2, 2], [2, 4, 2, 2], "mask batch != X batch: 2 != 1"),
    ([1, 8, 2, 2], [1, 4, 7, 2], "mask spatial shape != output spatial shape: 7 != 2"),
    ([1, 8, 2, 2], [1, 3, 2, 2], r"mask.shape\[1\] != offset_group \* prod\(kernel\): 3 != 4"),
])
def test_deform_conv_offset_and_mask_shapes(offset, mask, match):
    inputs = [(F, [1, 1, 3, 3]), (F, [1, 1, 2, 2]), (F, offset)]
    if mask is not None:
        inputs += [(F, [1]), (F, mask)]
    m = model("DeformConv", inputs, {"kernel_shape": [2, 2]})
    with pytest.raises(AnvilError, match=match):
        load(m)
