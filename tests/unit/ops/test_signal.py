"""compiler/ops/signal.py: DFT, STFT, windows and MelWeightMatrix against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError

RNG = np.random.default_rng(0)


def one_node(op: str, inputs: list, attrs: dict | None = None, *, opset: int = 20,
             const: tuple[int, ...] = ()) -> onnx.ModelProto:
    """One-node model; inputs listed in `const` become initializers (compile-time values)."""
    names = [f"x{i}" if a is not None else "" for i, a in enumerate(inputs)]
    node = helper.make_node(op, names, ["y"], **(attrs or {}))
    vis = [helper.make_tensor_value_info(n, DType.from_np(a.dtype).onnx, a.shape)
           for i, (n, a) in enumerate(zip(names, inputs, strict=True))
           if a is not None and i not in const]
    inits = [helper.make_tensor(names[i], DType.from_np(inputs[i].dtype).onnx,
                                inputs[i].shape, inputs[i].reshape(-1).tolist()) for i in const]
    graph = helper.make_graph([node], "g", vis, [helper.make_empty_tensor_value_info("y")],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def check(op: str, inputs: list, attrs: dict | None = None, *, opset: int = 20,
          const: tuple[int, ...] = (), rtol: float = 1e-4) -> np.ndarray:
    model = one_node(op, inputs, attrs, opset=opset, const=const)
    feeds = {f"x{i}": a for i, a in enumerate(inputs) if a is not None and i not in const}
    rep = prepare(model)
    (got,) = rep.run(list(feeds.values()))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, feeds)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-4)
    declared = rep.module.main.results[0].type.shape
    assert declared == want.shape, "static shape inferred from constant inputs"
    return got


def scalar(v, dtype=np.int64) -> np.ndarray:
    return np.array(v, dtype)


# ---------------------------------------------------------------------------------------
# DFT


@pytest.mark.parametrize("inverse,onesided,last", [(0, 0, 1), (0, 0, 2), (0, 1, 1),
                                                    (1, 0, 2), (1, 1, 2)])
def test_dft20_matches_ort(inverse, onesided, last):
    x = RNG.standard_normal((2, 6, 5, last)).astype(np.float32)
    check("DFT", [x, scalar(8), scalar(1)], {"inverse": inverse, "onesided": onesided},
          const=(1, 2))


def test_dft17_axis_attribute_is_upgraded():
    x = RNG.standard_normal((3, 7, 2)).astype(np.float32)
    check("DFT", [x], {"axis": 1}, opset=17)
    check("DFT", [x, scalar(4)], {"axis": 1, "onesided": 0, "inverse": 1}, opset=17, const=(1,))


def test_dft_default_axis_is_last_signal_axis():
    x = RNG.standard_normal((2, 3, 4, 1)).astype(np.float64)
    (y,) = prepare(one_node("DFT", [x])).run([x])
    np.testing.assert_allclose(y[..., 0] + 1j * y[..., 1], np.fft.fft(x[..., 0], axis=2))


def test_dft_type_errors():
    x = np.zeros((2, 4, 3), np.float32)
    with pytest.raises(AnvilError, match="last dim must be 1 .real. or 2"):
        prepare(one_node("DFT", [x]))
    x = np.zeros((2, 4, 2), np.float32)
    with pytest.raises(AnvilError, match="axis 2 out of range"):
        prepare(one_node("DFT", [x, None, scalar(2)], const=(2,)))
    with pytest.raises(AnvilError, match="dft_length must be positive"):
        prepare(one_node("DFT", [x, scalar(0)], const=(1,)))


# ---------------------------------------------------------------------------------------
# STFT


@pytest.mark.parametrize("onesided", [0, 1])
def test_stft_with_window_matches_ort(onesided):
    x = RNG.standard_normal((2, 40, 1)).astype(np.float32)
    win = np.hanning(10).astype(np.float32)
    check("STFT", [x, scalar(3), win, scalar(10)], {"onesided": onesided}, opset=17,
          const=(1, 3))


def test_stft_complex_signal_without_window_matches_ort():
    x = RNG.standard_normal((1, 24, 2)).astype(np.float32)
    check("STFT", [x, scalar(4), None, scalar(8)], {"onesided": 0}, opset=17, const=(1, 3))


def test_stft_type_errors():
    x = np.zeros((1, 16, 1), np.float32)
    with pytest.raises(AnvilError, match="frame_length 20 exceeds the signal length 16"):
        prepare(one_node("STFT", [x, scalar(2), None, scalar(20)], opset=17, const=(1, 3)))
    with pytest.raises(AnvilError, match="window length 4 differs from frame_length 8"):
        prepare(one_node("STFT", [x, scalar(2), np.ones(4, np.float32), scalar(8)], opset=17,
                         const=(1, 3)))


# ---------------------------------------------------------------------------------------
# Windows and MelWeightMatrix


@pytest.mark.parametrize("op", ["HannWindow", "HammingWindow", "BlackmanWindow"])
@pytest.mark.parametrize("periodic", [0, 1])
@pytest.mark.parametrize("out", [TensorProto.FLOAT, TensorProto.DOUBLE])
def test_windows_match_ort(op, periodic, out):
    check(op, [scalar(11, np.int32)], {"periodic": periodic, "output_datatype": out},
          opset=17, const=(0,), rtol=1e-6)


def test_window_size_from_runtime_input_has_unknown_length():
    model = one_node("HannWindow", [scalar(6)], opset=17)
    rep = prepare(model)
    assert rep.module.main.results[0].type.shape == ("?",)
    (y,) = rep.run([scalar(6)])
    np.testing.assert_allclose(y, 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(6) / 6), atol=1e-6)


def test_window_bad_output_datatype():
    with pytest.raises(AnvilError, match="output_datatype"):
        prepare(one_node("HannWindow", [scalar(6)], {"output_datatype": 8}, opset=17))


def test_mel_weight_matrix_matches_ort():
    ins = [scalar(8, np.int32), scalar(64, np.int32), scalar(8000, np.int32),
           scalar(0.0, np.float32), scalar(4000.0, np.float32)]
    check("MelWeightMatrix", ins, opset=17, const=(0, 1, 2, 3, 4))
