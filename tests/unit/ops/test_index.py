"""compiler/ops/index.py: references against onnxruntime on one-node models, clean runtime
errors for out-of-range indices, and clean type-relation errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError, ExecutionError
from compiler.frontend.onnx import import_model

RNG = np.random.default_rng(11)


def one_node(op, inputs, attrs=None, *, opset=25, consts=(), n_out=1):
    """A one-node model. Inputs listed in `consts` become initializers; None is absent."""
    names = ["" if a is None else f"x{i}" for i, a in enumerate(inputs)]
    while names and not names[-1]:
        names.pop()
    node = helper.make_node(op, names, [f"y{k}" for k in range(n_out)], **(attrs or {}))
    vis, inits = [], []
    for i, (n, a) in enumerate(zip(names, inputs, strict=False)):
        if a is None:
            continue
        if i in consts:
            inits.append(numpy_helper.from_array(a, n))
        else:
            vis.append(helper.make_tensor_value_info(n, DType.from_np(a.dtype).onnx, a.shape))
    outs = [helper.make_empty_tensor_value_info(f"y{k}") for k in range(n_out)]
    model = helper.make_model(helper.make_graph([node], "g", vis, outs, inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    return model


def run(op, inputs, attrs=None, **kw):
    consts = kw.get("consts", ())
    feeds = [a for i, a in enumerate(inputs) if a is not None and i not in consts]
    return prepare(one_node(op, inputs, attrs, **kw)).run(feeds)


def check(op, inputs, attrs=None, **kw):
    """Our outputs equal onnxruntime's in dtype, shape and value."""
    model = one_node(op, inputs, attrs, **kw)
    consts = kw.get("consts", ())
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {f"x{i}": a for i, a in enumerate(inputs)
                           if a is not None and i not in consts})
    got = run(op, inputs, attrs, **kw)
    for g, w in zip(got, want, strict=True):
        assert (g.dtype, g.shape) == (w.dtype, w.shape)
        np.testing.assert_array_equal(g, w)


def type_error(op, inputs, attrs=None, **kw) -> str:
    with pytest.raises(AnvilError) as e:
        import_model(one_node(op, inputs, attrs, **kw))
    return str(e.value)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def i64(v):
    return np.array(v, dtype=np.int64)


# ---------------------------------------------------------------------------------------
# Gather family


@pytest.mark.parametrize("axis,idx", [(0, [[0, -1], [2, 1]]), (1, [-4, 3, 0]), (-1, 2)])
def test_gather(axis, idx):
    check("Gather", [f32(3, 4, 2) if axis != -1 else f32(3, 4), i64(idx)], {"axis": axis})


def test_gather_elements_and_nd():
    x = f32(3, 4)
    check("GatherElements", [x, i64([[0, -1, 2], [1, 1, -3]])], {"axis": 1})
    check("GatherElements", [x, i64([[2, 0, 1, -1]])], {"axis": 0})
    data = f32(2, 3, 4)
    check("GatherND", [data, i64([[1, 2], [0, -1]])])
    check("GatherND", [data, i64([[[2, 3]], [[0, 1]]])], {"batch_dims": 1})
    check("GatherND", [data, i64([[1], [0]])], {"batch_dims": 1})


@pytest.mark.parametrize("op,inputs,attrs", [
    ("Gather", [np.zeros((3, 2), np.float32), i64([3])], {}),
    ("Gather", [np.zeros((3, 2), np.float32), i64([-3, -4])], {}),
    ("GatherElements", [np.zeros((3, 2), np.float32), i64([[0, 2]])], {"axis": 1}),
    ("GatherND", [np.zeros((3, 2), np.float32), i64([[0, 2]])], {}),
    ("ScatterElements", [np.zeros((3,), np.float32), i64([5]), np.ones(1, np.float32)], {}),
    ("ScatterND", [np.zeros((3,), np.float32), i64([[-4]]), np.ones(1, np.float32)], {}),
])
def test_out_of_range_indices_are_clean_errors(op, inputs, attrs):
    with pytest.raises(ExecutionError, match="out of range"):
        run(op, inputs, attrs)


def test_gather_type_errors():
    assert "must be int32 or int64" in type_error("Gather", [f32(3), f32(2)])
    assert "out of range" in type_error("Gather", [f32(3), i64([1])], {"axis": 1})
    assert "indices.shape[-1] = 3" in type_error("GatherND", [f32(2, 2), i64([[0, 1, 1]])])
    assert "batch dims" in type_error("GatherND", [f32(2, 2), i64([[0], [1], [1]])],
                                      {"batch_dims": 1})


# ---------------------------------------------------------------------------------------
# Scatter family


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements(reduction):
    x = f32(3, 4)
    idx = i64([[0, -1], [2, 2]]) if reduction != "none" else i64([[0, -1], [2, 1]])
    check("ScatterElements", [x, idx, f32(2, 2)], {"axis": 1, "reduction": reduction})


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_nd(reduction):
    x = f32(4, 3)
    idx = i64([[1], [3]]) if reduction == "none" else i64([[1], [1], [-1]])
    check("ScatterND", [x, idx, f32(len(idx), 3)], {"reduction": reduction})
    idx2 = i64([[0, 1], [3, 2]]) if reduction == "none" else i64([[0, 1], [0, 1]])
    check("ScatterND", [x, idx2, f32(2)], {"reduction": reduction})


