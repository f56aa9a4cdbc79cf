"""compiler/ops/shape.py: references against onnxruntime on one-node models (older-opset
forms included), static shapes from constant shape inputs, and clean type-relation errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError, ExecutionError
from compiler.frontend.onnx import import_model

RNG = np.random.default_rng(7)
I64_MAX, I64_MIN = 2**63 - 1, -(2**63)


def one_node(op, inputs, attrs=None, *, opset=25, consts=(), n_out=1, shapes=None):
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
            shape = shapes[i] if shapes and i in shapes else a.shape
            vis.append(helper.make_tensor_value_info(n, DType.from_np(a.dtype).onnx, shape))
    outs = [helper.make_empty_tensor_value_info(f"y{k}") for k in range(n_out)]
    model = helper.make_model(helper.make_graph([node], "g", vis, outs, inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    return model


def feeds(inputs, consts):
    return [a for i, a in enumerate(inputs) if a is not None and i not in consts]


def check(op, inputs, attrs=None, *, consts=(1,), n_out=1, opset=25):
    """Our outputs equal onnxruntime's in dtype, shape and value, and match the static type."""
    model = one_node(op, inputs, attrs, opset=opset, consts=consts, n_out=n_out)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {f"x{i}": a for i, a in enumerate(inputs)
                           if a is not None and i not in consts})
    rep = prepare(model)
    got = rep.run(feeds(inputs, consts))
    for g, w, r in zip(got, want, rep.module.main.results, strict=True):
        assert (g.dtype, g.shape) == (w.dtype, w.shape)
        np.testing.assert_array_equal(g, w)
        assert r.type.shape == g.shape  # constant shape inputs give fully static types
    return got


def out_type(op, inputs, attrs=None, **kw):
    return [r.type for r in import_model(one_node(op, inputs, attrs, **kw)).main.results]


def type_error(op, inputs, attrs=None, **kw) -> str:
    with pytest.raises(AnvilError) as e:
        import_model(one_node(op, inputs, attrs, **kw))
    return str(e.value)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def i64(*v):
    return np.array(v, dtype=np.int64)


# ---------------------------------------------------------------------------------------
# Reshape, Transpose, Concat, Split, Squeeze, Unsqueeze, Flatten


@pytest.mark.parametrize("shape,allowzero", [
    ((6, -1), 0), ((0, -1, 2), 0), ((2, 0, 2, 2), 0), ((4, 0, 3), 1), ((-1,), 0),
])
def test_reshape(shape, allowzero):
    x = f32(2, 3, 4) if 0 not in shape or not allowzero else f32(4, 0, 3)
    check("Reshape", [x, i64(*shape)], {"allowzero": allowzero})


def test_reshape_symbolic_dims():
    t, = out_type("Reshape", [f32(2, 3, 4), i64(0, -1)], consts=(1,), shapes={0: ("N", 3, 4)})
    assert t.shape == ("N", 12)
    t, = out_type("Reshape", [f32(2, 3, 4), i64(-1, 12)], consts=(1,), shapes={0: ("N", 3, 4)})
    assert t.shape == ("N", 12)
    t, = out_type("Reshape", [f32(2, 3), i64(3, 2)])  # shape not constant: rank only
    assert t.shape == ("?", "?")


@pytest.mark.parametrize("shape,why", [
    ((5, -1), "cannot reshape"), ((-1, -1), "more than one -1"), ((7, 4), "cannot reshape"),
    ((0, 0, 0, 0), "copies a dim"), ((-2, 12), "invalid dim"),
])
def test_reshape_errors(shape, why):
    assert why in type_error("Reshape", [f32(2, 3, 4), i64(*shape)], consts=(1,))


