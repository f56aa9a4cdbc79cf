"""compiler/ops/attention.py: Attention, RotaryEmbedding, LinearAttention, FlexAttention.

References against onnxruntime on one-node models (and a naive loop oracle where onnxruntime
has no kernel); type-relation errors are checked for clean AnvilError messages.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError
from compiler.ops import get_op
from compiler.ops.base import EvalCtx

RNG = np.random.default_rng(0)


def one_node(op: str, inputs: list, attrs: dict | None = None, *, opset: int = 23,
             n_out: int = 1) -> onnx.ModelProto:
    """A one-node model; an input given as None is an absent optional input."""
    names = [f"x{i}" if a is not None else "" for i, a in enumerate(inputs)]
    node = helper.make_node(op, names, [f"y{k}" for k in range(n_out)], **(attrs or {}))
    vis = [helper.make_tensor_value_info(n, DType.from_np(a.dtype).onnx, a.shape)
           for n, a in zip(names, inputs, strict=True) if a is not None]
    outs = [helper.make_empty_tensor_value_info(f"y{k}") for k in range(n_out)]
    model = helper.make_model(helper.make_graph([node], "g", vis, outs),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def run_both(model: onnx.ModelProto, inputs: list) -> tuple[list, list]:
    feeds = [a for a in inputs if a is not None]
    got = list(prepare(model).run(feeds))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {f"x{i}": a for i, a in enumerate(inputs) if a is not None})
    return got, want


def check(op: str, inputs: list, attrs: dict | None = None, *, opset: int = 23,
          n_out: int = 1, rtol: float = 1e-4) -> None:
    got, want = run_both(one_node(op, inputs, attrs, opset=opset, n_out=n_out), inputs)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-5)


def import_error(op: str, inputs: list, attrs: dict | None = None, **kw) -> str:
    with pytest.raises(AnvilError) as e:
        prepare(one_node(op, inputs, attrs, **kw))
    return str(e.value)


def r(*shape, dtype=np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------------------------
# Attention


def test_attention_gqa_causal_past_matches_ort():
    q, k, v = r(2, 4, 3, 8), r(2, 2, 5, 8), r(2, 2, 5, 6)
    pk, pv = r(2, 2, 4, 8), r(2, 2, 4, 6)
    check("Attention", [q, k, v, None, pk, pv], {"is_causal": 1}, n_out=3)


def test_attention_3d_float_mask_qk_output_matches_ort():
    q, k, v = r(2, 3, 16), r(2, 5, 16), r(2, 5, 16)
    mask = r(3, 5)
    check("Attention", [q, k, v, mask], {"q_num_heads": 2, "kv_num_heads": 2,
                                         "qk_matmul_output_mode": 2, "scale": 0.3}, n_out=4)


def test_attention_bool_mask_softcap_window_matches_ort():
    q, k, v = r(1, 2, 4, 8), r(1, 2, 6, 8), r(1, 2, 6, 8)
    mask = RNG.random((1, 2, 4, 6)) > 0.3
    check("Attention", [q, k, v, mask], {"softcap": 2.0})
    check("Attention", [q, k, v], {"left_window_size": 1, "is_causal": 1}, opset=25)


def test_attention_fully_masked_row_is_zero():
    q, k, v = r(1, 1, 2, 4), r(1, 1, 3, 4), r(1, 1, 3, 4)
    mask = np.array([[False, False, False], [True, True, False]])
    (y,) = prepare(one_node("Attention", [q, k, v, mask])).run([q, k, v, mask])
    assert np.all(y[0, 0, 0] == 0)
    s = (q[0, 0, 1] @ k[0, 0, :2].T) / 2.0
    p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    np.testing.assert_allclose(y[0, 0, 1], p @ v[0, 0, :2], rtol=1e-5)


def test_attention_nonpad_kv_seqlen_masks_padding():
    q, k, v = r(2, 1, 2, 4), r(2, 1, 5, 4), r(2, 1, 5, 4)
    lens = np.array([3, 5], np.int64)
    (y,) = prepare(one_node("Attention", [q, k, v, None, None, None, lens],
                            opset=24)).run([q, k, v, lens])
    k2, v2 = k.copy(), v.copy()
    k2[0, :, 3:] = 100.0  # padded keys must not matter
    (y2,) = prepare(one_node("Attention", [q, k2, v2, None, None, None, lens],
                             opset=24)).run([q, k2, v2, lens])
    np.testing.assert_array_equal(y, y2)


def test_attention_type_errors():
    q, k = r(2, 3, 12), r(2, 4, 12)
    assert "q_num_heads and kv_num_heads" in import_error("Attention", [q, k, k])
    assert "not a multiple" in import_error(
        "Attention", [r(1, 3, 2, 4), r(1, 2, 2, 4), r(1, 2, 2, 4)])
    assert "K dtype" in import_error("Attention", [q, k.astype(np.float64), k],
                                     {"q_num_heads": 3, "kv_num_heads": 3})
    assert "exceeds total sequence length" in import_error(
        "Attention", [r(1, 1, 2, 4), r(1, 1, 3, 4), r(1, 1, 3, 4), r(2, 5)])
    assert "softmax_precision" in import_error(
        "Attention", [r(1, 1, 2, 4)] * 3, {"softmax_precision": 7})
    assert "Q/K head size" in import_error(
        "Attention", [r(1, 1, 2, 4), r(1, 1, 3, 8), r(1, 1, 3, 8)])


def test_attention_past_without_value_is_error():
    x = r(1, 1, 2, 4)
    msg = import_error("Attention", [x, x, x, None, r(1, 1, 3, 4)])
    assert "past_key and past_value" in msg


# ---------------------------------------------------------------------------------------
# RotaryEmbedding


@pytest.mark.parametrize("interleaved", [0, 1])
def test_rotary_4d_position_ids_matches_ort(interleaved):
    x, cos, sin = r(2, 3, 4, 8), r(10, 2), r(10, 2)
    pos = np.array([[0, 1, 2, 3], [5, 6, 7, 8]], np.int64)
    check("RotaryEmbedding", [x, cos, sin, pos],
          {"interleaved": interleaved, "rotary_embedding_dim": 4})


def test_rotary_3d_no_position_ids_matches_ort():
    x, cos, sin = r(2, 4, 12), r(2, 4, 3), r(2, 4, 3)
    check("RotaryEmbedding", [x, cos, sin], {"num_heads": 2})


def test_rotary_type_errors():
    assert "num_heads" in import_error("RotaryEmbedding", [r(2, 4, 12), r(2, 4, 3), r(2, 4, 3)])
    assert "cos_cache last dim" in import_error(
        "RotaryEmbedding", [r(2, 3, 4, 8), r(2, 4, 3), r(2, 4, 3)])


# ---------------------------------------------------------------------------------------
# LinearAttention (no onnxruntime kernel: a naive per-element loop is the oracle)


def _naive_linear_attention(q, k, v, beta, decay, hq, hkv, rule):
    b, t, _ = q.shape
    dk, dv = q.shape[2] // hq, v.shape[2] // hkv
    out = np.zeros((b, t, hq * dv))
    for bi in range(b):
        for h in range(hkv):
            s = np.zeros((dk, dv))
            for ti in range(t):
                kt = k[bi, ti, h * dk:(h + 1) * dk].astype(np.float64)
                vt = v[bi, ti, h * dv:(h + 1) * dv].astype(np.float64)
                if rule == "gated_delta":
                    s = s * np.exp(decay[bi, ti, h])
                    vt = beta[bi, ti, h] * (vt - s.T @ kt)
                s = s + np.outer(kt, vt)
                for g in range(hq // hkv):
                    qh = h * (hq // hkv) + g
                    qt = q[bi, ti, qh * dk:(qh + 1) * dk]
                    out[bi, ti, qh * dv:(qh + 1) * dv] = (qt @ s) / np.sqrt(dk)
    return out


@pytest.mark.parametrize("rule", ["linear", "gated_delta"])
def test_linear_attention_matches_naive_loop(rule):
    q, k, v = r(2, 3, 16), r(2, 3, 8), r(2, 3, 6)
    beta = RNG.random((2, 3, 2)).astype(np.float32) if rule == "gated_delta" else None
    decay = -RNG.random((2, 3, 2)).astype(np.float32) if rule == "gated_delta" else None
    ins = [q, k, v, None, decay, beta]
    model = one_node("LinearAttention", ins, {"q_num_heads": 4, "kv_num_heads": 2,
                                              "update_rule": rule}, opset=27, n_out=2)
    y, state = prepare(model).run([a for a in ins if a is not None])
    want = _naive_linear_attention(q, k, v, beta, decay, 4, 2, rule)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
    assert state.shape == (2, 2, 4, 3) and y.dtype == np.float32


def test_linear_attention_type_errors():
    q = r(1, 2, 8)
    attrs = {"q_num_heads": 2, "kv_num_heads": 2, "update_rule": "gated"}
    assert "requires decay" in import_error("LinearAttention", [q, q, q], attrs, opset=27)
    attrs["update_rule"] = "bogus"
    assert "update_rule 'bogus'" in import_error("LinearAttention", [q, q, q], attrs, opset=27)


# ---------------------------------------------------------------------------------------
# FlexAttention (ai.onnx.preview): without modifiers it equals plain Attention


def test_flex_attention_without_mods_equals_attention():
    q, k, v = r(2, 4, 3, 8), r(2, 2, 5, 8), r(2, 2, 5, 6)
    op = get_op("FlexAttention")
    (y,) = op.ref(EvalCtx("FlexAttention", {"scale": 0.25}, 1), [q, k, v])
    (want,) = run_both(one_node("Attention", [q, k, v], {"scale": 0.25}), [q, k, v])[1]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
