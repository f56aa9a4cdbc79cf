"""compiler/ops/resize.py: Resize of every opset and Upsample against onnxruntime (where the
two agree on the spec) and hand-computed values; static output shapes; clean errors."""

from __future__ import annotations

import itertools

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from compiler.backend import prepare
from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model

RNG = np.random.default_rng(5)
X = RNG.standard_normal((1, 2, 5, 7)).astype(np.float32)


def model(op="Resize", *, opset=19, roi=None, scales=None, sizes=None, x=X, dyn=False,
          **attrs):
    """One Resize node; roi/scales/sizes are initializers (graph inputs if `dyn`)."""
    names, inits, vis = ["x"], [], []
    for name, v, dt in (("roi", roi, np.float32), ("scales", scales, np.float32),
                        ("sizes", sizes, np.int64)):
        if opset < 11 and name != "scales":
            continue
        names.append("" if v is None else name)
        if v is not None:
            a = np.array(v, dt)
            if dyn:
                vis.append(helper.make_tensor_value_info(name, numpy_helper.from_array(a).data_type,
                                                         a.shape))
            else:
                inits.append(numpy_helper.from_array(a, name))
    while not names[-1]:
        names.pop()
    xt = TP.UINT8 if x.dtype == np.uint8 else TP.FLOAT
    node = helper.make_node(op, names, ["y"], **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", xt, x.shape)] + vis,
                          [helper.make_empty_tensor_value_info("y")], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def check(m, x=X, atol=1e-5):
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, {"x": x})
    rep = prepare(m)
    (got,) = rep.run([x])
    assert (got.dtype, got.shape) == (want.dtype, want.shape)
    assert rep.module.main.results[0].type.shape == got.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=atol)


COORDS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
          "asymmetric"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


@pytest.mark.parametrize("coord,nearest", itertools.product(COORDS, NEAREST))
def test_nearest_upsample_matches_ort(coord, nearest):
    check(model(scales=[1, 1, 2, 3], mode="nearest", coordinate_transformation_mode=coord,
                nearest_mode=nearest))
    check(model(sizes=[1, 2, 8, 4], mode="nearest", coordinate_transformation_mode=coord,
                nearest_mode=nearest))


@pytest.mark.parametrize("mode,coord", itertools.product(["linear", "cubic"], COORDS))
def test_linear_cubic_match_ort(mode, coord):
    for sc in ([1, 1, 2, 3], [1, 1, 0.5, 0.6], [1, 1, 1.7, 0.35]):
        if coord != "align_corners" or sc[2] == 2:  # see test_align_corners_fractional
            check(model(scales=sc, mode=mode, coordinate_transformation_mode=coord))
    check(model(sizes=[1, 2, 3, 9], mode=mode, coordinate_transformation_mode=coord,
                exclude_outside=int(mode == "cubic"), cubic_coeff_a=-0.5))


@pytest.mark.parametrize("mode,sc", itertools.product(
    ["linear", "cubic"], [[1, 1, 0.5, 0.6], [1, 1, 0.3, 1.5], [1, 1, 0.8, 0.45]]))
def test_antialias_matches_ort(mode, sc):
    check(model(scales=sc, mode=mode, antialias=1))
    check(model(scales=sc, mode=mode, antialias=1, exclude_outside=1))


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_tf_crop_and_resize_axes_policies(mode):
    roi = [0, 0, 0.2, 0.1, 1, 1, 0.9, 1.2]
    check(model(sizes=[1, 2, 8, 4], roi=roi, mode=mode, extrapolation_value=-2.0,
                coordinate_transformation_mode="tf_crop_and_resize"))
    check(model(scales=[1.5, 2.5], axes=[-1, 2], mode=mode))
    for policy, sz in itertools.product(["not_larger", "not_smaller"], [[3, 3], [9, 20]]):
        check(model(sizes=sz, axes=[2, 3], mode=mode, keep_aspect_ratio_policy=policy))


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_older_opsets_and_upsample(mode):
    check(model(opset=10, scales=[1, 1, 2, 1.5], mode=mode))
    check(model(opset=11, roi=[], scales=[], sizes=[1, 2, 7, 3], mode=mode))
    check(model(opset=11, roi=[], scales=[1, 1, 2, 3], mode=mode,
                coordinate_transformation_mode="tf_half_pixel_for_nn"))
    check(model("Upsample", opset=9, scales=[1, 1, 2, 1.5], mode=mode))
    node = helper.make_node("Upsample", ["x"], ["y"], mode=mode, scales=[1.0, 1.0, 2.0, 3.0])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TP.FLOAT, X.shape)],
                          [helper.make_empty_tensor_value_info("y")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 7)])
    m.ir_version = 8
    check(m)
    assert import_model(m).main.body[-1].expr.op == "Resize"


def test_uint8_rounds_and_saturates():
    x = RNG.integers(0, 256, (1, 1, 4, 6)).astype(np.uint8)
    check(model(scales=[1, 1, 2, 3], mode="linear", x=x), x=x, atol=1)  # ORT truncates
    x2 = np.array([[[[0, 3]]]], np.uint8)  # half_pixel samples 0.75 and 2.25: rounded
    (y,) = prepare(model(scales=[1, 1, 1, 2], mode="linear", x=x2)).run([x2])
    assert y.tolist() == [[[[0, 1, 2, 3]]]]
    (y,) = prepare(model(scales=[1, 1, 3, 3], mode="cubic", x=x)).run([x])
    assert y.dtype == np.uint8 and y.shape == (1, 1, 12, 18)  # cubic overshoot clips


def test_align_corners_fractional_and_pytorch_single_pixel():
    """onnx's conformance case: the target width 0.6 * 4 = 2.4 enters the transform."""
    x = np.arange(1, 9, dtype=np.float32).reshape(1, 1, 2, 4)
    m = model(scales=[1, 1, 0.6, 0.6], x=x, mode="linear",
              coordinate_transformation_mode="align_corners")
    np.testing.assert_allclose(prepare(m).run([x])[0], [[[[1, 3.142857]]]], rtol=1e-6)
    m = model(sizes=[1, 1, 1, 1], x=x, mode="cubic",
              coordinate_transformation_mode="pytorch_half_pixel")
    assert prepare(m).run([x])[0].item() == 1.0  # a single output samples x_original = 0


def test_static_and_unknown_shapes():
    t = import_model(model(scales=[1, 1, 0.5, 3])).main.results[0].type
    assert t.shape == (1, 2, 2, 21)
    t = import_model(model(scales=[1, 1, 0.5, 3], dyn=True)).main.results[0].type
    assert t.shape == ("?", "?", "?", "?")
    t = import_model(model(scales=[0.5, 3], axes=[2, 3], dyn=True)).main.results[0].type
    assert t.shape == (1, 2, "?", "?")


@pytest.mark.parametrize("kw,why", [
    ({"scales": [1, 1, 2, 2], "sizes": [1, 2, 3, 3]}, "exactly one of scales and sizes"),
    ({}, "exactly one of scales and sizes"),
    ({"scales": [1, 1, 2]}, "scales has 3 entries"),
    ({"scales": [1, 1, 0, 2]}, "must be positive"),
    ({"scales": [1, 1, 2, 2], "mode": "area"}, "mode must be one of"),
    ({"scales": [1, 1, 2, 2], "coordinate_transformation_mode": "tf_crop_and_resize"},
     "needs the roi input"),
    ({"sizes": [4, 4], "axes": [2, 2]}, "duplicates"),
])
def test_errors(kw, why):
    with pytest.raises(AnvilError, match=why):
        import_model(model(**kw))