def test_transpose_concat():
    check("Transpose", [f32(2, 3, 4)], {"perm": [1, 2, 0]}, consts=())
    check("Transpose", [f32(2, 3, 4)], consts=())
    check("Concat", [f32(2, 3), f32(2, 1), f32(2, 0)], {"axis": -1}, consts=())
    assert "permutation" in type_error("Transpose", [f32(2, 3)], {"perm": [0, 0]})
    assert "differ in dim 0" in type_error("Concat", [f32(2, 3), f32(3, 3)], {"axis": 1})
    assert "out of range" in type_error("Concat", [f32(2, 3), f32(2, 3)], {"axis": 2})


@pytest.mark.parametrize("opset,attrs,split,n", [
    (18, {"num_outputs": 3, "axis": 1}, None, 3), (18, {"num_outputs": 4}, None, 4),
    (13, {"axis": 1}, None, 2), (13, {}, i64(1, 4, 2), 3), (11, {"split": [3, 4]}, None, 2),
    (11, {"axis": 1}, None, 2),
])
def test_split(opset, attrs, split, n):
    x = f32(7, 6)
    check("Split", [x, split], attrs, n_out=n, opset=opset)


def test_split_errors():
    assert "sum to" in type_error("Split", [f32(7), i64(3, 3)], consts=(1,), n_out=2)
    assert "exactly one" in type_error("Split", [f32(7)], n_out=2)
    assert "num_outputs=3" in type_error("Split", [f32(6)], {"num_outputs": 3}, n_out=2)


@pytest.mark.parametrize("opset", [11, 13, 25])
def test_squeeze_unsqueeze(opset):
    x = f32(1, 3, 1, 2)
    if opset < 13:
        check("Squeeze", [x], {"axes": [0, -2]}, consts=(), opset=opset)
        check("Unsqueeze", [x], {"axes": [0, 5]}, consts=(), opset=opset)
    else:
        check("Squeeze", [x, i64(0, -2)], opset=opset)
        check("Squeeze", [x], consts=(), opset=opset)
        check("Unsqueeze", [x, i64(5, 0)], opset=opset)
    assert "cannot squeeze axis 1" in type_error("Squeeze", [x, i64(1)], consts=(1,))
    assert "duplicates" in type_error("Unsqueeze", [x, i64(0, 0)], consts=(1,))


def test_flatten_shape_size():
    x = f32(2, 3, 4, 5)
    for axis in (0, 2, 4, -1, -4):
        check("Flatten", [x], {"axis": axis}, consts=())
    for attrs in ({}, {"start": 1}, {"end": -1}, {"start": -10, "end": 10}, {"start": 3,
                                                                              "end": 1}):
        check("Shape", [x], attrs, consts=())
    check("Size", [x], consts=())
    t, = out_type("Flatten", [x], {"axis": 1}, shapes={0: ("N", 3, 4, 5)})
    assert t.shape == ("N", 60)


# ---------------------------------------------------------------------------------------
# Expand, Tile, Pad, CenterCropPad, DepthToSpace, SpaceToDepth


def test_expand_tile():
    check("Expand", [f32(3, 1), i64(2, 1, 4)])
    check("Expand", [f32(3, 4), i64(1)])
    check("Tile", [f32(2, 3), i64(2, 3)])
    assert "cannot broadcast" in type_error("Expand", [f32(3, 2), i64(4)], consts=(1,))
    assert "repeats has 1" in type_error("Tile", [f32(3, 2), i64(4)], consts=(1,))
    t, = out_type("Expand", [f32(3, 1), i64(2, 1, 4)])  # shape not constant
    assert t.shape == ("?", 3, "?")


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_modes(mode):
    x = f32(3, 4)
    check("Pad", [x, i64(1, 2, 2, 1)], {"mode": mode})
    check("Pad", [x, i64(2, 0, 1, 1), None, i64(-1, 0)], {"mode": mode}, consts=(1, 3))
    check("Pad", [x, i64(-1, 1, 0, -1)], {"mode": mode})