def test_scatter_deprecated_imports_as_scatter_elements():
    x = f32(3, 3)
    args = [x, i64([[1, 0, 2]]), f32(1, 3)]
    check("Scatter", args, {"axis": 0}, opset=10)
    fn = import_model(one_node("Scatter", args, {"axis": 0}, opset=10)).main
    assert fn.body[-1].expr.op == "ScatterElements"


def test_scatter_type_errors():
    assert "reduction must be" in type_error(
        "ScatterND", [f32(3), i64([[1]]), f32(1)], {"reduction": "avg"})
    assert "updates shape" in type_error("ScatterND", [f32(3, 2), i64([[1]]), f32(2, 2)])
    assert "updates dtype" in type_error("ScatterElements", [f32(3), i64([1]), i64([1])])


@pytest.mark.parametrize("mode", ["linear", "circular"])
def test_tensor_scatter(mode):
    past, upd = f32(2, 3, 5, 2), f32(2, 3, 2, 2)
    wi = i64([1, 3]) if mode == "linear" else i64([4, 2])
    (got,) = run("TensorScatter", [past, upd, wi], {"mode": mode}, opset=24)
    want = past.copy()
    for b in range(2):
        for s in range(2):
            want[b, :, (wi[b] + s) % 5] = upd[b, :, s]
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ExecutionError, match="exceed"):
        run("TensorScatter", [past, upd, i64([4, 0])], opset=24)
    assert "axis cannot be 0" in type_error("TensorScatter", [past, upd], {"axis": 0},
                                            opset=24)


# ---------------------------------------------------------------------------------------
# Compress, NonZero, Unique


def test_compress_nonzero():
    x = f32(3, 4)
    cond = np.array([True, False, True], bool)
    check("Compress", [x, cond], {"axis": 0}, opset=11)
    check("Compress", [x, np.array([False, True], bool)], opset=11)
    check("Compress", [x, np.array([0, 1, 1, 0], bool)], {"axis": -1}, opset=11)
    check("NonZero", [np.array([[1, 0, 3], [0, 0, 2]], np.int32)], opset=13)
    check("NonZero", [np.array(3.0, np.float32)], opset=13)
    assert "must be bool" in type_error("Compress", [x, i64([1])])


@pytest.mark.parametrize("x,attrs", [
    (np.array([2, 1, 1, 3, 4, 3], np.int64), {"sorted": 0}),
    (np.array([[1, 3], [2, 3]], np.float32), {}),
    (np.array([[1, 0, 0], [1, 0, 0], [2, 3, 4]], np.int64), {"axis": 0}),
    (np.array([[[1, 1], [0, 1], [2, 1], [0, 1]]] * 2, np.float32), {"axis": 1}),
    (np.array([[3, 1, 3], [2, 1, 2]], np.int64), {"axis": -1, "sorted": 0}),
])
def test_unique(x, attrs):
    check("Unique", [x], attrs, n_out=4, opset=11)


def test_unique_nan_and_strings():
    x = np.array([2.0, np.nan, 1.0, np.nan, 2.0], np.float64)
    y, idx, inv, cnt = run("Unique", [x], n_out=4)
    np.testing.assert_array_equal(y, [1.0, 2.0, np.nan])
    assert idx.tolist() == [2, 0, 1] and inv.tolist() == [1, 2, 0, 2, 1]
    assert cnt.tolist() == [1, 2, 2]
    s = np.array(["b", "a", "b", "c"], dtype=object)
    y, idx, inv, cnt = run("Unique", [s], {"sorted": 0}, n_out=4)
    assert y.tolist() == ["b", "a", "c"] and inv.tolist() == [0, 1, 0, 2]
    y, idx, inv, cnt = run("Unique", [s], n_out=4)
    assert y.tolist() == ["a", "b", "c"] and idx.tolist() == [1, 0, 3]


# ---------------------------------------------------------------------------------------
# OneHot, Trilu, ReverseSequence


@pytest.mark.parametrize("axis", [-1, 0, 1, -3])
def test_onehot(axis):
    idx = np.array([[0, -1, 5], [2, -4, 1]], np.int64)
    values = np.array([-2.0, 7.0], np.float32)
    check("OneHot", [idx, np.array(4, np.int64), values], {"axis": axis}, consts=(1,), opset=11)
    check("OneHot", [idx.astype(np.float32), np.array([3.0], np.float32), values],
          {"axis": axis}, opset=11)
    assert "out of range" in type_error("OneHot", [idx, i64(4), values], {"axis": 3})


@pytest.mark.parametrize("upper,k", [(1, None), (0, None), (1, 2), (0, -1), (1, -7)])
def test_trilu(upper, k):
    x = f32(2, 4, 5)
    check("Trilu", [x, None if k is None else i64(k)], {"upper": upper}, opset=14)
    assert "rank >= 2" in type_error("Trilu", [f32(3)])


@pytest.mark.parametrize("batch_axis,time_axis", [(1, 0), (0, 1)])
def test_reverse_sequence(batch_axis, time_axis):
    x = f32(4, 3, 2) if batch_axis == 1 else f32(3, 4, 2)
    check("ReverseSequence", [x, i64([4, 1, 0])],
          {"batch_axis": batch_axis, "time_axis": time_axis}, opset=10)
    assert "must be 0 and 1" in type_error("ReverseSequence", [x, i64([1, 1, 1])],
                                           {"batch_axis": 1, "time_axis": 1})
