"""Bad models give one clean AnvilError line naming the problem (and the node)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from compiler.backend import prepare
from compiler.errors import AnvilError, ExecutionError, ModelError, UnsupportedError
from compiler.frontend.onnx import import_model, load


def _model(nodes, inputs, outputs, opset=17, inits=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def _one_line(err: Exception) -> str:
    s = str(err)
    assert "\n" not in s and s
    return s


def test_truncated_file(tmp_path):
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [2])], [_vi("y", [2])])
    data = m.SerializeToString()
    p = tmp_path / "t.onnx"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError) as e:
        load(p)
    assert "t.onnx" in _one_line(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        load(tmp_path / "nope.onnx")


def test_unknown_op_names_node():
    m = _model([helper.make_node("FrobnicateX", ["x"], ["y"], name="n7")], [_vi("x", [2])],
               [_vi("y", [2])])
    with pytest.raises(UnsupportedError) as e:
        import_model(m)
    msg = _one_line(e.value)
    assert "FrobnicateX" in msg and "n7" in msg


def test_undefined_input():
    m = _model([helper.make_node("Relu", ["nope"], ["y"])], [_vi("x", [2])], [_vi("y", [2])])
    with pytest.raises(ModelError, match="'nope' is not defined"):
        import_model(m)


def test_unknown_attribute():
    m = _model([helper.make_node("Relu", ["x"], ["y"], bogus=3)], [_vi("x", [2])],
               [_vi("y", [2])])
    with pytest.raises(ModelError, match="no attribute 'bogus'"):
        import_model(m)


def test_too_old_and_too_new_opset():
    mk = lambda v: _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [2])],  # noqa: E731
                          [_vi("y", [2])], opset=v)
    import_model(mk(6))  # Relu has not changed since opset 6: fine
    with pytest.raises(UnsupportedError, match="older than the oldest"):
        import_model(mk(5))  # Relu-1 had consumed_inputs
    with pytest.raises(UnsupportedError, match="newer"):
        import_model(mk(onnx.defs.onnx_opset_version() + 1))


def test_wrong_rank_input_at_run():
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [2, 3])], [_vi("y", [2, 3])])
    rep = prepare(m)
    with pytest.raises(ExecutionError) as e:
        rep.run([np.zeros((2,), np.float32)])
    assert "rank" in _one_line(e.value)
    with pytest.raises(ExecutionError, match="dtype"):
        rep.run([np.zeros((2, 3), np.int32)])
    with pytest.raises(ExecutionError, match="takes 1 inputs"):
        rep.run([])


def test_unknown_target():
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [2])], [_vi("y", [2])])
    with pytest.raises(AnvilError, match="unknown target 'tpu'"):
        prepare(m, target="tpu")


def test_symbolic_dims_stay_symbolic():
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", ["batch", 3])],
               [_vi("y", ["batch", 3])])
    fn = import_model(m).main
    assert fn.params[0].type.shape == ("batch", 3)
    assert fn.results[0].type.shape == ("batch", 3)
    (y,) = prepare(m).run([np.array([[-1, 2, -3]] * 4, np.float32)])
    assert y.shape == (4, 3) and (y >= 0).all()
