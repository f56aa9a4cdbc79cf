"""compiler/ops/pool.py: MaxPool (with indices), AveragePool, LpPool, the global pools and
MaxUnpool against onnxruntime and hand-computed values; clean type errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model

RNG = np.random.default_rng(1)


def one_node(op, inputs, attrs=None, *, opset=22, n_out=1, consts=()):
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


def check_ort(op, inputs, attrs=None, *, tol=1e-5, **kw) -> None:
    model = one_node(op, inputs, attrs, **kw)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {f"x{i}": a for i, a in enumerate(inputs)})
    for w, g in zip(want, anvil(op, inputs, attrs, **kw), strict=True):
        assert (g.dtype, g.shape) == (w.dtype, w.shape)
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


def type_error(op, inputs, attrs=None, **kw) -> str:
    with pytest.raises(AnvilError) as e:
        import_model(one_node(op, inputs, attrs, **kw))
    return str(e.value)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


WINDOWS = [
    {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [3, 2], "strides": [3, 2], "pads": [1, 1, 1, 0], "ceil_mode": 1},
    {"kernel_shape": [2, 3], "dilations": [2, 1], "pads": [0, 2, 1, 0]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
    {"kernel_shape": [2, 2], "strides": [2, 1], "auto_pad": "SAME_LOWER"},
    {"kernel_shape": [3, 2], "auto_pad": "VALID"},
]


@pytest.mark.parametrize("attrs", WINDOWS)
def test_max_pool_with_indices_matches_ort(attrs):
    check_ort("MaxPool", [f32(2, 3, 7, 6)], attrs, n_out=2)
    check_ort("MaxPool", [f32(1, 2, 5, 6)], dict(attrs, storage_order=1), n_out=2)


@pytest.mark.parametrize("attrs", WINDOWS)
@pytest.mark.parametrize("include", [0, 1])
def test_average_pool_matches_ort(attrs, include):
    check_ort("AveragePool", [f32(2, 3, 7, 6)], dict(attrs, count_include_pad=include))


def test_lp_pool_and_max_pool_int8_match_ort():
    check_ort("LpPool", [f32(1, 2, 6, 7)], {"kernel_shape": [3, 2], "p": 3, "pads": [1] * 4,
                                            "strides": [2, 2]})
    x = RNG.integers(-128, 127, (1, 2, 5, 5)).astype(np.int8)
    check_ort("MaxPool", [x], {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1]})


def test_ceil_mode_drops_a_window_that_starts_in_the_right_padding():
    # 1-D extent 2, kernel 1, stride 2: ceil would give 2 windows but the second starts past
    # the input, so there is one.
    (y,) = anvil("MaxPool", [f32(1, 1, 2)], {"kernel_shape": [1], "strides": [2],
                                              "ceil_mode": 1})
    assert y.shape == (1, 1, 1)
    x = np.array([[[1, 2, 3, 4, 5]]], np.float32)
    (y,) = anvil("AveragePool", [x], {"kernel_shape": [2], "strides": [2], "ceil_mode": 1,
                                      "pads": [1, 0], "count_include_pad": 1})
    # windows [pad, 1], [2, 3], [4, 5]: the divisor counts the left pad, not ceil's extra room
    np.testing.assert_allclose(y[0, 0], [0.5, 2.5, 4.5])


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"])
def test_global_pools_match_ort(op):
    opset = 2 if op == "GlobalLpPool" else 22  # onnxruntime has GlobalLpPool-2 only
    check_ort(op, [f32(2, 3, 4, 5)], opset=opset)
    check_ort(op, [f32(1, 2, 3, 4, 2)], opset=opset)


def test_max_unpool_inverts_max_pool():
    x = np.array([[[[1, 2, 0, 5], [3, 4, 0, 6], [9, 0, 7, 0], [0, 0, 8, 1]]]], np.float32)
    pooled, idx = anvil("MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2]}, n_out=2)
    np.testing.assert_array_equal(idx[0, 0], [[5, 7], [8, 14]])
    (y,) = anvil("MaxUnpool", [pooled, idx], {"kernel_shape": [2, 2], "strides": [2, 2]})
    np.testing.assert_array_equal(y, np.where(np.isin(x, [4, 6, 9, 8]), x, 0))
    (z,) = anvil("MaxUnpool", [pooled, idx, np.array([1, 1, 5, 5], np.int64)],
                 {"kernel_shape": [2, 2], "strides": [2, 2]}, consts=(2,))
    assert z.shape == (1, 1, 5, 5) and np.array_equal(z[:, :, :4, :4], y)


def test_pool_type_errors():
    assert "X must have rank 4" in type_error("MaxPool", [f32(1, 2, 5)],
                                              {"kernel_shape": [2, 2]})
    assert "requires attribute 'kernel_shape'" in type_error("AveragePool", [f32(1, 2, 5)])
    assert "p 0 must be positive" in type_error("LpPool", [f32(1, 2, 5)],
                                                {"kernel_shape": [2], "p": 0})
    assert "X dtype int32" in type_error("AveragePool", [np.zeros((1, 2, 5), np.int32)],
                                         {"kernel_shape": [2]})
    assert "does not fit" in type_error("MaxPool", [f32(1, 2, 2)], {"kernel_shape": [5]})
    assert "I must be int64" in type_error("MaxUnpool", [f32(1, 1, 2, 2),
                                                         np.zeros((1, 1, 2, 2), np.int32)],
                                           {"kernel_shape": [2, 2]})
    assert "storage_order 2" in type_error("MaxPool", [f32(1, 2, 5)],
                                           {"kernel_shape": [2], "storage_order": 2})
