"""compiler/ops/reduce.py: Reduce*, ArgMax/ArgMin, CumSum/CumProd, TopK against onnxruntime
and hand-computed values; opset upgrades (axes/k attributes -> inputs); clean type errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model

RNG = np.random.default_rng(0)


def one_node(op, inputs, attrs=None, *, opset=18, n_out=1, consts=(), domain=""):
    """A one-node model; inputs whose index is in `consts` become initializers, None = absent."""
    names = [f"x{i}" if a is not None else "" for i, a in enumerate(inputs)]
    node = helper.make_node(op, names, [f"y{k}" for k in range(n_out)], domain=domain,
                            **(attrs or {}))
    vis = [helper.make_tensor_value_info(f"x{i}", DType.from_np(a.dtype).onnx, a.shape)
           for i, a in enumerate(inputs) if a is not None and i not in consts]
    inits = [numpy_helper.from_array(inputs[i], f"x{i}") for i in consts]
    outs = [helper.make_empty_tensor_value_info(f"y{k}") for k in range(n_out)]
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(helper.make_graph([node], "g", vis, outs, initializer=inits),
                              opset_imports=opsets)
    model.ir_version = 8
    return model


def feeds(inputs, consts=()):
    return {f"x{i}": a for i, a in enumerate(inputs) if a is not None and i not in consts}


def anvil(op, inputs, attrs=None, **kw) -> list[np.ndarray]:
    model = one_node(op, inputs, attrs, **kw)
    return list(prepare(model).run(feeds(inputs, kw.get("consts", ()))))


def check_ort(op, inputs, attrs=None, *, rtol=1e-5, **kw) -> None:
    model = one_node(op, inputs, attrs, **kw)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds(inputs, kw.get("consts", ())))
    got = prepare(model).run(feeds(inputs, kw.get("consts", ())))
    for w, g in zip(want, got, strict=True):
        assert (g.dtype, g.shape) == (w.dtype, w.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-6, equal_nan=True)


def type_error(op, inputs, attrs=None, **kw) -> str:
    with pytest.raises(AnvilError) as e:
        import_model(one_node(op, inputs, attrs, **kw))
    return str(e.value)


def i64(*v) -> np.ndarray:
    return np.array(v, dtype=np.int64)


X = (RNG.standard_normal((3, 4, 5)) * 3).astype(np.float32)
REDUCE_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
              "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]


# ---------------------------------------------------------------------------------------
# Reduce*


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("axes,keepdims", [((1,), 1), ((0, -1), 0), (None, 0)])
def test_reduce_matches_ort(op, axes, keepdims):
    x = np.abs(X) + 0.5 if op == "ReduceLogSum" else X
    inputs = [x] if axes is None else [x, i64(*axes)]
    check_ort(op, inputs, {"keepdims": keepdims}, consts=(1,) if axes else ())


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceProd", "ReduceSumSquare"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_reduce_integers_match_ort(op, dtype):
    x = RNG.integers(-7, 8, size=(4, 5)).astype(dtype)
    check_ort(op, [x, i64(1)], {"keepdims": 0}, consts=(1,))


def test_reduce_axes_as_runtime_input():
    check_ort("ReduceMax", [X, i64(-1, 0)], {"keepdims": 1})


@pytest.mark.parametrize("op,opset", [("ReduceSum", 11), ("ReduceMean", 13), ("ReduceL2", 13)])
def test_old_opset_axes_attribute_is_upgraded(op, opset):
    check_ort(op, [X], {"axes": [0, 2], "keepdims": 0}, opset=opset)


def test_axes_attribute_rejected_in_new_opset():
    assert "has no attribute 'axes'" in type_error("ReduceSum", [X], {"axes": [1]}, opset=13)


def test_noop_with_empty_axes_keeps_elementwise_steps():
    x = np.array([[-2.0, 3.0]], dtype=np.float32)
    attrs = {"noop_with_empty_axes": 1}
    np.testing.assert_array_equal(anvil("ReduceSumSquare", [x], attrs)[0], x * x)
    np.testing.assert_array_equal(anvil("ReduceL1", [x, i64()], attrs, consts=(1,))[0], abs(x))
    np.testing.assert_array_equal(anvil("ReduceSum", [x], attrs)[0], x)
    # empty axes without noop: reduce everything
    assert anvil("ReduceSum", [x, i64()], {"keepdims": 0}, consts=(1,))[0] == np.float32(1.0)


@pytest.mark.parametrize("op,want", [
    ("ReduceSum", 0.0), ("ReduceProd", 1.0), ("ReduceMax", -np.inf), ("ReduceMin", np.inf),
    ("ReduceL1", 0.0), ("ReduceL2", 0.0), ("ReduceSumSquare", 0.0),
    ("ReduceLogSum", -np.inf), ("ReduceLogSumExp", -np.inf),
])
def test_empty_set_reduction_yields_identity(op, want):
    (y,) = anvil(op, [np.zeros((2, 0, 3), np.float32), i64(1)], {"keepdims": 1}, consts=(1,))
    assert y.shape == (2, 1, 3) and y.dtype == np.float32
    np.testing.assert_array_equal(y, np.full((2, 1, 3), want, np.float32))


def test_empty_set_max_min_of_integers_and_bools():
    empty = np.zeros((2, 0), np.int32)
    assert (anvil("ReduceMax", [empty, i64(1)], consts=(1,), opset=20)[0] == -2**31).all()
    assert (anvil("ReduceMin", [empty, i64(1)], consts=(1,), opset=20)[0] == 2**31 - 1).all()
    b = np.zeros((2, 0), np.bool_)
    assert not anvil("ReduceMax", [b, i64(1)], consts=(1,), opset=20)[0].any()
    assert anvil("ReduceMin", [b, i64(1)], consts=(1,), opset=20)[0].all()


def test_reduce_mean_of_integers_truncates_toward_zero():
    x = np.array([[-3, -4], [3, 4]], dtype=np.int32)
    (y,) = anvil("ReduceMean", [x, i64(1)], {"keepdims": 0}, consts=(1,))
    np.testing.assert_array_equal(y, np.array([-3, 3], np.int32))


def test_reduce_type_errors():
    assert "axis 3 out of range for rank 3" in type_error("ReduceSum", [X, i64(3)], consts=(1,))
    assert "repeat an axis" in type_error("ReduceSum", [X, i64(1, -2)], consts=(1,))
    bad = np.array([1], np.int32)
    assert "axes dtype int32 not supported" in type_error("ReduceSum", [X, bad], consts=(1,))
    assert "dtype int8 not supported" in type_error("ReduceSum", [X.astype(np.int8)])


def test_reduce_runtime_axis_out_of_range_is_clean():
    with pytest.raises(AnvilError, match="axis 5 out of range"):
        anvil("ReduceSum", [X, i64(5)])


# ---------------------------------------------------------------------------------------
# ArgMax / ArgMin


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis,keepdims,last", [(0, 1, 0), (1, 0, 1), (-1, 1, 1)])
def test_arg_matches_ort(op, axis, keepdims, last):
    x = RNG.integers(0, 3, size=(4, 5)).astype(np.float32)  # many ties
    attrs = {"axis": axis, "keepdims": keepdims, "select_last_index": last}
    check_ort(op, [x], attrs, opset=13)


def test_arg_type_errors():
    assert "axis 3 out of range" in type_error("ArgMax", [X], {"axis": 3})
    empty = np.zeros((2, 0), np.float32)
    assert "empty axis 1" in type_error("ArgMin", [empty], {"axis": 1})


# ---------------------------------------------------------------------------------------
# CumSum / CumProd


@pytest.mark.parametrize("exclusive,reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_cumsum_matches_ort(exclusive, reverse, dtype):
    x = RNG.integers(1, 5, size=(3, 4)).astype(dtype)
    attrs = {"exclusive": exclusive, "reverse": reverse}
    check_ort("CumSum", [x, np.array(-1, np.int32)], attrs, opset=14)


def test_cumprod_exclusive_reverse_by_hand():
    x = np.array([1.0, 2.0, 3.0], np.float32)
    ax = np.array(0, np.int64)
    cases = {(0, 0): [1, 2, 6], (1, 0): [1, 1, 2], (0, 1): [6, 6, 3], (1, 1): [6, 3, 1]}
    for (ex, rev), want in cases.items():
        y = anvil("CumProd", [x, ax], {"exclusive": ex, "reverse": rev}, opset=26)[0]
        np.testing.assert_array_equal(y, np.array(want, np.float32))


def test_cum_type_errors():
    assert "axis 2 out of range" in type_error("CumSum", [X[0], i64(2)], consts=(1,))
    two = i64(0, 1)
    assert "one-element 1-D tensor" in type_error("CumSum", [X, two], consts=(1,))


# ---------------------------------------------------------------------------------------
# TopK


@pytest.mark.parametrize("largest", [0, 1])
@pytest.mark.parametrize("axis", [0, -1])
def test_topk_matches_ort(largest, axis):
    x = RNG.integers(0, 4, size=(4, 6)).astype(np.float32)  # many ties
    check_ort("TopK", [x, i64(3)], {"axis": axis, "largest": largest}, opset=11, n_out=2)


def test_topk_ties_pick_lower_index_first():
    x = np.array([3, 1, 3, 2, 1], np.int64)
    vals, idx = anvil("TopK", [x, i64(4)], {"axis": 0}, n_out=2)
    np.testing.assert_array_equal(vals, [3, 3, 2, 1])
    np.testing.assert_array_equal(idx, [0, 2, 3, 1])
    vals, idx = anvil("TopK", [x, i64(3)], {"axis": 0, "largest": 0}, n_out=2)
    np.testing.assert_array_equal(idx, [1, 4, 3])


def test_topk_opset9_k_attribute_is_upgraded():
    check_ort("TopK", [X], {"axis": 1, "k": 2}, opset=9, n_out=2)


def test_topk_shape_and_errors():
    m = import_model(one_node("TopK", [X, i64(2)], {"axis": 1}, n_out=2, consts=(1,)))
    assert [r.type.shape for r in m.main.results] == [(3, 2, 5), (3, 2, 5)]
    assert "K=5 exceeds dimension 4" in type_error("TopK", [X, i64(5)], {"axis": 1}, n_out=2,
                                                  consts=(1,))
    assert "K must be >= 0" in type_error("TopK", [X, i64(-1)], n_out=2, consts=(1,))
