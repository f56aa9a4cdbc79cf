"""compiler/ops/layout.py: anvil.LayoutTransform and anvil.ConvNCHWc. References against
index formulas and onnxruntime Conv; computes lowered to llvm against the references; clean
type errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from compiler.driver import compile
from compiler.dtypes import DType
from compiler.errors import AnvilError
from compiler.graph import interp
from compiler.graph.ir import Binding, Call, Const, Function, Module, Tensor, TensorType, Var
from compiler.graph.ir import make_attrs as attrs_of
from compiler.graph.verifier import verify
from compiler.ops.layout import pack_bias, pack_weight
from compiler.passes.graph_util import infer

RNG = np.random.default_rng(0)


def f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def one_op(op: str, x: np.ndarray, consts: list[np.ndarray | None], attrs: dict) -> Module:
    """main(%x) = op(%x, *consts) with the constants as Const bindings."""
    xv = Var("x", TensorType(x.shape, DType.from_np(x.dtype)))
    body, args, known = [], [xv], {}
    for i, c in enumerate(consts):
        if c is None:
            args.append(None)
            continue
        v = Var(f"c{i}", TensorType(c.shape, DType.from_np(c.dtype)))
        body.append(Binding((v,), Const(Tensor(c))))
        args.append(v)
        known[v] = c
    a = {k: tuple(v) if isinstance(v, list) else v for k, v in attrs.items()}
    (t,) = infer(op, a, args, known, 1)
    y = Var("y", t)
    body.append(Binding((y,), Call(op, tuple(args), attrs_of(a))))
    module = Module((Function("main", (xv,), tuple(body), (y,)),))
    verify(module)
    return module


def ort_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, attrs: dict) -> np.ndarray:
    names = ["x", "w"] + (["b"] if b is not None else [])
    node = helper.make_node("Conv", names, ["y"], **attrs)
    inits = [numpy_helper.from_array(w, "w")] + ([numpy_helper.from_array(b, "b")]
                                                  if b is not None else [])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, x.shape)],
                              [helper.make_empty_tensor_value_info("y")], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def to_blocked(x: np.ndarray, b: int) -> np.ndarray:
    """NCHW -> NCHW{b}c by the defining index formula (independent of the op's reshapes)."""
    n, c, h, w = x.shape
    out = np.empty((n, c // b, h, w, b), x.dtype)
    for ch in range(c):
        out[:, ch // b, :, :, ch % b] = x[:, ch]
    return out


def from_blocked(y: np.ndarray) -> np.ndarray:
    n, cb, h, w, b = y.shape
    out = np.empty((n, cb * b, h, w), y.dtype)
    for ch in range(cb * b):
        out[:, ch] = y[:, ch // b, :, :, ch % b]
    return out


# ---------------------------------------------------------------------------------------
# LayoutTransform


@pytest.mark.parametrize("block", [1, 4, 8])
def test_transform_ref_and_llvm(block):
    x = f32(2, 16, 3, 5)
    fwd = one_op("anvil.LayoutTransform", x, [], {"src": "NCHW", "dst": f"NCHW{block}c"})
    want = to_blocked(x, block)
    np.testing.assert_array_equal(interp.run(fwd, [x])[0], want)
    np.testing.assert_array_equal(compile(fwd, "llvm").run([x])[0], want)
    back = one_op("anvil.LayoutTransform", want, [], {"src": f"NCHW{block}c", "dst": "NCHW"})
    np.testing.assert_array_equal(interp.run(back, [want])[0], x)
    np.testing.assert_array_equal(compile(back, "llvm").run([want])[0], x)


@pytest.mark.parametrize("shape, attrs, message", [
    ((1, 6, 2, 2), {"src": "NCHW", "dst": "NCHW4c"}, "channels 6 not divisible by block 4"),
    ((1, 8, 2, 2), {"src": "NCHW", "dst": "NHWC"}, "unknown layout 'NHWC'"),
    ((1, 8, 2, 2), {"src": "NCHW", "dst": "NCHW"}, "one side must be NCHW"),
    ((1, 8, 2, 2, 4), {"src": "NCHW8c", "dst": "NCHW"}, "inner block of NCHW8c"),
    ((1, 8, 2), {"src": "NCHW", "dst": "NCHW4c"}, "rank"),
])
def test_transform_type_errors(shape, attrs, message):
    with pytest.raises(AnvilError, match=message) as e:
        one_op("anvil.LayoutTransform", np.zeros(shape, np.float32), [], attrs)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------
# ConvNCHWc


CONVS = [
    (1, 8, 7, 7, 16, 3, 3, {"pads": [1, 1, 1, 1]}, 8, 8, True),
    (2, 16, 9, 8, 8, 3, 3, {"pads": [0, 1, 2, 1], "strides": [2, 1]}, 8, 4, False),
    (1, 4, 10, 10, 8, 3, 2, {"dilations": [2, 1], "pads": [2, 0, 2, 1]}, 2, 8, True),
    (1, 8, 5, 6, 8, 1, 1, {}, 4, 4, True),
]


def conv_case(case):
    n, c, h, w, o, kh, kw, attrs, bi, bo, with_bias = case
    x, wt = f32(n, c, h, w), f32(o, c, kh, kw) * 0.3
    b = f32(o) if with_bias else None
    full = {"strides": [1, 1], "dilations": [1, 1], "pads": [0, 0, 0, 0], **attrs,
            "group": 1, "block_in": bi, "block_out": bo}
    consts = [pack_weight(wt, bi, bo), pack_bias(b, bo) if b is not None else None]
    while consts and consts[-1] is None:
        consts.pop()
    module = one_op("anvil.ConvNCHWc", to_blocked(x, bi), consts, full)
    return module, x, wt, b, attrs, bi


@pytest.mark.parametrize("case", CONVS)
def test_conv_ref_matches_ort(case):
    module, x, wt, b, attrs, bi = conv_case(case)
    got = from_blocked(interp.run(module, [to_blocked(x, bi)])[0])
    np.testing.assert_allclose(got, ort_conv(x, wt, b, attrs), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CONVS)
def test_conv_llvm_matches_ref(case):
    module, x, *_, bi = conv_case(case)
    xb = to_blocked(x, bi)
    want = interp.run(module, [xb])[0]
    got = compile(module, "llvm").run([xb])[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_conv_float64():
    x, wt = RNG.standard_normal((1, 4, 5, 5)), RNG.standard_normal((4, 4, 3, 3))
    module = one_op("anvil.ConvNCHWc", to_blocked(x, 2), [pack_weight(wt, 2, 4)],
                    {"pads": [1, 1, 1, 1], "block_in": 2, "block_out": 4})
    got = interp.run(module, [to_blocked(x, 2)])[0]
    assert got.dtype == np.float64
    want = ort_conv(x.astype(np.float32), wt.astype(np.float32), None,
                    {"pads": [1, 1, 1, 1]})
    np.testing.assert_allclose(from_blocked(got), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(compile(module, "llvm").run([to_blocked(x, 2)])[0], got,
                               rtol=1e-12)


@pytest.mark.parametrize("xs, ws, bs, attrs, message", [
    ((1, 2, 4, 4, 4), (2, 2, 3, 3, 4, 8), None, {"block_in": 8, "block_out": 8},
     "data inner block != block_in"),
    ((1, 2, 4, 4, 4), (2, 3, 3, 3, 4, 8), None, {"block_in": 4, "block_out": 8},
     "weight.shape\\[1\\] != data channel blocks"),
    ((1, 2, 4, 4, 4), (2, 2, 3, 3, 4, 8), (2, 4), {"block_in": 4, "block_out": 8},
     "bias.shape\\[1\\] != block_out"),
    ((1, 2, 4, 4, 4), (2, 2, 3, 3, 4, 8), None, {"block_in": 4, "block_out": 8, "group": 2},
     "group 2 is not supported"),
    ((1, 2, 4, 4), (2, 2, 3, 3, 4, 8), None, {"block_in": 4, "block_out": 8}, "rank"),
])
def test_conv_type_errors(xs, ws, bs, attrs, message):
    consts = [np.zeros(ws, np.float32)] + ([np.zeros(bs, np.float32)] if bs else [])
    with pytest.raises(AnvilError, match=message) as e:
        one_op("anvil.ConvNCHWc", np.zeros(xs, np.float32), consts, attrs)
    assert "\n" not in str(e.value)
