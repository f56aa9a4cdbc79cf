"""compiler/ops/cast.py: Cast/CastLike/BitCast against onnxruntime and hand-computed values
for the exotic types (float8 saturation, float8e8m0 rounding, int4 wrapping, strings)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as TP
from onnx import helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError, ExecutionError
from compiler.ops.cast import bitcast_array, cast_array


def one_node(op: str, inputs: list[np.ndarray], attrs: dict | None = None,
             opset: int = 25) -> onnx.ModelProto:
    names = [f"x{i}" for i in range(len(inputs))]
    node = helper.make_node(op, names, ["y"], **(attrs or {}))
    vis = [helper.make_tensor_value_info(
        n, TP.STRING if a.dtype == object else DType.from_np(a.dtype).onnx, a.shape)
        for n, a in zip(names, inputs, strict=True)]
    graph = helper.make_graph([node], "g", vis, [helper.make_empty_tensor_value_info("y")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def anvil(op: str, inputs: list[np.ndarray], attrs: dict | None = None,
          opset: int = 25) -> np.ndarray:
    return prepare(one_node(op, inputs, attrs, opset)).run(inputs)[0]


VALUES = np.array([0.0, -0.0, 0.3, -0.7, 1.5, 2.5, -2.5, 100.2, -100.9, 255.0, 300.5, 1e6,
                   -1e6, 65504.0, 7e4, 1e-7, 448.0, 464.0, 57344.0, 6e4, np.nan, np.inf,
                   -np.inf], dtype=np.float32)


@pytest.mark.parametrize("to,saturate", [
    (TP.FLOAT16, None), (TP.DOUBLE, None), (TP.BOOL, None), (TP.STRING, None), (TP.INT8, None),
    (TP.UINT8, None), (TP.INT32, None), (TP.INT64, None), (TP.FLOAT8E4M3FN, 1),
    (TP.FLOAT8E4M3FN, 0),
])
def test_cast_float32_matches_ort(to, saturate):
    x = VALUES
    if DType.from_onnx(to).is_int:  # float -> int out of range or NaN is undefined
        info = np.iinfo(DType.from_onnx(to).np)
        x = x[np.isfinite(x) & (x >= info.min) & (x <= info.max)]
    attrs = {"to": to} if saturate is None else {"to": to, "saturate": saturate}
    model = one_node("Cast", [x], attrs, opset=21)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, {"x0": x})
    (got,) = prepare(model).run([x])
    if to == TP.FLOAT8E4M3FN:  # onnxruntime hands float8 back as raw bytes
        assert got.dtype == ml_dtypes.float8_e4m3fn
        got = got.view(np.uint8)
    assert got.dtype == want.dtype and got.shape == want.shape
    if want.dtype == object:
        assert got.tolist() == want.tolist()
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("src", [np.int64, np.uint8, np.int16, np.bool_, np.float64])
@pytest.mark.parametrize("to", [TP.INT8, TP.UINT16, TP.FLOAT, TP.STRING, TP.BOOL])
def test_cast_other_sources_match_ort(src, to):
    x = np.array([0, 1, 7, 100, 200, 255, 3000], dtype=np.int64).astype(src)
    model = one_node("Cast", [x], {"to": to})
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, {"x0": x})
    (got,) = prepare(model).run([x])
    assert got.dtype == want.dtype
    assert got.tolist() == want.tolist()


def test_float8_saturation_rules():
    x = np.array([1e6, -1e6, np.inf, -np.inf, np.nan, 500.0, -0.0], dtype=np.float32)
    e4 = anvil("Cast", [x], {"to": TP.FLOAT8E4M3FN}).astype(np.float32)
    np.testing.assert_array_equal(e4, [448, -448, 448, -448, np.nan, 448, -0.0])
    e4 = anvil("Cast", [x], {"to": TP.FLOAT8E4M3FN, "saturate": 0}).astype(np.float32)
    assert np.isnan(e4[:6]).all()  # 500 rounds to 512 > 448: NaN
    e5 = anvil("Cast", [x], {"to": TP.FLOAT8E5M2, "saturate": 0}).astype(np.float32)
    np.testing.assert_array_equal(e5[:4], [np.inf, -np.inf, np.inf, -np.inf])
    uz = anvil("Cast", [x], {"to": TP.FLOAT8E4M3FNUZ}).astype(np.float32)
    assert uz[0] == 240 and not np.signbit(uz[6])  # fnuz has no -0


def test_e8m0_round_modes():
    x = np.array([3.0, 2.5, 4.0, 0.3, 1e-40, 0.0, 3e38], dtype=np.float32)
    def bits(mode: str, sat: int = 1) -> list[int]:
        y = anvil("Cast", [x], {"to": TP.FLOAT8E8M0, "round_mode": mode, "saturate": sat})
        return (y.view(np.uint8).astype(int) - 127).tolist()  # log2 of the value
    assert bits("up") == [2, 2, 2, -1, -127, -127, 127]
    assert bits("down") == [1, 1, 2, -2, -127, -127, 127]
    assert bits("nearest") == [2, 1, 2, -2, -127, -127, 127]
    assert bits("up", 0)[-2:] == [128, 128]  # 0 and overflow are NaN (0xFF) unsaturated


def test_int4_int2_wrap_and_back():
    x = np.array([-9.7, -8, 7.9, 8, 15, 16.5], dtype=np.float32)
    y = anvil("Cast", [x], {"to": TP.INT4})
    assert y.dtype == ml_dtypes.int4
    assert y.astype(np.int8).tolist() == [7, -8, 7, -8, -1, 0]
    u = anvil("Cast", [x], {"to": TP.UINT2})
    assert u.astype(np.int8).tolist() == [3, 0, 3, 0, 3, 0]
    back = anvil("Cast", [y], {"to": TP.FLOAT16})
    assert back.dtype == np.float16 and back.tolist() == [7, -8, 7, -8, -1, 0]


def test_strings():
    s = np.array(["1.5", " -2e3", "INF", "-inf", "NaN", "0x10"], dtype=object)
    f = anvil("Cast", [s], {"to": TP.FLOAT})
    np.testing.assert_array_equal(f, np.array([1.5, -2000, np.inf, -np.inf, np.nan, 16],
                                              dtype=np.float32))
    i = anvil("Cast", [np.array(["12", "-7", "100.9", "300"], dtype=object)], {"to": TP.INT8})
    assert i.tolist() == [12, -7, 100, 44]
    x = np.array([0.1, 1 / 3, -0.0, 1e20, np.nan], dtype=np.float32)
    assert anvil("Cast", [x], {"to": TP.STRING}).tolist() == [
        "0.1", "0.33333334", "-0", "1e+20", "NaN"]
    with pytest.raises(ExecutionError, match="cannot parse 'hello' as a number"):
        anvil("Cast", [np.array(["hello"], dtype=object)], {"to": TP.FLOAT})


def test_castlike_takes_dtype_of_second_input():
    x = np.array([1.7, -2.2], dtype=np.float32)
    y = anvil("CastLike", [x, np.zeros((5, 5), np.int16)])
    assert y.dtype == np.int16 and y.tolist() == [1, -2]
    y = anvil("CastLike", [x, np.zeros(1, ml_dtypes.bfloat16)])
    assert y.dtype == ml_dtypes.bfloat16


def test_bitcast():
    x = np.array([1.0, -2.5, np.inf], dtype=np.float32)
    y = anvil("BitCast", [x], {"to": TP.INT32}, opset=26)
    np.testing.assert_array_equal(y, x.view(np.int32))
    s = anvil("BitCast", [np.array(1.0, np.float32)], {"to": TP.UINT32}, opset=26)
    assert s.shape == () and int(s) == 0x3F800000
    b = anvil("BitCast", [np.array([True, False])], {"to": TP.UINT8}, opset=26)
    assert b.tolist() == [1, 0]
    n = bitcast_array(np.array([-1, 7], dtype=ml_dtypes.int4), DType.uint4)
    assert n.astype(np.uint8).tolist() == [15, 7]


def test_cast_array_direct():
    big = np.array([2.0**63 + 2.0**62, -1.0], dtype=np.float64)
    assert cast_array(big, DType.uint64).tolist() == [2**63 + 2**62, 2**64 - 1]
    assert cast_array(np.array([200], np.int16), DType.int8).tolist() == [-56]


def error(model: onnx.ModelProto) -> str:
    with pytest.raises(AnvilError) as e:
        prepare(model)
    return str(e.value)


def test_errors():
    f = np.zeros(3, np.float32)
    assert "BitCast: bit widths differ: float32 has 32, float16 has 16" in error(
        one_node("BitCast", [f], {"to": TP.FLOAT16}, opset=26))
    assert "BitCast: string tensors cannot be bitcast" in error(
        one_node("BitCast", [f], {"to": TP.STRING}, opset=26))
    assert "Cast: 'to' names unsupported element type 99" in error(
        one_node("Cast", [f], {"to": 99}))
    assert "Cast: round_mode must be one of up, down, nearest, got 'zero'" in error(
        one_node("Cast", [f], {"to": TP.FLOAT8E8M0, "round_mode": "zero"}))
    assert "Cast: saturate must be 0 or 1, got 3" in error(
        one_node("Cast", [f], {"to": TP.INT8, "saturate": 3}))
    assert "Cast requires attribute 'to'" in error(one_node("Cast", [f]))
