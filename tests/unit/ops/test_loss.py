"""compiler/ops/loss.py: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss against
onnxruntime and a hand-computed example; clean type errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model

RNG = np.random.default_rng(3)
SCORES = RNG.standard_normal((3, 5, 2)).astype(np.float32)
LABELS = RNG.integers(0, 5, size=(3, 2)).astype(np.int64)
LABELS[0, 0] = 1
WEIGHT = RNG.random(5).astype(np.float32)


def one_node(op, inputs, attrs=None, n_out=1):
    names = [f"x{i}" for i in range(len(inputs))]
    node = helper.make_node(op, names, [f"y{k}" for k in range(n_out)], **(attrs or {}))
    vis = [helper.make_tensor_value_info(n, DType.from_np(a.dtype).onnx, a.shape)
           for n, a in zip(names, inputs, strict=True)]
    outs = [helper.make_empty_tensor_value_info(f"y{k}") for k in range(n_out)]
    model = helper.make_model(helper.make_graph([node], "g", vis, outs),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def check_ort(op, inputs, attrs, n_out=1):
    model = one_node(op, inputs, attrs, n_out)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {f"x{i}": a for i, a in enumerate(inputs)})
    got = prepare(model).run(inputs)
    for w, g in zip(want, got, strict=True):
        assert (g.dtype, g.shape) == (w.dtype, w.shape)
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("ignore_index", [None, 1])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_ort(reduction, ignore_index, weighted):
    attrs = {"reduction": reduction}
    if ignore_index is not None:
        attrs["ignore_index"] = ignore_index
    extra = [WEIGHT] if weighted else []
    check_ort("SoftmaxCrossEntropyLoss", [SCORES, LABELS, *extra], attrs, n_out=2)
    check_ort("NegativeLogLikelihoodLoss", [SCORES, LABELS.astype(np.int32), *extra], attrs)


def test_weighted_mean_with_ignore_index_by_hand():
    x = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]], np.float32))
    t = np.array([0, 1, 2], np.int64)
    w = np.array([1.0, 2.0, 3.0], np.float32)
    model = one_node("NegativeLogLikelihoodLoss", [x, t, w], {"ignore_index": 1})
    (loss,) = prepare(model).run([x, t, w])
    want = -(1.0 * np.log(0.5) + 3.0 * np.log(0.6)) / (1.0 + 3.0)  # sample 1 ignored
    assert loss.shape == () and loss.dtype == np.float32
    np.testing.assert_allclose(loss, want, rtol=1e-6)


def test_errors():
    def error(op, inputs, attrs=None):
        with pytest.raises(AnvilError) as e:
            import_model(one_node(op, inputs, attrs))
        return str(e.value)

    nll = "NegativeLogLikelihoodLoss"
    assert "does not match input" in error(nll, [SCORES, LABELS[:, :1]])
    assert "reduction must be one of" in error(nll, [SCORES, LABELS], {"reduction": "avg"})
    assert "target dtype float32" in error(nll, [SCORES, LABELS.astype(np.float32)])
    assert "does not match the 5 classes" in error(nll, [SCORES, LABELS, WEIGHT[:4]])
    bad = LABELS + 5
    with pytest.raises(AnvilError, match="out of range for 5 classes"):
        prepare(one_node(nll, [SCORES, bad])).run([SCORES, bad])
