"""compiler/ops/detection.py: NonMaxSuppression, RoiAlign, GridSample, AffineGrid against
onnxruntime (including the opset-10/16 forms rewritten at import), plus type errors."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError

RNG = np.random.default_rng(0)


def one_node(op: str, inputs: list, attrs: dict | None = None, *, opset: int = 22,
             const: tuple[int, ...] = ()) -> onnx.ModelProto:
    names = [f"x{i}" if a is not None else "" for i, a in enumerate(inputs)]
    node = helper.make_node(op, names, ["y"], **(attrs or {}))
    vis = [helper.make_tensor_value_info(n, DType.from_np(a.dtype).onnx, a.shape)
           for i, (n, a) in enumerate(zip(names, inputs, strict=True))
           if a is not None and i not in const]
    inits = [helper.make_tensor(names[i], DType.from_np(inputs[i].dtype).onnx,
                                inputs[i].shape, inputs[i].reshape(-1).tolist()) for i in const]
    graph = helper.make_graph([node], "g", vis, [helper.make_empty_tensor_value_info("y")],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def check(op: str, inputs: list, attrs: dict | None = None, *, opset: int = 22,
          const: tuple[int, ...] = ()) -> np.ndarray:
    model = one_node(op, inputs, attrs, opset=opset, const=const)
    feeds = {f"x{i}": a for i, a in enumerate(inputs) if a is not None and i not in const}
    (got,) = prepare(model).run(list(feeds.values()))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, feeds)
    assert got.dtype == want.dtype and got.shape == want.shape
    if want.dtype.kind in "iu":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    return got


def import_error(op: str, inputs: list, attrs: dict | None = None, **kw) -> str:
    with pytest.raises(AnvilError) as e:
        prepare(one_node(op, inputs, attrs, **kw))
    return str(e.value)


# ---------------------------------------------------------------------------------------
# NonMaxSuppression


def _boxes(n: int, batches: int = 2) -> np.ndarray:
    c = RNG.uniform(0, 10, (batches, n, 2))
    s = RNG.uniform(1, 4, (batches, n, 2))
    return np.concatenate([c - s / 2, c + s / 2], axis=-1).astype(np.float32)


@pytest.mark.parametrize("center", [0, 1])
def test_nms_matches_ort(center):
    boxes, scores = _boxes(12), RNG.random((2, 3, 12)).astype(np.float32)
    scores[0, 0, 3] = scores[0, 0, 5]  # a tie: lower index first
    ins = [boxes, scores, np.array([4], np.int64), np.array([0.2], np.float32),
           np.array([0.15], np.float32)]
    got = check("NonMaxSuppression", ins, {"center_point_box": center}, opset=11)
    assert got.shape[1] == 3 and len(got) > 6


def test_nms_without_limit_selects_nothing():
    ins = [_boxes(4), RNG.random((2, 1, 4)).astype(np.float32)]
    got = check("NonMaxSuppression", ins, opset=11)
    assert got.shape == (0, 3)


def test_nms_type_errors():
    boxes = np.zeros((1, 5, 3), np.float32)
    assert "boxes last dim" in import_error(
        "NonMaxSuppression", [boxes, np.zeros((1, 1, 5), np.float32)], opset=11)
    assert "box count" in import_error(
        "NonMaxSuppression", [_boxes(5, 1), np.zeros((1, 1, 6), np.float32)], opset=11)


# ---------------------------------------------------------------------------------------
# RoiAlign


def _roi_inputs():
    x = RNG.standard_normal((2, 3, 9, 11)).astype(np.float32)
    rois = np.array([[0.5, 1.0, 6.3, 7.9], [2.0, 0.0, 10.5, 4.0], [3.2, 3.3, 3.4, 3.9],
                     [-2.0, -1.5, 4.0, 12.0]], np.float32)
    return [x, rois, np.array([0, 1, 1, 0], np.int64)]


@pytest.mark.parametrize("opset,attrs", [
    (10, {"output_height": 3, "output_width": 2, "sampling_ratio": 2, "spatial_scale": 0.8}),
    (16, {"output_height": 2, "output_width": 4}),
    (16, {"output_height": 3, "output_width": 3, "coordinate_transformation_mode":
          "output_half_pixel", "sampling_ratio": 1, "spatial_scale": 0.8}),
    (16, {"output_height": 2, "output_width": 2, "mode": "max", "sampling_ratio": 2}),
])
def test_roi_align_matches_ort(opset, attrs):
    check("RoiAlign", _roi_inputs(), attrs, opset=opset)


def test_roi_align_type_errors():
    ins = _roi_inputs()
    assert "mode 'min'" in import_error("RoiAlign", ins, {"mode": "min"})
    ins[2] = np.zeros(3, np.int64)
    assert "rois/batch_indices count" in import_error("RoiAlign", ins)


# ---------------------------------------------------------------------------------------
# GridSample and AffineGrid


def _grid(*shape) -> np.ndarray:
    return RNG.uniform(-1.3, 1.3, shape).astype(np.float32)


@pytest.mark.parametrize("mode,padding,align", [
    c for c in itertools.product(["bilinear", "nearest", "bicubic"],
                                 ["zeros", "border", "reflection"], [0, 1])
    if c[:2] != ("bicubic", "border")])
def test_grid_sample_opset16_matches_ort(mode, padding, align):
    x = RNG.standard_normal((2, 3, 5, 6)).astype(np.float32)
    check("GridSample", [x, _grid(2, 4, 3, 2)],
          {"mode": mode, "padding_mode": padding, "align_corners": align}, opset=16)


@pytest.mark.parametrize("mode,padding", [("linear", "reflection"), ("nearest", "zeros"),
                                          ("linear", "border")])
def test_grid_sample_5d_matches_ort(mode, padding):
    x = RNG.standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
    check("GridSample", [x, _grid(1, 2, 3, 4, 3)], {"mode": mode, "padding_mode": padding})


def test_grid_sample_cubic_border_clamps_the_coordinate():
    # The ONNX reference clamps an out-of-range coordinate to the border before the cubic
    # taps (onnxruntime/torch clamp only the taps): a point right of the image samples the
    # border pixel exactly.
    x = RNG.standard_normal((1, 1, 2, 3)).astype(np.float32)
    grid = np.array([[[[1.2, -0.5], [1.6, 0.5]]]], np.float32)  # x beyond the right edge
    (y,) = prepare(one_node("GridSample", [x, grid], {"mode": "cubic",
                                                      "padding_mode": "border"})).run([x, grid])
    np.testing.assert_array_equal(y[0, 0, 0], [x[0, 0, 0, 2], x[0, 0, 1, 2]])


def test_grid_sample_type_errors():
    x = np.zeros((1, 1, 4, 4), np.float32)
    assert "grid last dim" in import_error("GridSample", [x, _grid(1, 2, 2, 3)])
    assert "mode 'area'" in import_error("GridSample", [x, _grid(1, 2, 2, 2)], {"mode": "area"})


@pytest.mark.parametrize("size,align", [([2, 3, 4, 5], 0), ([2, 1, 3, 2], 1),
                                        ([2, 3, 2, 4, 3], 0), ([2, 3, 2, 4, 3], 1)])
def test_affine_grid_matches_ort(size, align):
    sp = len(size) - 2
    theta = RNG.standard_normal((2, sp, sp + 1)).astype(np.float32)
    got = check("AffineGrid", [theta, np.array(size, np.int64)], {"align_corners": align},
                opset=20, const=(1,))
    assert got.shape == (2, *size[2:], sp)


def test_affine_grid_type_errors():
    theta = np.zeros((2, 2, 3), np.float32)
    assert "theta/size batch size" in import_error(
        "AffineGrid", [theta, np.array([3, 1, 4, 4], np.int64)], opset=20, const=(1,))
    assert "theta rows" in import_error(
        "AffineGrid", [theta, np.array([2, 1, 4, 4, 4], np.int64)], opset=20, const=(1,))


def test_roi_align_bad_batch_index_is_a_clean_runtime_error():
    ins = _roi_inputs()
    ins[2] = np.array([0, 1, 2, 0], np.int64)
    with pytest.raises(AnvilError, match="batch_indices must lie in"):
        prepare(one_node("RoiAlign", ins, opset=16)).run(ins)
