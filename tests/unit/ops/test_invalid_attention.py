"""compiler/ops/attention.py: inconsistent inputs are clean type errors, and the reference
handles the valid corner cases that once crashed it (integer masks shorter than the keys,
an empty batch)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from compiler.dtypes import DType
from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model
from compiler.graph import interp
from compiler.graph.verifier import verify

RNG = np.random.default_rng(0)
LINEAR = {"q_num_heads": 4, "kv_num_heads": 2}


def one_node(op: str, shapes: list, attrs: dict, *, opset: int, n_out: int = 1,
             dtypes: list | None = None) -> onnx.ModelProto:
    """A one-node model; a shape given as None is an absent optional input."""
    names = [f"x{i}" if s is not None else "" for i, s in enumerate(shapes)]
    dtypes = dtypes or [np.float32] * len(shapes)
    node = helper.make_node(op, names, [f"y{k}" for k in range(n_out)], **attrs)
    vis = [helper.make_tensor_value_info(n, DType.from_np(np.dtype(d)).onnx, s)
           for n, s, d in zip(names, shapes, dtypes, strict=True) if s is not None]
    outs = [helper.make_empty_tensor_value_info(f"y{k}") for k in range(n_out)]
    model = helper.make_model(helper.make_graph([node], "g", vis, outs),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def load(model: onnx.ModelProto):
    module = import_model(model)
    verify(module)
    return module


def linear(shapes: list, rule: str) -> onnx.ModelProto:
    return one_node("LinearAttention", shapes, {**LINEAR, "update_rule": rule}, opset=27,
                    n_out=2)


# q (B=2, T=3, 4 heads x dk=4), k (2, 3, 2 x 4), v (2, 3, 2 x dv=3)
Q, K, V = (2, 3, 16), (2, 3, 8), (2, 3, 6)


@pytest.mark.parametrize("shapes, rule, match", [
    ([Q, (1, 3, 8), V], "linear", "query/key batch size mismatch"),
    ([Q, K, (2, 5, 6)], "linear", "query/value sequence length mismatch"),
    ([Q, K, V, None, (2, 4, 2)], "gated", "query/decay sequence length mismatch"),
    ([Q, K, V, None, None, (3, 3, 1)], "delta", "query/beta batch size mismatch"),
])
def test_linear_attention_dims_must_agree(shapes, rule, match):
    with pytest.raises(AnvilError, match=match):
        load(linear(shapes, rule))


def test_linear_attention_empty_batch():
    shapes = [(0, 3, 16), (0, 3, 8), (0, 3, 6), None, (0, 3, 2), (0, 3, 1)]
    module = load(linear(shapes, "gated_delta"))
    ins = [np.zeros(s, np.float32) for s in shapes if s is not None]
    y, state = interp.run(module, ins)
    assert y.shape == (0, 3, 12) and state.shape == (0, 2, 4, 3)


def test_attention_integer_mask_shorter_than_keys():
    """An integer mask is an additive bias; keys past its last column are masked out."""
    q, k, v = (2, 4, 24), (2, 6, 24), (2, 6, 24)
    mask = RNG.integers(-3, 3, (4, 5))
    feeds = [RNG.standard_normal(s).astype(np.float32) for s in (q, k, v)]
    attrs = {"q_num_heads": 3, "kv_num_heads": 3}
    int_model = one_node("Attention", [q, k, v, mask.shape], attrs, opset=23,
                         dtypes=[np.float32] * 3 + [np.int64])
    float_model = one_node("Attention", [q, k, v, mask.shape], attrs, opset=23)
    (got,) = interp.run(load(int_model), [*feeds, mask])
    (want,) = interp.run(load(float_model), [*feeds, mask.astype(np.float32)])
    np.testing.assert_array_equal(got, want)