def test_pad_constant_value_and_old_opset():
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    check("Pad", [x, i64(0, 1, 1, 0), np.array(7, np.int32)], consts=(1, 2))
    check("Pad", [f32(3, 4)], {"pads": [1, 0, 0, 2], "value": 2.5}, consts=(), opset=10)
    assert "dtype int64 differs" in type_error(
        "Pad", [f32(2), i64(1, 1), i64(3)], consts=(1, 2))
    assert "mode must be" in type_error("Pad", [f32(2), i64(1, 1)], {"mode": "x"}, consts=(1,))
    assert "pads has 2 entries" in type_error("Pad", [f32(2, 2), i64(1, 1)], consts=(1,))


def test_center_crop_pad():
    x = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    (y,) = prepare(one_node("CenterCropPad", [x, i64(5, 2)], {"axes": [0, 2]},
                            consts=(1,))).run([x])
    want = np.zeros((5, 4, 2), np.float32)
    want[1:4] = x[:, :, 1:3]  # pad 3 -> 5 puts one row before; crop 5 -> 2 starts at 1
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("op,mode", [("DepthToSpace", "DCR"), ("DepthToSpace", "CRD"),
                                     ("SpaceToDepth", None)])
def test_depth_space(op, mode):
    x = f32(2, 8, 2, 4) if op == "DepthToSpace" else f32(2, 2, 4, 6)
    attrs = {"blocksize": 2} if mode is None else {"blocksize": 2, "mode": mode}
    check(op, [x], attrs, consts=(), opset=13)
    if op == "SpaceToDepth":  # CRD is new in opset 28: the inverse of DepthToSpace CRD
        y = check(op, [x], attrs, consts=(), opset=13)[0]
        model = one_node("SpaceToDepth", [x], {"blocksize": 2, "mode": "CRD"})
        z = prepare(model).run([x])[0]
        back = prepare(one_node("DepthToSpace", [z], {"blocksize": 2, "mode": "CRD"})).run([z])
        np.testing.assert_array_equal(back[0], x)
        assert not np.array_equal(y, z)


def test_depth_space_errors():
    assert "not divisible" in type_error("DepthToSpace", [f32(1, 6, 2, 2)], {"blocksize": 2})
    assert "must be 4-D" in type_error("SpaceToDepth", [f32(4, 4)], {"blocksize": 2})


# ---------------------------------------------------------------------------------------
# Slice


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ((1, 0), (3, -1), None, None), ((-1,), (I64_MIN,), (1,), (-1,)),
    ((0, 10), (I64_MAX, -100), (0, 1), (2, -3)), ((5,), (1,), (-1,), (-2,)),
    ((-100, 2), (100, 2), (1, 0), (1, 1)), ((20,), (0,), (0,), (-1,)), ((3,), (3,), None, None),
])
def test_slice(starts, ends, axes, steps):
    x = f32(4, 6)
    ins = [x, i64(*starts), i64(*ends), None if axes is None else i64(*axes),
           None if steps is None else i64(*steps)]
    check("Slice", ins, consts=(1, 2, 3, 4))


def test_slice_old_opset_and_symbols():
    check("Slice", [f32(4, 6)], {"starts": [1, -2], "ends": [3, 100], "axes": [1, 0]},
          consts=(), opset=9)
    ins = [f32(4, 6), i64(0, 1), i64(I64_MAX, 3)]
    t, = out_type("Slice", ins, consts=(1, 2), shapes={0: ("N", 6)})
    assert t.shape == ("N", 2)
    assert "steps must be non-zero" in type_error(
        "Slice", [f32(4), i64(0), i64(2), i64(0), i64(0)], consts=(1, 2, 3, 4))
    assert "duplicates" in type_error(
        "Slice", [f32(4, 4), i64(0, 0), i64(2, 2), i64(0, -2)], consts=(1, 2, 3))


def test_runtime_errors_are_clean():
    model = one_node("Reshape", [f32(2, 3), i64(4, 2)])  # shape not constant
    with pytest.raises(ExecutionError, match="cannot reshape"):
        prepare(model).run([f32(2, 3), i64(4, 2)])

