"""compiler/ops/matmul.py: MatMul (numpy semantics incl. 1-D operands), MatMulInteger and Gemm
against numpy/onnxruntime; clean type errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model

RNG = np.random.default_rng(2)


def one_node(op, inputs, attrs=None, *, opset=13):
    names = [f"x{i}" if a is not None else "" for i, a in enumerate(inputs)]
    node = helper.make_node(op, names, ["y"], **(attrs or {}))
    vis = [helper.make_tensor_value_info(f"x{i}", DType.from_np(a.dtype).onnx, a.shape)
           for i, a in enumerate(inputs) if a is not None]
    model = helper.make_model(
        helper.make_graph([node], "g", vis, [helper.make_empty_tensor_value_info("y")]),
        opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def anvil(op, inputs, attrs=None, **kw) -> np.ndarray:
    return prepare(one_node(op, inputs, attrs, **kw)).run([a for a in inputs if a is not None])[0]


def check_ort(op, inputs, attrs=None, *, tol=1e-5, **kw) -> None:
    model = one_node(op, inputs, attrs, **kw)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, {f"x{i}": a for i, a in enumerate(inputs) if a is not None})
    got = anvil(op, inputs, attrs, **kw)
    assert (got.dtype, got.shape) == (want.dtype, want.shape)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def type_error(op, inputs, attrs=None, **kw) -> str:
    with pytest.raises(AnvilError) as e:
        import_model(one_node(op, inputs, attrs, **kw))
    return str(e.value)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("a, b", [
    ((3,), (3,)), ((4,), (2, 4, 5)), ((2, 3, 4), (4,)), ((3, 1, 2, 4), (2, 4, 5)),
    ((1, 4), (3, 4, 2)), ((2, 3), (3, 7)),
])
def test_matmul_follows_numpy(a, b):
    x, y = f32(*a), f32(*b)
    got = anvil("MatMul", [x, y])
    want = np.matmul(x.astype(np.float64), y.astype(np.float64))
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_matmul_other_dtypes_match_ort():
    check_ort("MatMul", [f32(2, 3, 8).astype(np.float16), f32(8, 5).astype(np.float16)],
              tol=1e-2)
    check_ort("MatMul", [RNG.integers(-9, 9, (2, 3)).astype(np.int32),
                         RNG.integers(-9, 9, (3, 4)).astype(np.int32)])
    check_ort("MatMul", [f32(3, 4).astype(np.float64), f32(4, 2).astype(np.float64)])


@pytest.mark.parametrize("attrs, c_shape", [
    ({}, None), ({"transA": 1}, (5,)), ({"transB": 1, "alpha": 0.5}, (3, 1)),
    ({"transA": 1, "transB": 1, "alpha": 0.25, "beta": 0.35}, (3, 5)), ({"beta": 2.0}, ()),
])
def test_gemm_matches_ort(attrs, c_shape):
    a = f32(4, 3) if attrs.get("transA") else f32(3, 4)
    b = f32(5, 4) if attrs.get("transB") else f32(4, 5)
    check_ort("Gemm", [a, b] + ([] if c_shape is None else [f32(*c_shape)]), attrs)


def test_matmul_integer_matches_ort_and_takes_per_row_zero_points():
    a = RNG.integers(0, 255, (3, 5)).astype(np.uint8)
    b = RNG.integers(-128, 127, (5, 4)).astype(np.int8)
    bzp = RNG.integers(-5, 5, (4,)).astype(np.int8)
    check_ort("MatMulInteger", [a, b, np.array(9, np.uint8), bzp], opset=10)
    azp = np.array([1, 2, 3], np.uint8)  # per row of A (onnxruntime takes scalars only)
    got = anvil("MatMulInteger", [a, b, azp, bzp], opset=10)
    want = (a.astype(np.int64) - azp[:, None]) @ (b.astype(np.int64) - bzp)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


def test_matmul_type_errors():
    assert "inner dimensions differ" in type_error("MatMul", [f32(2, 3), f32(4, 2)])
    assert "cannot broadcast" in type_error("MatMul", [f32(2, 2, 3), f32(3, 3, 4)])
    assert "rank >= 1" in type_error("MatMul", [f32(), f32(3)])
    assert "B dtype float64" in type_error("MatMul", [f32(2), f32(2).astype(np.float64)])
    assert "A dtype int8" in type_error("MatMul", [np.zeros(2, np.int8), np.zeros(2, np.int8)])
    assert "inner dimensions differ" in type_error("Gemm", [f32(2, 3), f32(2, 3)])
    assert "A must be 2-D" in type_error("Gemm", [f32(2, 3, 1), f32(3, 2)])
    assert "cannot broadcast" in type_error("Gemm", [f32(2, 3), f32(3, 4), f32(3, 4)])
    assert "does not broadcast" in type_error("Gemm", [f32(1, 3), f32(3, 4), f32(3, 4)])
    assert "per-row" in type_error("MatMulInteger", [np.zeros((3, 2), np.uint8),
                                                     np.zeros((2, 2), np.uint8),
                                                     np.zeros(4, np.uint8)], opset=10)
    assert "a_zero_point dtype int8" in type_error("MatMulInteger", [
        np.zeros((3, 2), np.uint8), np.zeros((2, 2), np.uint8), np.zeros((), np.int8)],
        opset=10)
