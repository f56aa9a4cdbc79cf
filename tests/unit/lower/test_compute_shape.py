"""Compute definitions of compiler/ops/{shape,pad_slice,index,generate,resize}.py: each op
lowered at small shapes, run on the loop-IR interpreter (whose undefined-behaviour checks catch
any out-of-bounds load) and on LLVM/C where those backends import, and checked against the
op's numpy reference: exactly for integers and bools, within a few ulps for floats."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.dtypes import DType
from compiler.errors import UnsupportedError
from compiler.graph.ir import Tensor
from compiler.loop.verifier import verify
from compiler.lower.lowering import lower_call
from compiler.ops.base import EvalCtx, get_op
from oracles.compare import compare

TARGETS = ["lir", "llvm", "c"]
RNG = np.random.default_rng(11)
I64 = np.int64


@pytest.fixture(params=TARGETS)
def target(request) -> str:
    if request.param != "lir":
        pytest.importorskip(f"compiler.codegen.{request.param}")
    return request.param


def _attrs(op_name: str, attrs: dict | None) -> dict:
    out = {k: a.default for k, a in get_op(op_name).attrs.items()}
    out.update(attrs or {})
    return out


def lower(op_name: str, args: list, attrs: dict | None = None, n_out: int = 1):
    func, types = lower_call(get_op(op_name), _attrs(op_name, attrs), args, n_out,
                             f"k_{op_name}")
    verify(func)
    return func, types


def check(target: str, op_name: str, args: list, attrs: dict | None = None,
          n_out: int = 1, tol: float = 0.0) -> None:
    from compiler.driver import codegen_for

    args = [None if a is None else np.asarray(a) for a in args]
    func, types = lower(op_name, args, attrs, n_out)
    ctx = EvalCtx(op_name, _attrs(op_name, attrs), n_out, types)
    with np.errstate(all="ignore"):
        want = list(get_op(op_name).ref(ctx, list(args)))[:n_out]
    kernel = codegen_for(target)([func])[func.name]
    got = [np.empty(t.shape, t.dtype.np) for t in types]
    kernel(*[a.copy() for a in args if a is not None], *got)
    for k, (w, g) in enumerate(zip(want, got, strict=True)):
        d = compare(np.asarray(w), g, rtol=tol, atol=tol)
        assert d, f"{op_name} {attrs or ''} output {k} on {target}: {d.reason}\n" \
                  f"want {w}\ngot  {g}"


def floats(*shape: int, dtype=np.float32) -> np.ndarray:
    return RNG.uniform(-5, 5, shape).astype(dtype)


# ---------------------------------------------------------------------------------------
# shape.py


def test_layout(target):
    x = floats(2, 3, 4)
    check(target, "Reshape", [x, np.array([0, -1, 2], I64)])
    check(target, "Reshape", [x, np.array([24], I64)])
    check(target, "Transpose", [x])
    check(target, "Transpose", [x], {"perm": [1, 2, 0]})
    check(target, "Squeeze", [x[:1], np.array([0], I64)])
    check(target, "Unsqueeze", [x, np.array([-1, 1], I64)])
    check(target, "Flatten", [x], {"axis": 2})
    check(target, "Expand", [x[:, :1], np.array([3, 1, 1, 4], I64)])
    check(target, "Tile", [x.astype(np.int16), np.array([2, 1, 3], I64)])
    check(target, "Shape", [x], {"start": 1})
    check(target, "Shape", [x], {"start": -1, "end": 1})  # empty
    check(target, "Size", [x])


def test_concat_and_split(target):
    a, b = floats(2, 3), floats(2, 0)
    check(target, "Concat", [a, b, a[:, :1] * 2, a], {"axis": -1})
    check(target, "Concat", [np.array([True]), np.array([False, True])], {"axis": 0})
    x = np.arange(14, dtype=np.int32).reshape(2, 7)
    check(target, "Split", [x], {"axis": 1, "num_outputs": 3}, n_out=3)
    check(target, "Split", [x, np.array([0, 5, 2], I64)], {"axis": 1}, n_out=3)


# ---------------------------------------------------------------------------------------
# pad_slice.py


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad(target, mode):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    check(target, "Pad", [x, np.array([2, 7, 5, -1], I64)], {"mode": mode})
    check(target, "Pad", [x, np.array([-1, 1], I64), None, np.array([-1], np.int32)],
          {"mode": mode})
    if mode == "constant":
        check(target, "Pad", [x.astype(np.int8), np.array([1, 0, 0, 2], I64),
                              np.array(-3, np.int8)])
        check(target, "Pad", [np.zeros((0, 2), np.float32), np.array([1, 0, 1, 0], I64),
                              np.array([1.5], np.float32)])


def test_crop_pad_and_blocks(target):
    x = floats(2, 5, 3)
    check(target, "CenterCropPad", [x, np.array([2, 3, 6], I64)])
    check(target, "CenterCropPad", [x, np.array([4, 1], I64)], {"axes": [-1, 1]})
    y = np.arange(2 * 8 * 2 * 3, dtype=np.int32).reshape(2, 8, 2, 3)
    for mode in ("DCR", "CRD"):
        check(target, "DepthToSpace", [y], {"blocksize": 2, "mode": mode})
    check(target, "SpaceToDepth", [y.reshape(2, 2, 4, 6)], {"blocksize": 2})
    check(target, "SpaceToDepth", [y.reshape(2, 2, 4, 6)], {"blocksize": 2, "mode": "CRD"})


def test_slice(target):
    x = floats(5, 6, 4)
    check(target, "Slice", [x, np.array([1, -1], I64), np.array([1000, -7], I64),
                            np.array([0, 1], I64), np.array([2, -2], I64)])
    check(target, "Slice", [x, np.array([10], np.int32), np.array([-100], np.int32),
                            np.array([-1], np.int32), np.array([-1], np.int32)])
    check(target, "Slice", [x, np.array([3], I64), np.array([1], I64)])  # empty


# ---------------------------------------------------------------------------------------
# index.py


def test_gathers(target):
    x = floats(4, 3, 2)
    check(target, "Gather", [x, np.array([[0, -1], [3, -4]], np.int32)], {"axis": 0})
    check(target, "Gather", [x, np.array(-2, I64)], {"axis": 1})
    check(target, "GatherElements", [x, np.array([[[1]], [[-2]]], I64)], {"axis": 1})
    check(target, "GatherND", [x, np.array([[1, -1], [0, 2]], I64)])
    check(target, "GatherND", [x, np.array([[2], [0], [1], [-1]], I64)], {"batch_dims": 1})


def test_out_of_range_index_is_clamped_not_undefined():
    """The reference raises; compiled code must still never load out of bounds."""
    from compiler.driver import codegen_for

    x, ind = np.arange(4, dtype=np.float32), np.array([7, -9], I64)
    func, types = lower("Gather", [x, ind])
    out = np.empty(types[0].shape, np.float32)
    codegen_for("lir")([func])[func.name](x, ind, out)
    assert out.tolist() == [3.0, 0.0]


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatters(target, reduction):
    x = floats(3, 4)
    ind = np.array([[1, 1, -1], [0, 2, 0]], I64)  # duplicates along axis 1 of row 0
    upd = floats(2, 3)
    check(target, "ScatterElements", [x, ind, upd], {"axis": 1, "reduction": reduction})
    check(target, "ScatterElements", [x.astype(np.int32), ind[:, :2],
                                      np.arange(4, dtype=np.int32).reshape(2, 2)],
          {"axis": 0, "reduction": reduction})
    nd = np.array([[[2], [0]], [[-3], [2]]], I64)  # row 2 is hit twice
    check(target, "ScatterND", [x, nd, floats(2, 2, 4)], {"reduction": reduction})
    check(target, "ScatterND", [x, np.array([[1, 2], [1, -2]], I64), floats(2)],
          {"reduction": reduction})
    if reduction in ("add", "mul"):
        b = np.array([[True, False], [False, False]])
        check(target, "ScatterND", [b, np.array([[0, 1], [1, 1]], I64),
                                    np.array([False, True])], {"reduction": reduction})


def test_tensor_scatter(target):
    past, upd = floats(2, 5, 3), floats(2, 3, 3)
    check(target, "TensorScatter", [past, upd, np.array([1, 2], I64)])
    check(target, "TensorScatter", [past, upd, np.array([4, 0], I64)], {"mode": "circular"})
    check(target, "TensorScatter", [past, upd[:, :1]])


def test_onehot_trilu_reverse(target):
    ind = np.array([[0, -1, 3], [9, -4, 2]], I64)
    values = np.array([2.5, -1.0], np.float32)
    check(target, "OneHot", [ind, np.array(4.0, np.float32), values], {"axis": 1})
    f = np.array([1.7, -0.5, np.nan, np.inf, -2.2, 1e30], np.float32)
    check(target, "OneHot", [f, np.array([3], I64), values.astype(np.int8)])
    check(target, "OneHot", [f[:5].astype(np.float16), np.array([3], I64), values], {"axis": 0})
    x = floats(2, 3, 5)
    for k in (None, np.array(-1, I64), np.array(2, I64), np.array(-2**62, I64)):
        for upper in (0, 1):
            check(target, "Trilu", [x] + ([] if k is None else [k]), {"upper": upper})
    s = np.arange(24, dtype=np.int32).reshape(4, 3, 2)
    check(target, "ReverseSequence", [s, np.array([4, 0, 2], I64)], {"batch_axis": 1,
                                                                     "time_axis": 0})
    check(target, "ReverseSequence", [s, np.array([1, 3, 2, 0], I64)], {"batch_axis": 0,
                                                                        "time_axis": 1})


# ---------------------------------------------------------------------------------------
# generate.py


def test_generators(target):
    v = Tensor(np.array([7], np.int16))
    check(target, "ConstantOfShape", [np.array([2, 3], I64)], {"value": v})
    check(target, "ConstantOfShape", [np.array([2, 0], I64)])
    check(target, "Range", [np.array(10, np.int32), np.array(-3, np.int32),
                            np.array(-3, np.int32)])
    check(target, "Range", [np.array(0.1, np.float16), np.array(3.0, np.float16),
                            np.array(0.3, np.float16)])
    check(target, "Range", [np.array(1.0, np.float64), np.array(1.25, np.float64),
                            np.array(0.1, np.float64)])
    for k in (-1, 0, 3, 100):
        check(target, "EyeLike", [np.zeros((3, 4), np.int32)],
              {"k": k, "dtype": DType.float32.onnx})


# ---------------------------------------------------------------------------------------
# resize.py


@pytest.mark.parametrize("attrs", [
    {"mode": "nearest"},
    {"mode": "nearest", "nearest_mode": "ceil", "coordinate_transformation_mode": "asymmetric"},
    {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
    {"mode": "linear", "antialias": 1},
    {"mode": "cubic", "exclude_outside": 1, "cubic_coeff_a": -0.5},
    {"mode": "cubic", "antialias": 1, "coordinate_transformation_mode": "half_pixel_symmetric"},
    {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize",
     "extrapolation_value": 9.0},
], ids=lambda a: "-".join(str(v) for v in a.values()))
def test_resize(target, attrs):
    x = floats(1, 2, 4, 5)
    roi = np.array([0, 0, 0.2, -0.1, 1, 1, 0.9, 1.3], np.float32)
    check(target, "Resize", [x, roi, np.array([1, 1, 1.5, 0.6], np.float32)], attrs, tol=1e-6)
    check(target, "Resize", [x, roi, None, np.array([1, 2, 3, 8], I64)], attrs, tol=1e-6)
    xi = (x * 50).astype(np.uint8)
    check(target, "Resize", [xi, roi, np.array([1, 1, 0.5, 2.2], np.float32)], attrs)


def test_resize_sizes_with_axes_and_policy(target):
    x = floats(2, 6, 4)
    check(target, "Resize", [x, None, None, np.array([5, 3], I64)],
          {"mode": "linear", "axes": [2, 1], "keep_aspect_ratio_policy": "not_larger"},
          tol=1e-6)


# ---------------------------------------------------------------------------------------
# what is not compiled


def test_data_dependent_ops_run_on_the_host():
    for name in ("NonZero", "Unique", "Compress"):
        assert get_op(name).host
    for name in ("Gather", "Slice", "Resize", "ScatterND", "Range"):
        assert not get_op(name).host and get_op(name).compute is not None


def test_random_ops_fail_cleanly():
    for name in ("RandomUniformLike", "RandomNormalLike", "Bernoulli"):
        with pytest.raises(UnsupportedError, match="no compute definition"):
            lower(name, [np.zeros((2, 2), np.float32)])
        assert not get_op(name).host
