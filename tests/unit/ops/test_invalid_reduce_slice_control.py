"""compiler/ops/reduce.py, pad_slice.py and control.py: invalid models are clean errors at
import/verify time (or, for run-time values the type relation cannot see, at run time),
never a crash in the numpy reference or a value that disagrees with its declared type."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model
from compiler.graph import interp
from compiler.graph.verifier import verify

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def model(node: onnx.NodeProto, inputs: list[tuple], *, opset: int = 18) -> onnx.ModelProto:
    """A one-node model over graph inputs given as (name, elem_type, shape)."""
    vis = [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs]
    outs = [helper.make_empty_tensor_value_info(o) for o in node.output]
    m = helper.make_model(helper.make_graph([node], "g", vis, outs),
                          opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def load(m: onnx.ModelProto):
    module = import_model(m)
    verify(module)
    return module


# -- Reduce ---------------------------------------------------------------------------------


def test_reduce_runtime_axes_must_not_repeat():
    # the type relation counts two reduced axes; [0, 0] would reduce only one
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)
    module = load(model(node, [("x", F, [3, 3, 5]), ("axes", I64, [2])]))
    x = np.zeros((3, 3, 5), np.float32)
    with pytest.raises(AnvilError, match=r"ReduceSum: axes \[0, 0\] repeat an axis"):
        interp.run(module, [x, np.array([0, 0], np.int64)])


# -- Slice, Pad, CenterCropPad ----------------------------------------------------------------


def test_slice_input_lengths_must_agree():
    node = helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])
    m = model(node, [("x", F, [20, 10, 5]), ("starts", I64, [3]), ("ends", I64, [3]),
                     ("axes", I64, [1])], opset=13)
    with pytest.raises(AnvilError, match="Slice: axes has 1 entries, starts has 3"):
        load(m)


def test_slice_runtime_lengths_must_agree():
    node = helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])
    m = model(node, [("x", F, [4, 4]), ("starts", I64, ["n"]), ("ends", I64, ["n"]),
                     ("axes", I64, ["m"])], opset=13)
    module = load(m)
    two, one = np.zeros(2, np.int64), np.zeros(1, np.int64)
    with pytest.raises(AnvilError, match="Slice: starts, ends, axes and steps have 2, 2, 1"):
        interp.run(module, [np.zeros((4, 4), np.float32), two, two, one])


def test_pad_pads_length_must_match_axes():
    node = helper.make_node("Pad", ["x", "pads"], ["y"])
    with pytest.raises(AnvilError, match="Pad: pads has 3 entries, expected 4"):
        load(model(node, [("x", F, [2, 3]), ("pads", I64, [3])]))


def test_center_crop_pad_runtime_shape_length_must_match_axes():
    node = helper.make_node("CenterCropPad", ["x", "shape"], ["y"])
    module = load(model(node, [("x", F, [2, 3]), ("shape", I64, ["n"])]))
    with pytest.raises(AnvilError, match="CenterCropPad: shape has 1 entries for 2 axes"):
        interp.run(module, [np.zeros((2, 3), np.float32), np.array([2], np.int64)])


# -- If, Loop, Scan ---------------------------------------------------------------------------


def _body(name: str, params: list[tuple], results: list[tuple],
          nodes: list[onnx.NodeProto]) -> onnx.GraphProto:
    return helper.make_graph(nodes, name,
                             [helper.make_tensor_value_info(*p) for p in params],
                             [helper.make_tensor_value_info(*r) for r in results])


def test_if_condition_must_be_bool():
    then_b = _body("then", [], [("a", F, [1])],
                   [helper.make_node("Constant", [], ["a"], value_floats=[1.0])])
    else_b = _body("else", [], [("b", F, [1])],
                   [helper.make_node("Constant", [], ["b"], value_floats=[0.0])])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then_b, else_branch=else_b)
    with pytest.raises(AnvilError, match="If: cond must be bool, got float32"):
        load(model(node, [("c", F, [])]))


def test_loop_carried_dtype_must_match_body():
    body = _body("body", [("i", I64, []), ("c", B, []), ("v", F, [2])],
                 [("c_out", B, []), ("v_out", F, [2])],
                 [helper.make_node("Identity", ["c"], ["c_out"]),
                  helper.make_node("Identity", ["v"], ["v_out"])])
    node = helper.make_node("Loop", ["m", "c", "v0"], ["y"], body=body)
    m = model(node, [("m", I64, []), ("c", B, []), ("v0", TensorProto.INT32, [2])])
    with pytest.raises(AnvilError, match="Loop: carried value 0 is int32, the body expects float"):
        load(m)


def _scan(num_scan_inputs: int, init: tuple, xs: tuple, **attrs) -> onnx.ModelProto:
    """Scan summing the slices of `xs` into the state `init` (float32[2] in the body)."""
    body = _body("body", [("s", F, [2]), ("x", F, [2])], [("s_out", F, [2]), ("y", F, [2])],
                 [helper.make_node("Add", ["s", "x"], ["s_out"]),
                  helper.make_node("Identity", ["s_out"], ["y"])])
    node = helper.make_node("Scan", ["init", "xs"], ["final", "ys"], body=body,
                            num_scan_inputs=num_scan_inputs, **attrs)
    return model(node, [("init", *init), ("xs", *xs)], opset=11)


def test_scan_valid():
    module = load(_scan(1, (F, [2]), (F, [3, 2])))
    xs = np.arange(6, dtype=np.float32).reshape(3, 2)
    final, ys = interp.run(module, [np.zeros(2, np.float32), xs])
    np.testing.assert_array_equal(final, xs.sum(0))
    np.testing.assert_array_equal(ys, np.cumsum(xs, 0))


@pytest.mark.parametrize("n, init, xs, attrs, match", [
    (0, (F, [2]), (F, [3, 2]), {}, r"num_scan_inputs=0 must be in \[1, 2\]"),
    (1, (TensorProto.INT32, [2]), (F, [3, 2]), {}, "state input 0 is int32, the body expects"),
    (1, (F, [2]), (F, []), {}, "scan input 0 must have rank >= 1"),
    (1, (F, [2]), (F, [3, 2]), {"scan_input_axes": [2]}, "axis 2 out of range for rank 2"),
    (1, (F, [2]), (F, [3, 2]), {"scan_input_axes": [0, 1]},
     "scan_input_axes has 2 entries, expected 1"),
    (1, (F, [2]), (F, [3, 2]), {"scan_output_directions": [2]},
     "scan_output_directions must hold 0"),
    (1, (F, [2]), (F, [3, 2]), {"scan_output_axes": [-3]}, "axis -3 out of range for rank 1"),
    (1, (F, [2]), (F, [3, 2, 1]), {}, "scan input 0 .* has rank 3, the body takes slices of"),
])
def test_scan_invalid(n, init, xs, attrs, match):
    with pytest.raises(AnvilError, match=f"Scan: {match}"):
        load(_scan(n, init, xs, **attrs))
