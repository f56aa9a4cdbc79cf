"""compiler/ops/conv.py: Conv, ConvTranspose, ConvInteger, Col2Im, DeformConv and
CausalConvWithState against onnxruntime and hand-computed values; clean type errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model

RNG = np.random.default_rng(0)


def one_node(op, inputs, attrs=None, *, opset=22, n_out=1, consts=()):
    """A one-node model; inputs whose index is in `consts` become initializers."""
    names = [f"x{i}" if a is not None else "" for i, a in enumerate(inputs)]
    node = helper.make_node(op, names, [f"y{k}" for k in range(n_out)], **(attrs or {}))
    vis = [helper.make_tensor_value_info(f"x{i}", DType.from_np(a.dtype).onnx, a.shape)
           for i, a in enumerate(inputs) if a is not None and i not in consts]
    inits = [numpy_helper.from_array(inputs[i], f"x{i}") for i in consts]
    outs = [helper.make_empty_tensor_value_info(f"y{k}") for k in range(n_out)]
    model = helper.make_model(helper.make_graph([node], "g", vis, outs, initializer=inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def anvil(op, inputs, attrs=None, **kw) -> list[np.ndarray]:
    consts = kw.get("consts", ())
    feeds = [a for i, a in enumerate(inputs) if a is not None and i not in consts]
    return list(prepare(one_node(op, inputs, attrs, **kw)).run(feeds))


def onnxruntime(op, inputs, attrs=None, **kw) -> list[np.ndarray]:
    consts = kw.get("consts", ())
    model = one_node(op, inputs, attrs, **kw)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {f"x{i}": a for i, a in enumerate(inputs)
                           if a is not None and i not in consts})


def check_ort(op, inputs, attrs=None, *, tol=1e-4, **kw) -> None:
    for w, g in zip(onnxruntime(op, inputs, attrs, **kw), anvil(op, inputs, attrs, **kw),
                    strict=True):
        assert (g.dtype, g.shape) == (w.dtype, w.shape)
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


def type_error(op, inputs, attrs=None, **kw) -> str:
    with pytest.raises(AnvilError) as e:
        import_model(one_node(op, inputs, attrs, **kw))
    return str(e.value)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("attrs", [
    {"group": 2, "strides": [2, 1], "dilations": [1, 2], "pads": [1, 0, 2, 1]},
    {"auto_pad": "SAME_LOWER", "strides": [2, 2]},
    {"auto_pad": "SAME_UPPER"},
    {"auto_pad": "VALID", "strides": [3, 2]},
])
def test_conv_2d_matches_ort(attrs):
    check_ort("Conv", [f32(2, 4, 9, 8), f32(6, 4 // attrs.get("group", 1), 3, 3), f32(6)], attrs)


def test_conv_1d_and_3d_match_ort():
    check_ort("Conv", [f32(1, 3, 11), f32(4, 3, 4)], {"strides": [3], "pads": [2, 1]})
    check_ort("Conv", [f32(1, 2, 5, 4, 6), f32(4, 1, 2, 3, 2)], {"group": 2, "pads": [1] * 6})


def test_conv_hand_computed():
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2), np.float32)
    (y,) = anvil("Conv", [x, w, np.array([10], np.float32)], {"kernel_shape": [2, 2]})
    np.testing.assert_array_equal(y[0, 0], [[18, 22], [30, 34]])


def test_conv_float16_and_symbolic_batch():
    check_ort("Conv", [f32(1, 2, 6, 6).astype(np.float16), f32(2, 2, 3, 3).astype(np.float16)],
              tol=1e-2)
    model = one_node("Conv", [f32(1, 2, 6, 6), f32(3, 2, 3, 3)], {"pads": [1, 1, 1, 1]})
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    fn = import_model(model).main
    assert fn.results[0].type.shape == ("N", 3, 6, 6)


@pytest.mark.parametrize("attrs", [
    {"group": 2, "strides": [3, 2], "output_padding": [1, 1], "pads": [1, 0, 0, 2]},
    {"strides": [2, 2], "output_shape": [10, 9]},
    {"strides": [2, 1], "dilations": [2, 1], "auto_pad": "SAME_LOWER"},
])
def test_conv_transpose_matches_ort(attrs):
    check_ort("ConvTranspose", [f32(2, 4, 4, 5), f32(4, 3, 3, 3), f32(3 * attrs.get("group", 1))],
              attrs)


def test_conv_integer_matches_ort():
    x = RNG.integers(0, 255, (1, 2, 5, 5)).astype(np.uint8)
    w = RNG.integers(0, 255, (3, 2, 2, 2)).astype(np.uint8)
    check_ort("ConvInteger", [x, w, np.array(7, np.uint8), np.array(100, np.uint8)],
              {"pads": [1, 0, 0, 1]}, opset=10)


def test_col2im_matches_ort_and_inverts_unfold():
    image, block = np.array([5, 6], np.int64), np.array([2, 3], np.int64)
    attrs = {"strides": [1, 2], "pads": [1, 0, 0, 1], "dilations": [2, 1]}
    x = f32(2, 2 * 6, 4 * 3)
    check_ort("Col2Im", [x, image, block], attrs, opset=18, consts=(1, 2))
    # non-overlapping blocks: Col2Im is exactly the inverse of cutting the image into tiles
    img = f32(1, 1, 4, 6)
    cols = img.reshape(1, 2, 2, 2, 3).transpose(0, 2, 4, 1, 3).reshape(1, 6, 4)
    (y,) = anvil("Col2Im", [cols, np.array([4, 6]), np.array([2, 3])],
                 {"strides": [2, 3]}, opset=18, consts=(1, 2))
    np.testing.assert_array_equal(y, img)


def test_deform_conv_with_zero_offsets_is_a_masked_conv():
    x, w, b = f32(1, 4, 6, 7), f32(4, 2, 3, 2), f32(4)
    attrs = {"group": 2, "pads": [1, 0, 1, 1], "strides": [2, 1]}
    (ref,) = onnxruntime("Conv", [x, w, b], attrs)
    out = ref.shape[2:]
    offset = np.zeros((1, 2 * 6 * 2) + out, np.float32)
    mask = np.full((1, 2 * 6) + out, 0.5, np.float32)
    (y,) = anvil("DeformConv", [x, w, offset, b, mask], dict(attrs, offset_group=2))
    np.testing.assert_allclose(y, 0.5 * (ref - b.reshape(1, 4, 1, 1)) + b.reshape(1, 4, 1, 1),
                               rtol=1e-5, atol=1e-5)


def test_deform_conv_fractional_offset_interpolates():
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 1, 1), np.float32)
    offset = np.zeros((1, 2, 3, 3), np.float32)
    offset[0, 0, 0, 0] = 0.5  # sample (0.5, 0): halfway between x[0,0] and x[1,0]
    offset[0, 1, 2, 2] = 1.0  # sample (2, 3): outside, zero
    (y,) = anvil("DeformConv", [x, w, offset])
    want = x[0, 0].copy()
    want[0, 0], want[2, 2] = 1.5, 0.0
    np.testing.assert_allclose(y[0, 0], want)


def test_causal_conv_with_state_is_a_depthwise_conv():
    x, w, b, past = f32(2, 3, 5), f32(3, 1, 4), f32(3), f32(2, 3, 3)
    y, state = anvil("CausalConvWithState", [x, w, b, past], {"activation": "silu"},
                     opset=27, n_out=2)
    (ref,) = onnxruntime("Conv", [np.concatenate([past, x], axis=2), w, b], {"group": 3})
    np.testing.assert_allclose(y, ref / (1 + np.exp(-ref)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(state, np.concatenate([past, x], axis=2)[:, :, -3:])


# ---------------------------------------------------------------------------------------


def test_conv_type_errors():
    assert "X channels != W.shape[1] * group" in type_error("Conv", [f32(1, 3, 5, 5),
                                                                     f32(2, 2, 3, 3)])
    assert "auto_pad 'SAME'" in type_error("Conv", [f32(1, 2, 5, 5), f32(2, 2, 3, 3)],
                                           {"auto_pad": "SAME"})
    assert "pads has 2 values, expected 4" in type_error("Conv", [f32(1, 2, 5, 5),
                                                                  f32(2, 2, 3, 3)],
                                                         {"pads": [1, 1]})
    assert "W must have rank 4" in type_error("Conv", [f32(1, 2, 5, 5), f32(2, 2, 3)])
    assert "bias length" in type_error("Conv", [f32(1, 2, 5, 5), f32(4, 2, 3, 3), f32(3)])
    assert "does not fit" in type_error("Conv", [f32(1, 2, 2, 2), f32(4, 2, 5, 5)])
    assert "W dtype float64" in type_error("Conv", [f32(1, 2, 5, 5),
                                                    f32(4, 2, 3, 3).astype(np.float64)])
    assert "X dtype int32" in type_error("Conv", [np.zeros((1, 2, 5, 5), np.int32),
                                                  np.zeros((4, 2, 3, 3), np.int32)])
    assert "not divisible by group 3" in type_error("Conv", [f32(1, 3, 5, 5), f32(4, 1, 3, 3)],
                                                    {"group": 3})
    assert "strides [0, 1] must be >= 1" in type_error("Conv", [f32(1, 2, 5, 5),
                                                                f32(4, 2, 3, 3)],
                                                       {"strides": [0, 1]})


def test_other_conv_type_errors():
    assert "X channels != W.shape[0]" in type_error("ConvTranspose", [f32(1, 3, 5, 5),
                                                                      f32(2, 2, 3, 3)])
    assert "input.shape[2] != number of blocks" in type_error(
        "Col2Im", [f32(1, 6, 5), np.array([4, 6]), np.array([2, 3])], {"strides": [2, 3]},
        opset=18, consts=(1, 2))
    assert "not divisible by block size 6" in type_error(
        "Col2Im", [f32(1, 7, 4), np.array([4, 6]), np.array([2, 3])], {"strides": [2, 3]},
        opset=18, consts=(1, 2))
    assert "offset.shape[1]" in type_error("DeformConv", [f32(1, 2, 5, 5), f32(2, 2, 3, 3),
                                                          f32(1, 9, 3, 3)])
    assert "weight.shape[1] must be 1" in type_error("CausalConvWithState",
                                                     [f32(1, 3, 5), f32(3, 2, 4)], opset=27)
    assert "activation 'relu'" in type_error("CausalConvWithState",
                                             [f32(1, 3, 5), f32(3, 1, 4)],
                                             {"activation": "relu"}, opset=27)
    assert "x dtype float32" in type_error("ConvInteger", [f32(1, 2, 5, 5),
                                                           f32(2, 2, 3, 3)], opset=10)
