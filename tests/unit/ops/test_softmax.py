"""compiler/ops/softmax.py: Softmax, LogSoftmax, Hardmax against onnxruntime, including the
opset < 13 coerce-to-2-D semantics (kept through the internal `coerce_2d` attribute)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model

X = (np.random.default_rng(2).standard_normal((2, 3, 4)) * 3).astype(np.float32)


def one_node(op, x, attrs=None, opset=13):
    node = helper.make_node(op, ["x"], ["y"], **(attrs or {}))
    vi = helper.make_tensor_value_info("x", DType.from_np(x.dtype).onnx, x.shape)
    model = helper.make_model(
        helper.make_graph([node], "g", [vi], [helper.make_empty_tensor_value_info("y")]),
        opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def check_ort(op, x, attrs=None, opset=13, rtol=1e-5, atol=1e-6):
    model = one_node(op, x, attrs, opset)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, {"x": x})
    (got,) = prepare(model).run([x])
    assert (got.dtype, got.shape) == (want.dtype, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_matches_ort_old_and_new_semantics(op, opset, axis):
    check_ort(op, X, None if axis is None else {"axis": axis}, opset)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_float16_and_float64(op):
    # each step rounds to float16 (the spec's function body); onnxruntime keeps float32
    check_ort(op, X.astype(np.float16), {"axis": 1}, rtol=2e-3, atol=2e-3)
    check_ort(op, X.astype(np.float64), {"axis": 1})


def test_old_softmax_normalises_trailing_axes_together():
    (y,) = prepare(one_node("Softmax", X, {"axis": 1}, opset=11)).run([X])
    np.testing.assert_allclose(y.sum(axis=(1, 2)), np.ones(2), rtol=1e-6)
    (y,) = prepare(one_node("Softmax", X, {"axis": 1}, opset=13)).run([X])
    np.testing.assert_allclose(y.sum(axis=1), np.ones((2, 4)), rtol=1e-6)


def test_half_precision_rounds_each_step():
    x = np.array([[0.1, 0.2, 0.3]], np.float16)
    e = np.exp(x - x.max(axis=1, keepdims=True))  # float16 Sub and Exp
    s = e.astype(np.float32).sum(axis=1, keepdims=True).astype(np.float16)
    (y,) = prepare(one_node("Softmax", x)).run([x])
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, e / s)


def test_hardmax_picks_first_maximum():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], np.float32)
    (y,) = prepare(one_node("Hardmax", x)).run([x])
    np.testing.assert_array_equal(y, [[0, 1, 0], [1, 0, 0]])


def test_errors():
    def error(*args, **kw):
        with pytest.raises(AnvilError) as e:
            import_model(one_node(*args, **kw))
        return str(e.value)

    assert "axis 3 out of range for rank 3" in error("Softmax", X, {"axis": 3})
    assert "dtype int32 not supported" in error("LogSoftmax", X.astype(np.int32))
    assert "internal to Anvil" in error("Softmax", X, {"coerce_2d": 1})
