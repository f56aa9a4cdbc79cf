"""compiler/passes/graph/layout.py: convs to NCHW<b>c, transforms propagated and cancelled.

Structure (which ops moved, how many transforms are left), interpreter outputs before and
after, and compiled llvm outputs against onnxruntime on the original model."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.driver import compile
from compiler.frontend.onnx import import_model
from compiler.graph import interp
from compiler.graph.ir import Module
from compiler.graph.verifier import verify
from compiler.passes.base import get_pass
from compiler.passes.graph.layout import layout
from oracles.models import light_input, load_light, randomize_light_model

RNG = np.random.default_rng(0)
T = "anvil.LayoutTransform"
C = "anvil.ConvNCHWc"


class Net:
    """A small ONNX graph built node by node; initializers are random."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def node(self, op: str, ins: list[str], out: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, ins, [out], **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, out: str, k: int = 3, bias: bool = True,
             **attrs) -> str:
        w = self.const(f"{out}_w", RNG.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k))
        ins = [x, w] + ([self.const(f"{out}_bias", RNG.standard_normal(cout) * 0.1)]
                        if bias else [])
        if "auto_pad" not in attrs:
            attrs.setdefault("pads", [k // 2] * 4)
        return self.node("Conv", ins, out, **attrs)

    def model(self, *outs: str) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, "g", self.inputs,
                              [helper.make_empty_tensor_value_info(o) for o in outs],
                              initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        return m


def ops(module: Module) -> Counter:
    return Counter(getattr(b.expr, "op", "const") for b in module.main.body)


def run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def check(model: onnx.ModelProto, block: int = 8, llvm: bool = True) -> Module:
    """Run the pass; the result verifies, keeps params and results, and computes the same."""
    before = import_model(model)
    after = layout(before, block=block)
    verify(after)
    assert after.main.params == before.main.params
    assert [r.name for r in after.main.results] == [r.name for r in before.main.results]
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = RNG.standard_normal(shape).astype(np.float32)
    want = interp.run(before, [x])
    for g, w in zip(interp.run(after, [x]), want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * np.abs(w).max())
    if llvm:
        ref = run_ort(model, {"x": x})
        for g, w in zip(compile(after, "llvm").run([x]), ref, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * np.abs(w).max())
    return after


# ---------------------------------------------------------------------------------------


def test_registered():
    info = get_pass("layout")
    assert info is not None and info.level == "graph" and info.defaults() == {"block": 8}


def test_conv_relu_chain_has_two_transforms():
    n = Net((1, 8, 9, 9))
    y = n.node("Relu", [n.conv("x", 8, 16, "c1")], "r1")
    y = n.node("Relu", [n.conv(y, 16, 16, "c2", strides=[2, 2], bias=False)], "y")
    after = check(n.model(y))
    got = ops(after)
    assert got[T] == 2 and got[C] == 2 and got["Relu"] == 2 and got["Conv"] == 0
    body = after.main.body
    assert body[0].expr.op == T and body[-1].expr.op == T  # transforms only at the borders


def test_resnet_block_stays_blocked():
    n = Net((2, 16, 8, 8))
    y = n.node("Relu", [n.conv("x", 16, 16, "c1")], "r1")
    y = n.conv(y, 16, 16, "c2")
    y = n.node("Add", [y, "x"], "s")  # the shortcut is transformed in once, shared with c1
    y = n.node("Relu", [y], "y")
    after = check(n.model(y))
    assert ops(after)[T] == 2 and ops(after)["Add"] == 1


def test_blocked_operands_constants_and_activations():
    n = Net((1, 16, 6, 6))
    a = n.conv("x", 16, 16, "a")
    b = n.conv("x", 16, 16, "b", k=1)
    y = n.node("Mul", [a, b], "m")
    y = n.node("Sub", [y, n.const("chan", RNG.standard_normal((16, 1, 1)))], "sub")
    y = n.node("Clip", [y, n.const("lo", np.array(-1.0)), n.const("hi", np.array(1.5))], "cl")
    y = n.node("PRelu", [y, n.const("slope", RNG.uniform(0, 0.3, (16, 1, 1)))], "pr")
    y = n.node("LeakyRelu", [y], "lr", alpha=0.2)
    y = n.node("Sigmoid", [y], "y")
    after = check(n.model(y))
    assert ops(after)[T] == 2  # x in, y out


def test_batchnorm_and_concat_stay_blocked():
    n = Net((1, 8, 5, 5))
    a = n.conv("x", 8, 16, "a")
    c = [n.const(f"bn{i}", v) for i, v in enumerate(
        [RNG.uniform(0.5, 1.5, 16), RNG.standard_normal(16), RNG.standard_normal(16),
         RNG.uniform(0.5, 1.5, 16)])]
    a = n.node("BatchNormalization", [a] + c, "bn", epsilon=1e-3)
    b = n.conv("x", 8, 8, "b")
    y = n.node("Concat", [a, b], "cat", axis=1)
    y = n.node("Relu", [n.conv(y, 24, 8, "c")], "y")
    after = check(n.model(y))
    got = ops(after)
    assert got[T] == 2 and got["BatchNormalization"] == 0 and got["Concat"] == 1


def test_pool_keeps_transforms_around_it():
    n = Net((1, 8, 8, 8))
    y = n.node("MaxPool", [n.conv("x", 8, 8, "a")], "p", kernel_shape=[2, 2], strides=[2, 2])
    y = n.conv(y, 8, 8, "y")
    after = check(n.model(y))
    assert ops(after)[T] == 4 and ops(after)["MaxPool"] == 1


def test_left_alone():
    n = Net((1, 6, 7, 7))
    a = n.conv("x", 6, 16, "a")  # 6 input channels: not divisible by 8
    g = n.node("Conv", [a, n.const("gw", RNG.standard_normal((16, 8, 3, 3)))], "g", group=2,
               pads=[1, 1, 1, 1])
    n.inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, (16, 16, 1, 1)))
    d = n.node("Conv", [g, "w"], "d")  # weights not constant
    y = n.node("Relu", [d], "y")
    model = n.model(y)
    before = import_model(model)
    assert layout(before, block=8) == before
    assert ops(before)["Conv"] == 3


