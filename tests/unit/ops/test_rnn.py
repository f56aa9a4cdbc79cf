"""compiler/ops/rnn.py: RNN, GRU and LSTM against onnxruntime, plus type-relation errors."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError

RNG = np.random.default_rng(0)
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def one_node(op: str, inputs: list, attrs: dict, *, opset: int = 22,
             n_out: int = 2) -> onnx.ModelProto:
    names = [f"x{i}" if a is not None else "" for i, a in enumerate(inputs)]
    node = helper.make_node(op, names, [f"y{k}" for k in range(n_out)], **attrs)
    vis = [helper.make_tensor_value_info(n, DType.from_np(a.dtype).onnx, a.shape)
           for n, a in zip(names, inputs, strict=True) if a is not None]
    outs = [helper.make_empty_tensor_value_info(f"y{k}") for k in range(n_out)]
    model = helper.make_model(helper.make_graph([node], "g", vis, outs),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def check(op: str, inputs: list, attrs: dict, *, opset: int = 22, n_out: int = 2) -> None:
    model = one_node(op, inputs, attrs, opset=opset, n_out=n_out)
    got = prepare(model).run([a for a in inputs if a is not None])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {f"x{i}": a for i, a in enumerate(inputs) if a is not None})
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def make_inputs(op: str, *, seq=4, batch=3, inp=2, hidden=3, dirs=1, layout=0, lens=None,
                bias=True, init=True, peep=False) -> list:
    g = GATES[op]
    r = lambda *s: (RNG.standard_normal(s) * 0.7).astype(np.float32)  # noqa: E731
    x = r(seq, batch, inp) if layout == 0 else r(batch, seq, inp)
    state = (dirs, batch, hidden) if layout == 0 else (batch, dirs, hidden)
    ins = [x, r(dirs, g * hidden, inp), r(dirs, g * hidden, hidden),
           r(dirs, 2 * g * hidden) if bias else None,
           None if lens is None else np.array(lens, np.int32),
           r(*state) if init else None]
    if op == "LSTM":
        ins += [r(*state) if init else None, r(dirs, 3 * hidden) if peep else None]
    while ins[-1] is None:
        ins.pop()
    return ins


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_directions_with_sequence_lens_match_ort(op, direction):
    dirs = 2 if direction == "bidirectional" else 1
    ins = make_inputs(op, dirs=dirs, lens=[4, 0, 2], peep=True)
    check(op, ins, {"hidden_size": 3, "direction": direction}, n_out=3 if op == "LSTM" else 2)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_layout_1_matches_ort_on_transposed_layout_0(op):
    # onnxruntime has no batch-major kernels: run it time-major on transposed data
    ins = make_inputs(op, dirs=2, layout=1)
    attrs = {"hidden_size": 3, "direction": "bidirectional"}
    n_out = 3 if op == "LSTM" else 2
    model = one_node(op, ins, {**attrs, "layout": 1}, n_out=n_out)
    got = prepare(model).run([a for a in ins if a is not None])
    tm = [a.transpose(1, 0, 2) if i in (0, 5, 6) else a for i, a in enumerate(ins)]
    sess = ort.InferenceSession(one_node(op, tm, attrs, n_out=n_out).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    want = sess.run(None, {f"x{i}": a for i, a in enumerate(tm) if a is not None})
    np.testing.assert_allclose(got[0], want[0].transpose(2, 0, 1, 3), rtol=1e-4, atol=1e-5)
    for g, w in zip(got[1:], want[1:], strict=True):
        np.testing.assert_allclose(g, w.transpose(1, 0, 2), rtol=1e-4, atol=1e-5)


def test_gru_linear_before_reset_matches_ort():
    ins = make_inputs("GRU")
    check("GRU", ins, {"hidden_size": 3, "linear_before_reset": 1})


def test_custom_activations_and_clip_match_ort():
    ins = make_inputs("LSTM")
    check("LSTM", ins, {"hidden_size": 3, "clip": 0.5, "input_forget": 1,
                        "activations": ["HardSigmoid", "LeakyRelu", "Tanh"],
                        "activation_alpha": [0.3, 0.2], "activation_beta": [0.4]})
    ins = make_inputs("RNN", bias=False, init=False)
    check("RNN", ins, {"hidden_size": 3, "activations": ["Relu"]})


def test_opset7_lstm_without_layout_matches_ort():
    check("LSTM", make_inputs("LSTM", peep=True), {"hidden_size": 3}, opset=7, n_out=3)


def test_hidden_size_inferred_from_r():
    ins = make_inputs("GRU", init=False, bias=False)
    y, yh = prepare(one_node("GRU", ins, {})).run(ins)
    assert y.shape == (4, 1, 3, 3) and yh.shape == (1, 3, 3)


def import_error(op: str, ins: list, attrs: dict) -> str:
    with pytest.raises(AnvilError) as e:
        prepare(one_node(op, ins, attrs))
    return str(e.value)


def test_type_errors():
    ins = make_inputs("LSTM")
    assert "direction 'sideways'" in import_error("LSTM", ins, {"direction": "sideways"})
    assert "W has shape" in import_error("GRU", make_inputs("LSTM")[:3], {"hidden_size": 3})
    assert "expects 3 activations" in import_error(
        "LSTM", ins, {"activations": ["Tanh", "Tanh"]})
    assert "unknown activation 'swish'" in import_error(
        "RNN", make_inputs("RNN"), {"activations": ["Swish"]})
    bad = make_inputs("RNN")
    bad[4] = np.array([1, 2, 3], np.int64)
    assert "sequence_lens dtype int64" in import_error("RNN", bad, {})


def test_sequence_lens_beyond_the_sequence_is_a_clean_runtime_error():
    ins = make_inputs("RNN", lens=[4, 5, 1])
    with pytest.raises(AnvilError, match="sequence_lens must lie in"):
        prepare(one_node("RNN", ins, {})).run(ins)
