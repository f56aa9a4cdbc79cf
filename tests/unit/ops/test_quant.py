"""compiler/ops/quant.py: QuantizeLinear/DequantizeLinear (per-tensor, per-axis, blocked;
int4/float8 targets, rounding, saturation), DynamicQuantizeLinear, QLinearConv and
QLinearMatMul against onnxruntime and hand-computed values; clean type errors."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model

RNG = np.random.default_rng(3)


def one_node(op, inputs, attrs=None, *, opset=21, n_out=1):
    names = [f"x{i}" if a is not None else "" for i, a in enumerate(inputs)]
    node = helper.make_node(op, names, [f"y{k}" for k in range(n_out)], **(attrs or {}))
    vis = [helper.make_tensor_value_info(f"x{i}", DType.from_np(a.dtype).onnx, a.shape)
           for i, a in enumerate(inputs) if a is not None]
    outs = [helper.make_empty_tensor_value_info(f"y{k}") for k in range(n_out)]
    model = helper.make_model(helper.make_graph([node], "g", vis, outs),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def anvil(op, inputs, attrs=None, **kw) -> list[np.ndarray]:
    return list(prepare(one_node(op, inputs, attrs, **kw)).run([a for a in inputs
                                                                if a is not None]))


def check_ort(op, inputs, attrs=None, **kw) -> None:
    """Bit-exact agreement (quantized results are integers; float results one rounding)."""
    model = one_node(op, inputs, attrs, **kw)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {f"x{i}": a for i, a in enumerate(inputs) if a is not None})
    for w, g in zip(want, anvil(op, inputs, attrs, **kw), strict=True):
        assert (g.dtype, g.shape) == (w.dtype, w.shape)
        np.testing.assert_array_equal(g, w)


def type_error(op, inputs, attrs=None, **kw) -> str:
    with pytest.raises(AnvilError) as e:
        import_model(one_node(op, inputs, attrs, **kw))
    return str(e.value)


def f32(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def scales(*shape):
    return np.asarray(RNG.random(shape) * 0.2 + 0.05, dtype=np.float32)


@pytest.mark.parametrize("zp_type", [np.uint8, np.int8, np.int16, np.uint16])
def test_quantize_dequantize_per_axis_and_blocked_match_ort(zp_type):
    x = f32(2, 6, 3, scale=20)
    info = np.iinfo(zp_type)
    for axis, block, sshape in ((1, 0, (6,)), (-1, 0, (3,)), (1, 4, (2, 2, 3)), (0, 0, ())):
        attrs = {"axis": axis, "block_size": block}
        s = scales(*sshape)
        zp = np.asarray(RNG.integers(info.min // 2, info.max // 2, sshape)).astype(zp_type)
        check_ort("QuantizeLinear", [x, s, zp], attrs)
        q = anvil("QuantizeLinear", [x, s, zp], attrs)[0]
        check_ort("DequantizeLinear", [q, s, zp], attrs)


def test_quantize_rounds_half_to_even_and_saturates():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 300.0, -300.0, 7.4], np.float32)
    (y,) = anvil("QuantizeLinear", [x, np.array(1.0, np.float32), np.array(0, np.int8)])
    np.testing.assert_array_equal(y, [0, 2, 2, 0, -2, 127, -128, 7])
    (y,) = anvil("QuantizeLinear", [x, np.array(1.0, np.float32),
                                    np.array([1], ml_dtypes.int4)])
    assert y.dtype == ml_dtypes.int4
    np.testing.assert_array_equal(y.astype(np.int8), [1, 3, 3, 1, -1, 7, -8, 7])


def test_quantize_to_float8_saturate_flag():
    x = np.array([1000.0, -np.inf, 3.3, np.nan], np.float32)
    zp = np.zeros(1, ml_dtypes.float8_e4m3fn)
    one = np.array(1.0, np.float32)
    (sat,) = anvil("QuantizeLinear", [x, one, zp])
    np.testing.assert_array_equal(sat.astype(np.float32), [448, -448, 3.25, np.nan])
    (raw,) = anvil("QuantizeLinear", [x, one, zp], {"saturate": 0})
    assert np.isnan(raw.astype(np.float32)[[0, 1, 3]]).all()
    (y,) = anvil("DequantizeLinear", [sat, np.array(2.0, np.float16)])
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, [896, -896, 6.5, np.nan])


def test_output_dtype_without_zero_point():
    (y,) = anvil("QuantizeLinear", [np.array([1.0, -70000.0], np.float32),
                                    np.array(0.5, np.float32)], {"output_dtype": 5})
    assert y.dtype == np.int16
    np.testing.assert_array_equal(y, [2, -32768])
    (y,) = anvil("QuantizeLinear", [np.array([1.0, -7.0], np.float32),
                                    np.array(0.5, np.float32)])
    assert y.dtype == np.uint8
    np.testing.assert_array_equal(y, [2, 0])


def test_dynamic_quantize_linear_matches_ort():
    check_ort("DynamicQuantizeLinear", [f32(3, 5, scale=4)], opset=11, n_out=3)
    check_ort("DynamicQuantizeLinear", [np.abs(f32(7))], opset=11, n_out=3)


@pytest.mark.parametrize("per_channel", [False, True])
def test_qlinear_conv_matches_ort(per_channel):
    x = RNG.integers(0, 255, (1, 4, 6, 5)).astype(np.uint8)
    w = RNG.integers(-128, 127, (6, 2, 3, 3)).astype(np.int8)
    m = (6,) if per_channel else ()
    inputs = [x, np.array(0.02, np.float32), np.array(120, np.uint8), w, scales(*m),
              np.zeros(m, np.int8), np.array(0.7, np.float32), np.array(10, np.uint8),
              RNG.integers(-500, 500, 6).astype(np.int32)]
    check_ort("QLinearConv", inputs, {"group": 2, "pads": [1, 0, 1, 1], "strides": [2, 1]},
              opset=10)


@pytest.mark.parametrize("t", [np.uint8, np.int8])
def test_qlinear_matmul_matches_ort(t):
    lo, hi = np.iinfo(t).min, np.iinfo(t).max
    a = RNG.integers(lo, hi, (2, 3, 4)).astype(t)
    b = RNG.integers(lo, hi, (4, 5)).astype(t)
    inputs = [a, scales(), np.array(3, t), b, scales(5), np.asarray(RNG.integers(-3, 3, 5), t),
              np.array(0.3, np.float32), np.array(-2 if t == np.int8 else 5, t)]
    check_ort("QLinearMatMul", inputs)


def test_quant_type_errors():
    x = f32(2, 3)
    assert "per-axis scale has 2 values, input axis 1 has 3" in type_error(
        "QuantizeLinear", [x, scales(2)])
    assert "zero point shape [3] != scale shape [2]" in type_error(
        "QuantizeLinear", [x, scales(2), np.zeros(3, np.uint8)], {"axis": 0})
    assert "blocked scale shape [2, 1]" in type_error(
        "QuantizeLinear", [x, scales(2, 1), np.zeros((2, 1), np.uint8)], {"block_size": 2})
    assert "output_dtype int8 != y_zero_point dtype uint8" in type_error(
        "QuantizeLinear", [x, scales(), np.zeros((), np.uint8)], {"output_dtype": 3})
    assert "axis 2 out of range" in type_error("DequantizeLinear", [
        np.zeros((2, 3), np.uint8), scales(3)], {"axis": 2})
    assert "x_zero_point dtype int8 != x dtype uint8" in type_error("DequantizeLinear", [
        np.zeros((2, 3), np.uint8), scales(), np.zeros((), np.int8)])
    assert "x dtype float32" in type_error("DequantizeLinear", [x, scales()])
    assert "w_zero_point length" in type_error("QLinearConv", [
        np.zeros((1, 2, 4, 4), np.uint8), scales(), np.zeros((), np.uint8),
        np.zeros((3, 2, 2, 2), np.uint8), scales(), np.zeros(2, np.uint8), scales(),
        np.zeros((), np.uint8)], opset=10)
    assert "inner dimensions differ" in type_error("QLinearMatMul", [
        np.zeros((2, 3), np.uint8), scales(), np.zeros((), np.uint8),
        np.zeros((2, 3), np.uint8), scales(), np.zeros((), np.uint8), scales(),
        np.zeros((), np.uint8)])