def test_block_argument_and_idempotence():
    n = Net((1, 12, 5, 5))
    y = n.node("Tanh", [n.conv("x", 12, 4, "a")], "y")
    after = check(n.model(y), block=4, llvm=False)
    assert ops(after)[T] == 2 and ops(after)[C] == 1
    assert after.main.body[0].expr.attr_dict["dst"] == "NCHW4c"
    assert layout(after, block=4) == after
    assert ops(layout(import_model(n.model(y)), block=8))[C] == 0  # 12 % 8 != 0


def test_auto_pad_becomes_explicit():
    n = Net((1, 8, 7, 6))
    y = n.conv("x", 8, 8, "y", auto_pad="SAME_UPPER", strides=[2, 2])
    after = check(n.model(y))
    (conv,) = [b.expr for b in after.main.body if getattr(b.expr, "op", "") == C]
    assert conv.attr_dict["pads"] == (1, 0, 1, 1)


# ---------------------------------------------------------------------------------------
# light models


def light(name: str) -> tuple[onnx.ModelProto, Module, Module, np.ndarray]:
    model = randomize_light_model(load_light(name)[0])
    before = import_model(model)
    after = layout(before, block=8)
    verify(after)
    return model, before, after, next(iter(light_input(model).values()))


@pytest.mark.parametrize("name, convs, converted, transforms", [
    ("resnet50", 53, 52, 2),  # the 3-channel stem stays NCHW
    ("squeezenet", 26, 25, 8),  # transforms around the three MaxPools and at the ends
])
def test_light_models(name, convs, converted, transforms):
    _, before, after, x = light(name)
    assert ops(before)["Conv"] == convs
    got = ops(after)
    assert (got[C], got["Conv"], got[T]) == (converted, convs - converted, transforms)
    want = interp.run(before, [x])[0]
    np.testing.assert_allclose(interp.run(after, [x])[0], want, rtol=1e-5,
                               atol=1e-5 * np.abs(want).max())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "squeezenet"])
def test_light_models_llvm_match_ort(name):
    model, _, after, x = light(name)
    (want,) = run_ort(model, {model.graph.input[0].name: x})
    got = compile(after, "llvm").run([x])[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())
