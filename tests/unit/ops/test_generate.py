"""compiler/ops/generate.py: ConstantOfShape, Range, EyeLike against onnxruntime and by hand;
the random ops' types, distributions and seeding; clean type-relation errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError, ExecutionError
from compiler.frontend.onnx import import_model


def one_node(op, inputs, attrs=None, *, opset=25, consts=()):
    names = [f"x{i}" for i in range(len(inputs))]
    node = helper.make_node(op, names, ["y"], **(attrs or {}))
    vis = [helper.make_tensor_value_info(n, DType.from_np(a.dtype).onnx, a.shape)
           for i, (n, a) in enumerate(zip(names, inputs, strict=True)) if i not in consts]
    inits = [numpy_helper.from_array(inputs[i], f"x{i}") for i in consts]
    model = helper.make_model(
        helper.make_graph([node], "g", vis, [helper.make_empty_tensor_value_info("y")], inits),
        opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    return model


def run(op, inputs, attrs=None, consts=(), **kw):
    rep = prepare(one_node(op, inputs, attrs, consts=consts, **kw))
    return rep.run([a for i, a in enumerate(inputs) if i not in consts])[0], rep


def check(op, inputs, attrs=None, consts=(), **kw):
    model = one_node(op, inputs, attrs, consts=consts, **kw)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, {f"x{i}": a for i, a in enumerate(inputs) if i not in consts})
    got, rep = run(op, inputs, attrs, consts, **kw)
    assert (got.dtype, got.shape) == (want.dtype, want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-6)  # Range: ORT accumulates, we multiply
    return rep.module.main.results[0].type


def type_error(op, inputs, attrs=None, **kw) -> str:
    with pytest.raises(AnvilError) as e:
        import_model(one_node(op, inputs, attrs, **kw))
    return str(e.value)


def s(v, dtype):
    return np.array(v, dtype=dtype)


def test_constant_of_shape():
    shape = np.array([2, 3], np.int64)
    t = check("ConstantOfShape", [shape], consts=(0,), opset=20)
    assert t.shape == (2, 3) and t.dtype == DType.float32
    value = helper.make_tensor("v", TP.INT32, [1], [7])
    t = check("ConstantOfShape", [shape], {"value": value}, opset=20)
    assert t.shape == ("?", "?") and t.dtype == DType.int32
    got, _ = run("ConstantOfShape", [np.zeros(0, np.int64)], {"value": value}, consts=(0,))
    assert got.shape == () and got == 7
    assert "negative" in type_error("ConstantOfShape", [np.array([-1], np.int64)], consts=(0,))
    big = helper.make_tensor("v", TP.INT32, [2], [7, 8])
    assert "exactly one element" in type_error("ConstantOfShape", [shape], {"value": big})


@pytest.mark.parametrize("start,limit,delta,dtype", [
    (3, 9, 3, np.int32), (10, 4, -2, np.int64), (1, 1, 1, np.int16), (0.5, 3.2, 0.7, np.float32),
    (5.0, -1.5, -1.25, np.float64), (2, 10, -1, np.int64),
])
def test_range(start, limit, delta, dtype):
    ins = [s(start, dtype), s(limit, dtype), s(delta, dtype)]
    t = check("Range", ins, opset=11)
    assert t.shape == ("?",)
    t = check("Range", ins, consts=(0, 1, 2), opset=11)
    assert isinstance(t.shape[0], int)


def test_range_float16_and_errors():
    got, rep = run("Range", [s(1, np.float16), s(2049, np.float16), s(512, np.float16)])
    np.testing.assert_array_equal(got, np.array([1, 513, 1025, 1537], np.float16))
    ins = [s(0, np.int64), s(3, np.int64), s(0, np.int64)]
    assert "delta must be non-zero" in type_error("Range", ins, consts=(0, 1, 2))
    with pytest.raises(ExecutionError, match="non-zero"):
        run("Range", ins)
    assert "limit has dtype int32" in type_error(
        "Range", [s(0, np.int64), s(3, np.int32), s(1, np.int64)])


@pytest.mark.parametrize("attrs", [{}, {"k": 2}, {"k": -1, "dtype": TP.INT32}, {"k": 5}])
def test_eyelike(attrs):
    check("EyeLike", [np.zeros((3, 4), np.float32)], attrs, opset=9)
    got, _ = run("EyeLike", [np.zeros((2, 3), np.int8)], {"dtype": TP.BOOL, "k": 1})
    assert got.dtype == np.bool_ and got.tolist() == [[0, 1, 0], [0, 0, 1]]
    assert "must be 2-D" in type_error("EyeLike", [np.zeros(3, np.float32)])


def test_random_ops_types_and_seed():
    x = np.zeros((50, 40), np.float32)
    got, rep = run("RandomUniformLike", [x], {"low": 2.0, "high": 3.0, "dtype": TP.DOUBLE})
    assert got.dtype == np.float64 and got.shape == (50, 40)
    assert 2.0 <= got.min() and got.max() < 3.0 and abs(got.mean() - 2.5) < 0.05
    got, _ = run("RandomNormalLike", [x], {"mean": 5.0, "scale": 0.5})
    assert got.dtype == np.float32 and abs(got.mean() - 5.0) < 0.05 and abs(got.std() - 0.5) < 0.05
    seeded = {"shape": [3, 4], "seed": 3.0, "dtype": TP.FLOAT16}
    a, _ = run("RandomNormal", [], seeded)
    b, _ = run("RandomNormal", [], seeded)
    assert a.dtype == np.float16 and np.array_equal(a, b)
    p = np.array([[0.0, 1.0, 0.5]] * 200, np.float32)
    got, _ = run("Bernoulli", [p], {"dtype": TP.INT32})
    assert got.dtype == np.int32 and (got[:, 0] == 0).all() and (got[:, 1] == 1).all()
    logits = np.log(np.array([[0.0001, 0.9998, 0.0001]], np.float32))
    got, _ = run("Multinomial", [logits], {"sample_size": 50, "dtype": TP.INT64})
    assert got.shape == (1, 50) and got.dtype == np.int64 and (got == 1).mean() > 0.9
    assert "not supported" in type_error("RandomUniformLike", [np.zeros(3, np.int32)])
    assert "sample_size" in type_error("Multinomial", [logits], {"sample_size": 0})
    assert "negative" in type_error("RandomUniform", [], {"shape": [2, -1]})
