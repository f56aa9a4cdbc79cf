"""compiler/ops/normalization.py: the normalizations against onnxruntime and hand-computed
values; BatchNormalization training mode and old-opset upgrades; GroupNormalization's
opset-18 per-group scale; clean type errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model

RNG = np.random.default_rng(1)


def one_node(op, inputs, attrs=None, *, opset=22, n_out=1):
    names = [f"x{i}" for i in range(len(inputs))]
    node = helper.make_node(op, names, [f"y{k}" for k in range(n_out)], **(attrs or {}))
    vis = [helper.make_tensor_value_info(n, DType.from_np(a.dtype).onnx, a.shape)
           for n, a in zip(names, inputs, strict=True)]
    outs = [helper.make_empty_tensor_value_info(f"y{k}") for k in range(n_out)]
    model = helper.make_model(helper.make_graph([node], "g", vis, outs),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def anvil(op, inputs, attrs=None, **kw) -> list[np.ndarray]:
    return list(prepare(one_node(op, inputs, attrs, **kw)).run(inputs))


def check_ort(op, inputs, attrs=None, *, rtol=1e-5, **kw) -> None:
    model = one_node(op, inputs, attrs, **kw)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {f"x{i}": a for i, a in enumerate(inputs)})
    got = prepare(model).run(inputs)
    for w, g in zip(want, got, strict=True):
        assert (g.dtype, g.shape) == (w.dtype, w.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-5)


def type_error(op, inputs, attrs=None, **kw) -> str:
    with pytest.raises(AnvilError) as e:
        import_model(one_node(op, inputs, attrs, **kw))
    return str(e.value)


def f32(*shape) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


X = (RNG.standard_normal((2, 3, 4, 5)) * 2 + 1).astype(np.float32)
C3 = [f32(3), f32(3), f32(3), np.abs(f32(3)) + 0.5]  # scale, B, mean, var


# ---------------------------------------------------------------------------------------
# BatchNormalization


@pytest.mark.parametrize("opset", [7, 9, 15])
def test_batchnorm_inference_matches_ort(opset):
    check_ort("BatchNormalization", [X, *C3], {"epsilon": 0.01}, opset=opset)


def test_batchnorm_training_mode_matches_ort():
    check_ort("BatchNormalization", [X, *C3], {"training_mode": 1, "momentum": 0.8},
              opset=15, n_out=3)


def test_batchnorm_training_by_hand():
    x = np.array([[1.0], [3.0]], np.float32)  # N=2, C=1: batch mean 2, variance 1
    one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)
    y, rm, rv = anvil("BatchNormalization", [x, one, zero, zero, one],
                      {"training_mode": 1, "epsilon": 0.0, "momentum": 0.5}, opset=15, n_out=3)
    np.testing.assert_allclose(y, [[-1.0], [1.0]])
    np.testing.assert_allclose(rm, [1.0])
    np.testing.assert_allclose(rv, [1.0])


def test_batchnorm_errors():
    four = [np.ones(4, np.float32)] * 4
    assert "must have 3 elements" in type_error("BatchNormalization", [X, *four])
    assert "need training_mode=1" in type_error("BatchNormalization", [X, *C3], n_out=3)
    assert "spatial=0" in type_error("BatchNormalization", [X, *C3], {"spatial": 0}, opset=7)
    assert "saved_mean" in type_error("BatchNormalization", [X, *C3], opset=9, n_out=5)


# ---------------------------------------------------------------------------------------
# LayerNormalization / RMSNormalization


@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_layernorm_matches_ort(axis):
    shape = X.shape[axis:]
    check_ort("LayerNormalization", [X, f32(*shape), f32(*shape)], {"axis": axis},
              opset=17, n_out=3)


def test_layernorm_stats_follow_stash_type():
    x16 = X.astype(np.float16)
    y, mean, inv = anvil("LayerNormalization", [x16, np.ones(5, np.float16)], n_out=3)
    assert (y.dtype, mean.dtype, inv.dtype) == (np.float16, np.float32, np.float32)
    assert mean.shape == inv.shape == (2, 3, 4, 1)
    np.testing.assert_allclose(mean[..., 0], x16.astype(np.float32).mean(-1), rtol=1e-6)
    _, mean64, _ = anvil("LayerNormalization", [X, np.ones(5, np.float32)],
                         {"stash_type": 11}, n_out=3)
    assert mean64.dtype == np.float64


@pytest.mark.parametrize("axis", [-1, 2])
def test_rmsnorm_matches_ort(axis):
    check_ort("RMSNormalization", [X, f32(*X.shape[axis:])], {"axis": axis}, opset=23)


def test_layernorm_errors():
    assert "does not broadcast" in type_error("LayerNormalization", [X, f32(4)])
    assert "differs from X dtype" in type_error("LayerNormalization",
                                                [X, np.ones(5, np.float64)])
    assert "stash_type 7" in type_error("LayerNormalization", [X, f32(5)], {"stash_type": 7})
    assert "axis 4 out of range" in type_error("RMSNormalization", [X, f32(5)], {"axis": 4},
                                               opset=23)


# ---------------------------------------------------------------------------------------
# Group / Instance normalization


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_groupnorm_matches_ort(groups):
    x = f32(2, 4, 3, 3)
    check_ort("GroupNormalization", [x, f32(4), f32(4)], {"num_groups": groups}, opset=21)


def test_groupnorm_opset18_scale_is_per_group():
    x = f32(2, 4, 3)
    scale, bias = np.array([2.0, -1.0], np.float32), np.array([0.5, 0.0], np.float32)
    (old,) = anvil("GroupNormalization", [x, scale, bias], {"num_groups": 2}, opset=18)
    (new,) = anvil("GroupNormalization", [x, np.repeat(scale, 2), np.repeat(bias, 2)],
                   {"num_groups": 2}, opset=21)
    np.testing.assert_allclose(old, new, rtol=1e-6)


def test_groupnorm_errors():
    x = f32(2, 3, 4)
    sb = [f32(3), f32(3)]
    assert "3 channels do not divide into 2 groups" in type_error(
        "GroupNormalization", [x, *sb], {"num_groups": 2}, opset=21)
    assert "internal to Anvil" in type_error(
        "GroupNormalization", [x, *sb], {"num_groups": 3, "scale_per_group": 1}, opset=21)


def test_instancenorm_matches_ort():
    check_ort("InstanceNormalization", [X, f32(3), f32(3)], {"epsilon": 0.01})


# ---------------------------------------------------------------------------------------
# LRN, LpNormalization, MeanVarianceNormalization


@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn_matches_ort(size):
    check_ort("LRN", [X], {"size": size, "alpha": 0.01, "beta": 0.6, "bias": 2.0}, opset=13)


def test_lrn_even_size_by_hand():
    # size 2: the window of channel c is [c, c + 1]
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    (y,) = anvil("LRN", [x], {"size": 2, "alpha": 2.0, "beta": 1.0, "bias": 1.0}, opset=13)
    np.testing.assert_allclose(y, [[1 / 6, 2 / 14, 3 / 10]], rtol=1e-6)


@pytest.mark.parametrize("p", [1, 2])
def test_lpnorm_matches_ort(p):
    check_ort("LpNormalization", [X], {"p": p, "axis": 1})


def test_lpnorm_zero_norm_gives_zero():
    (y,) = anvil("LpNormalization", [np.zeros((2, 3), np.float32)])
    np.testing.assert_array_equal(y, np.zeros((2, 3), np.float32))


@pytest.mark.parametrize("axes", [None, [1, -1]])
def test_mvn_matches_ort(axes):
    check_ort("MeanVarianceNormalization", [X], None if axes is None else {"axes": axes},
              opset=13, rtol=1e-4)


def test_misc_normalization_errors():
    assert "size must be positive" in type_error("LRN", [X], {"size": 0})
    assert "p must be 1 or 2" in type_error("LpNormalization", [X], {"p": 3})
    assert "repeat an axis" in type_error("MeanVarianceNormalization", [X], {"axes": [1, -3]})
    assert "must have 3 elements" in type_error("InstanceNormalization", [X, f32(2), f32(3)])
