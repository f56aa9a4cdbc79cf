"""fuse_ops: which calls group together, and that a group computes what its calls did, in
the interpreter, compiled as one kernel, and against onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.driver import compile as compile_model
from compiler.frontend.onnx import import_model
from compiler.graph import interp
from compiler.graph.ir import Call, Module
from compiler.graph.parser import parse
from compiler.graph.printer import print_module
from compiler.graph.verifier import verify
from compiler.ops.internal import FUSED
from compiler.passes import PassManager
from oracles.reference import run_onnxruntime

RNG = np.random.default_rng(0)


def _model(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _w(*shape) -> np.ndarray:
    return (RNG.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)


def _ops(m: Module) -> list[str]:
    return [b.expr.op for b in m.main.body if isinstance(b.expr, Call)]


def _groups(m: Module) -> list[list[str]]:
    return [[x.expr.op for x in b.expr.attr_dict["body"].body if isinstance(x.expr, Call)]
            for b in m.main.body if isinstance(b.expr, Call) and b.expr.op == FUSED]


def _fuse(m: Module) -> Module:
    out = PassManager("fuse_ops").run(m)
    verify(out)
    return out


def _conv_block(shape=(1, 4, 8, 8)) -> onnx.ModelProto:
    c = shape[1]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c", "shift"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Conv", ["r", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["y"]),
    ]
    inits = [("w", _w(c, c, 3, 3)), ("b", _w(c, 1)[:, 0]), ("shift", _w(c, 1, 1)),
             ("w2", _w(c, c, 3, 3))]
    return _model(nodes, [("x", list(shape))], ["y"], inits)


def test_conv_epilogue_fuses_and_matches_everywhere() -> None:
    model = _conv_block()
    m = import_model(model)
    fused = _fuse(m)
    assert _groups(fused) == [["Conv", "Add", "Relu"], ["Conv", "Relu"]]
    x = RNG.standard_normal((1, 4, 8, 8)).astype(np.float32)
    ref = interp.run(m, [x])[0]
    np.testing.assert_array_equal(interp.run(fused, [x])[0], ref)
    plain = compile_model(m, "llvm")
    one = compile_model(fused, "llvm")
    got = one.run([x])[0]
    np.testing.assert_array_equal(got, plain.run([x])[0])  # same arithmetic, one kernel
    assert (one.stats.launches, plain.stats.launches) == (2, 5)
    np.testing.assert_allclose(got, run_onnxruntime(model, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_a_value_used_twice_is_not_absorbed() -> None:
    nodes = [helper.make_node("Exp", ["x"], ["e"]), helper.make_node("Neg", ["e"], ["n"]),
             helper.make_node("Add", ["e", "n"], ["y"])]
    m = import_model(_model(nodes, [("x", [2, 3])], ["y"]))
    fused = _fuse(m)
    # Exp's value feeds two calls: it stays its own kernel; Neg joins Add
    assert _ops(fused) == ["Exp", FUSED]
    assert _groups(fused) == [["Neg", "Add"]]
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(interp.run(fused, [x])[0], interp.run(m, [x])[0])


def test_injective_producers_join_a_reduction_but_two_reductions_do_not_merge() -> None:
    nodes = [helper.make_node("Exp", ["x"], ["e"]),
             helper.make_node("ReduceSum", ["e", "axes"], ["s"], keepdims=1),
             helper.make_node("Sqrt", ["s"], ["q"]),
             helper.make_node("ReduceMax", ["q", "axes0"], ["y"], keepdims=0)]
    inits = [("axes", np.array([1], np.int64)), ("axes0", np.array([0], np.int64))]
    model = _model(nodes, [("x", [3, 5])], ["y"], inits, opset=18)
    m = import_model(model)
    fused = _fuse(m)
    assert _groups(fused) == [["Exp", "ReduceSum", "Sqrt"]]
    assert _ops(fused) == [FUSED, "ReduceMax"]
    x = RNG.standard_normal((3, 5)).astype(np.float32)
    got = compile_model(fused, "llvm").run([x])[0]
    np.testing.assert_allclose(got, run_onnxruntime(model, {"x": x})[0], rtol=1e-6)


def test_shape_inputs_must_be_constants() -> None:
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Reshape", ["r", "s"], ["y"])]
    m = import_model(_model(nodes, [("x", [2, 3])], ["y"]))
    assert FUSED not in _ops(_fuse(m))  # the Reshape's shape is computed at run time
    nodes[0] = helper.make_node("Neg", ["x"], ["n"])
    nodes[1] = helper.make_node("Relu", ["n"], ["r"])
    model = _model(nodes[:2] + [helper.make_node("Reshape", ["r", "s"], ["y"])],
                   [("x", [2, 3])], ["y"], [("s", np.array([3, 2], np.int64))])
    fused = _fuse(import_model(model))
    assert _groups(fused) == [["Neg", "Relu", "Reshape"]]
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(compile_model(fused, "llvm").run([x])[0],
                                  run_onnxruntime(model, {"x": x})[0])


def test_symbolic_shapes_are_left_alone() -> None:
    nodes = [helper.make_node("Neg", ["x"], ["n"]), helper.make_node("Relu", ["n"], ["y"])]
    m = import_model(_model(nodes, [("x", ["N", 3])], ["y"]))
    assert _ops(_fuse(m)) == ["Neg", "Relu"]


def test_identical_groups_share_one_kernel() -> None:
    nodes = []
    prev = "x"
    for k in range(3):
        nodes += [helper.make_node("Mul", [prev, "s"], [f"m{k}"]),
                  helper.make_node("Tanh", [f"m{k}"], [f"t{k}"]),
                  helper.make_node("Transpose", [f"t{k}"], [f"y{k}"], perm=[1, 0])]
        prev = f"y{k}"
    model = _model(nodes, [("x", [4, 4])], [prev], [("s", np.float32(0.5))])
    fused = _fuse(import_model(model))
    assert len(_groups(fused)) == 1  # a chain of injective ops is one group
    assert _groups(fused)[0] == ["Mul", "Tanh", "Transpose"] * 3
    exe = compile_model(fused, "llvm")
    x = RNG.standard_normal((4, 4)).astype(np.float32)
    np.testing.assert_allclose(exe.run([x])[0], run_onnxruntime(model, {"x": x})[0],
                               rtol=1e-6)
    assert exe.stats.launches == 1


def test_repeated_blocks_reuse_the_kernel() -> None:
    c = 4
    nodes, inits, prev = [], [], "x"
    for k in range(3):
        nodes += [helper.make_node("Conv", [prev, f"w{k}"], [f"c{k}"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{k}"], [f"r{k}"])]
        inits.append((f"w{k}", _w(c, c, 3, 3)))
        prev = f"r{k}"
    model = _model(nodes, [("x", [1, c, 6, 6])], [prev], inits)
    exe = compile_model(_fuse(import_model(model)), "llvm")
    x = RNG.standard_normal((1, c, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(exe.run([x])[0], run_onnxruntime(model, {"x": x})[0],
                               rtol=1e-5, atol=1e-6)
    # weights are kernel arguments, so the three groups are one kernel
    assert (exe.stats.launches, exe.stats.kernels) == (3, 1)


def test_fused_module_prints_and_parses() -> None:
    fused = _fuse(import_model(_conv_block()))
    text = print_module(fused)
    assert "anvil.Fused" in text and "body=" in text
    assert parse(text) == fused


@pytest.mark.parametrize("name", ["squeezenet", "shufflenet"])
def test_light_models(name: str) -> None:
    from oracles.models import light_input, load_light, randomize_light_model

    model = randomize_light_model(load_light(name)[0])
    m = import_model(model)
    fused = _fuse(m)
    assert len(_groups(fused)) >= 10
    x = light_input(model)
    exe0, exe1 = compile_model(m, "llvm"), compile_model(fused, "llvm")
    args = list(x.values())
    ref = exe0.run(args)[0]
    np.testing.assert_array_equal(exe1.run(args)[0], ref)
    assert exe1.stats.launches < exe0.stats.launches


def test_symbolic_models_are_specialised_per_input_shape() -> None:
    model = onnx.load(str(Path(__file__).resolve().parents[4] / "corpus" / "models" /
                          "tiny_cnn.onnx"))
    exe = compile_model(model, "llvm", opt_level=2)
    assert not exe.module.main.params[0].type.is_static  # N stays symbolic until run
    for n in (1, 3, 1):
        x = RNG.standard_normal((n, 3, 32, 32)).astype(np.float32)
        got = exe.run([x])[0]
        np.testing.assert_allclose(got, run_onnxruntime(model, {"x": x})[0], rtol=1e-5,
                                   atol=1e-5)
    assert len(exe.specialized) == 2  # one per input-shape signature, reused for N=1
    for sub in exe.specialized.values():
        assert sub.module.main.params[0].type.is_static
        assert FUSED in _ops(sub.module) and "BatchNormalization" not in _ops(sub.module)
    assert exe.stats.launches < 9  # the fused, specialised kernels ran
