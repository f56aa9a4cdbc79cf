"""canonicalize: Gemm, Sum/Mean/Max/Min and static Flatten become core ops computing the same
values (bit for bit where the matrix products run the same BLAS call; within one float32
rounding of summation order where a constant operand was transposed in place)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import helper

from compiler.graph.interp import run
from tests.unit.passes.graph.corpus_check import apply, assert_same_outputs, gir, node_models
from tests.unit.passes.graph.fold_check import (
    check_light,
    check_rewrite,
    light_case,
    light_params,
    onnx_module,
    op_counts,
)

RNG = np.random.default_rng(5)
REWRITTEN = ("Gemm", "Sum", "Mean", "Max", "Min", "Flatten")
FLOAT_TYPES = [np.float32, np.float64, np.float16, ml_dtypes.bfloat16]


def rand(dtype, *shape: int) -> np.ndarray:
    if np.dtype(dtype).kind in "iu":
        return RNG.integers(-50, 50, shape).astype(dtype)
    return RNG.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("alpha,beta,c_shape", [(1.0, 1.0, None), (1.0, 1.0, (4,)),
                                                (0.5, 2.0, (3, 4)), (3.0, 0.0, (1, 4)),
                                                (1.0, -1.5, (3, 1)), (2.0, 1.0, ())])
def test_gemm_inputs_exact(dtype, trans_a: int, trans_b: int, alpha: float, beta: float,
                           c_shape) -> None:
    a = rand(dtype, *((5, 3) if trans_a else (3, 5)))
    b = rand(dtype, *((4, 5) if trans_b else (5, 4)))
    inputs = {"a": a, "b": b}
    if c_shape is not None:
        inputs["c"] = rand(dtype, *c_shape)
    node = helper.make_node("Gemm", list(inputs), ["y"], transA=trans_a, transB=trans_b,
                            alpha=alpha, beta=beta)
    m = onnx_module([node], inputs, ["y"], {})
    out = apply(m, "canonicalize")
    counts = op_counts(out)
    assert counts["Gemm"] == 0 and counts["MatMul"] == 1
    assert counts["Transpose"] == trans_a + trans_b
    assert counts["Mul"] == (alpha != 1) + (c_shape is not None and beta not in (0, 1))
    assert counts["Add"] == (c_shape is not None and beta != 0)
    assert_same_outputs(m, out, list(inputs.values()))


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_gemm_constant_operands(dtype, trans_b: int) -> None:
    a = rand(dtype, 3, 5)
    inits = {"b": rand(dtype, *((4, 5) if trans_b else (5, 4))), "c": rand(dtype, 4)}
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], transB=trans_b, alpha=0.25,
                            beta=3.0)
    m = onnx_module([node], {"a": a}, ["y"], inits)
    out = apply(m, "canonicalize")
    counts = op_counts(out)
    assert "Transpose" not in counts and counts["MatMul"] == 1
    assert counts["Mul"] == 1  # alpha; beta pre-scales the constant C
    check_rewrite(m, out, {"a": a}, rtol=1e-6, scale=1e-6)


def test_integer_gemm() -> None:
    a, b, c = rand(np.int32, 3, 5), rand(np.int32, 5, 4), rand(np.int32, 4)
    plain = helper.make_node("Gemm", ["a", "b", "c"], ["y"])
    scaled = helper.make_node("Gemm", ["a", "b", "c"], ["z"], beta=2.0)
    m = onnx_module([plain, scaled], {"a": a, "b": b, "c": c}, ["y", "z"], {})
    out = apply(m, "canonicalize")
    assert op_counts(out) == {"MatMul": 1, "Add": 1, "Gemm": 1}  # beta != 1 runs in float64
    assert_same_outputs(m, out, [a, b, c])


VARIADIC_SHAPES = [(2, 3), (3,), (1, 1), (2, 1), (3,)]
VARIADIC = [(op, dtype) for op in ("Sum", "Mean", "Max", "Min")
            for dtype in FLOAT_TYPES + ([np.int32, np.uint8] if op in ("Max", "Min") else [])]


@pytest.mark.parametrize("op,dtype", VARIADIC)
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_variadic_exact(op: str, dtype, n: int) -> None:
    inputs = {f"x{i}": rand(dtype, *VARIADIC_SHAPES[i]) for i in range(n)}
    if np.dtype(dtype).kind == "f" or dtype == ml_dtypes.bfloat16:
        inputs["x0"].flat[0] = np.nan
        inputs[f"x{n - 1}"].flat[-1] = np.inf
    m = onnx_module([helper.make_node(op, list(inputs), ["y"])], inputs, ["y"], {})
    out = apply(m, "canonicalize")
    counts = op_counts(out)
    if n == 1:
        assert not counts and out.main.results == m.main.params
    elif n == 2 and op in ("Max", "Min"):
        assert out == m
    else:
        binary = "Add" if op in ("Sum", "Mean") else op
        assert counts[binary] == n - 1 and counts["Div"] == (op == "Mean")
        assert op not in counts or op in ("Max", "Min")
    assert_same_outputs(m, out, list(inputs.values()))


@pytest.mark.parametrize("shape,axis", [((2, 3, 4), 1), ((2, 3, 4), 0), ((2, 3, 4), 3),
                                        ((2, 3, 4), -1), ((2, 0, 4), 2), ((2, 3, 0), 1),
                                        ((5,), 1)])
def test_static_flatten_becomes_reshape(shape: tuple[int, ...], axis: int) -> None:
    x = rand(np.float32, *shape)
    m = onnx_module([helper.make_node("Flatten", ["x"], ["y"], axis=axis)], {"x": x}, ["y"], {})
    out = apply(m, "canonicalize")
    assert op_counts(out) == {"Reshape": 1}
    assert_same_outputs(m, out, [x])


def test_symbolic_flatten_and_others_stay() -> None:
    x = rand(np.float32, 2, 3, 4)
    nodes = [helper.make_node("Flatten", ["x"], ["y"]), helper.make_node("Softmax", ["y"], ["z"]),
             helper.make_node("Sub", ["y", "k"], ["w"])]
    m = onnx_module(nodes, {"x": x}, ["z", "w"], {"k": np.float32(2.0)})
    assert op_counts(apply(m, "canonicalize")) == {"Reshape": 1, "Softmax": 1, "Sub": 1}
    g = gir("""func @main(%x: float32[N, 3, 4]) {
  %y = Flatten(%x) {axis=1} : float32[N, 12]
  %z = Softmax(%y) {axis=-1} : float32[N, 12]
  return %z
}""")
    assert apply(g, "canonicalize") == g


def test_node_models() -> None:
    """Every node-test model with a rewritten op computes the same on its inputs (exactly,
    bar summation order in products with a transposed constant)."""
    changed = 0
    for name, module, inputs in node_models():
        if not {b.expr.op for b in module.main.body if hasattr(b.expr, "op")} & set(REWRITTEN):
            continue
        out = apply(module, "canonicalize")
        if out == module:
            continue
        changed += 1
        want, got = run(module, inputs), run(out, inputs)
        for w, g in zip(want, got, strict=True):
            assert w.dtype == g.dtype and w.shape == g.shape, name
            if w.dtype.kind in "iub":
                np.testing.assert_array_equal(w, g, err_msg=name)
            else:
                w64, g64 = w.astype(np.float64), g.astype(np.float64)
                atol = 1e-6 * float(np.abs(w64[np.isfinite(w64)]).max(initial=0.0))
                np.testing.assert_allclose(g64, w64, rtol=1e-6, atol=atol, err_msg=name)
    assert changed > 50


@pytest.mark.parametrize("name", light_params())
def test_light_model(name: str) -> None:
    module = light_case(name)[0]
    out = apply(module, "canonicalize")
    counts = op_counts(out)
    assert not {"Gemm", "Sum", "Mean"} & set(counts)
    check_light(name, out)
