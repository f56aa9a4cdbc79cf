"""compiler/ops/elementwise.py: type-relation errors, references against onnxruntime and
hand-computed integer semantics (Div, Mod, Pow, BitShift), opset upgrades of Clip/Dropout."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError

RNG = np.random.default_rng(0)


def one_node(op: str, inputs: list[np.ndarray], attrs: dict | None = None, *, opset: int = 22,
             n_out: int = 1, in_types: list[TensorProto.DataType] | None = None,
             in_shapes: list | None = None) -> onnx.ModelProto:
    names = [f"x{i}" for i in range(len(inputs))]
    node = helper.make_node(op, names, [f"y{k}" for k in range(n_out)], **(attrs or {}))
    vis = [
        helper.make_tensor_value_info(
            n, in_types[i] if in_types else DType.from_np(a.dtype).onnx,
            in_shapes[i] if in_shapes else a.shape)
        for i, (n, a) in enumerate(zip(names, inputs, strict=True))
    ]
    outs = [helper.make_empty_tensor_value_info(f"y{k}") for k in range(n_out)]
    model = helper.make_model(helper.make_graph([node], "g", vis, outs),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def anvil(model: onnx.ModelProto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return list(prepare(model).run(inputs))


def onnxruntime(model: onnx.ModelProto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {f"x{i}": a for i, a in enumerate(inputs)})


def check_against_ort(op: str, inputs: list[np.ndarray], attrs: dict | None = None,
                      opset: int = 22, n_out: int = 1, rtol: float = 1e-5) -> None:
    model = one_node(op, inputs, attrs, opset=opset, n_out=n_out)
    want, got = onnxruntime(model, inputs), anvil(model, inputs)
    for w, g in zip(want, got, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        if w.dtype.kind in "biu":
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-6, equal_nan=True)


def rand(dtype, shape=(3, 4)) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return (RNG.standard_normal(shape) * 3).astype(dtype)
    lo = 0 if np.dtype(dtype).kind == "u" else -100
    return RNG.integers(lo, 100, size=shape).astype(dtype)


def import_error(model: onnx.ModelProto) -> str:
    with pytest.raises(AnvilError) as e:
        prepare(model)
    return str(e.value)


# ---------------------------------------------------------------------------------------
# References against onnxruntime


@pytest.mark.parametrize("op", ["Abs", "Sqrt", "Exp", "Log", "Tanh", "Erf", "Round", "Sign",
                                "Atan", "Cosh", "Reciprocal", "Floor", "Neg"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_unary_float_matches_ort(op, dtype):
    if dtype != np.float32 and op in ("Erf", "Atan", "Cosh"):
        pytest.skip("no onnxruntime kernel")
    check_against_ort(op, [rand(dtype)], rtol=1e-3 if dtype == np.float16 else 1e-6)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Equal", "Greater",
                                "LessOrEqual"])
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int32, np.uint32, np.int64])
def test_binary_matches_ort(op, dtype):
    a, b = rand(dtype, (2, 3, 4)), rand(dtype, (3, 1))
    if op == "Div" and b.dtype.kind in "iu":
        b[b == 0] = 7
    check_against_ort(op, [a, b])


@pytest.mark.parametrize("fmod", [0, 1])
@pytest.mark.parametrize("dtype", [np.int32, np.int8, np.uint8, np.float32])
def test_mod_matches_ort(fmod, dtype):
    if dtype == np.float32 and fmod == 0:
        pytest.skip("onnxruntime implements Mod fmod=0 for integers only")
    a, b = rand(dtype), rand(dtype, (4,))
    b[b == 0] = 3
    check_against_ort("Mod", [a, b], {"fmod": fmod})


@pytest.mark.parametrize("base,exp", [(np.float32, np.float32), (np.float32, np.int64),
                                      (np.int64, np.int64), (np.int32, np.float32)])
def test_pow_matches_ort(base, exp):
    x = np.abs(rand(base)).astype(base) % 7 if np.dtype(base).kind == "i" else rand(base)
    y = (np.abs(rand(exp, (4,))) % 4).astype(exp)
    check_against_ort("Pow", [x, y])


@pytest.mark.parametrize("op", ["Sum", "Mean", "Max", "Min"])
def test_variadic_broadcasts_n_inputs(op):
    xs = [rand(np.float32, s) for s in [(2, 1, 4), (3, 1), (4,)]]
    check_against_ort(op, xs)


def test_where_and_clip_match_ort():
    c = RNG.random((3, 4)) > 0.5
    check_against_ort("Where", [c, rand(np.float32, (4,)), rand(np.float32, (3, 1))])
    x = rand(np.float32)
    check_against_ort("Clip", [x, np.array(-1.0, np.float32), np.array(2.0, np.float32)])
    # min > max: every element becomes max
    check_against_ort("Clip", [x, np.array(2.0, np.float32), np.array(-1.0, np.float32)])


def test_bitwise_and_logic_match_ort():
    a, b = rand(np.int16), rand(np.int16, (4,))
    for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
        check_against_ort(op, [a, b])
    check_against_ort("BitwiseNot", [a])
    p, q = RNG.random((3, 4)) > 0.5, RNG.random((4,)) > 0.5
    for op in ("And", "Or", "Xor"):
        check_against_ort(op, [p, q])
    check_against_ort("Not", [p])


def test_isinf_isnan_attrs():
    x = np.array([np.inf, -np.inf, np.nan, 1.0], dtype=np.float32)
    check_against_ort("IsInf", [x], {"detect_negative": 0})
    check_against_ort("IsNaN", [x])


# ---------------------------------------------------------------------------------------
# Integer semantics, by hand


def run1(op, inputs, attrs=None, **kw) -> np.ndarray:
    return anvil(one_node(op, inputs, attrs, **kw), inputs)[0]


def test_int_div_truncates_toward_zero():
    a = np.array([-7, 7, -7, 7, -8], dtype=np.int32)
    b = np.array([2, -2, -2, 2, 3], dtype=np.int32)
    np.testing.assert_array_equal(run1("Div", [a, b]), [-3, -3, 3, 3, -2])


def test_int_mod_sign_rules():
    a = np.array([-7, 7, -7, 7], dtype=np.int64)
    b = np.array([2, -2, -2, 2], dtype=np.int64)
    np.testing.assert_array_equal(run1("Mod", [a, b]), [1, -1, -1, 1])  # sign of divisor
    np.testing.assert_array_equal(run1("Mod", [a, b], {"fmod": 1}), [-1, 1, -1, 1])  # of a


def test_float_mod_fmod0_uses_floor():
    a = np.array([-7.5, 7.5, 0.0], dtype=np.float32)
    b = np.array([2.0, -2.0, -3.0], dtype=np.float32)
    got = run1("Mod", [a, b])
    np.testing.assert_array_equal(got, [0.5, -0.5, -0.0])
    assert np.signbit(got[2])


def test_int_pow_wraps_and_negative_exponents():
    x = np.array([3, 2, -1, 1, 5], dtype=np.int32)
    y = np.array([2, 31, -3, -4, -1], dtype=np.int64)
    np.testing.assert_array_equal(run1("Pow", [x, y]), [9, -(2**31), -1, 1, 0])
    assert run1("Pow", [x, y]).dtype == np.int32  # base dtype


def test_bitshift_signed_and_out_of_range_amounts():
    x = np.array([-8, -8, 5, 64, 1, -1], dtype=np.int8)
    y = np.array([1, 9, 8, -1, 7, 3], dtype=np.int8)
    np.testing.assert_array_equal(run1("BitShift", [x, y], {"direction": "RIGHT"}, opset=28),
                                  [-4, -1, 0, 0, 0, -1])
    np.testing.assert_array_equal(run1("BitShift", [x, y], {"direction": "LEFT"}, opset=28),
                                  [-16, 0, 0, 0, -128, -8])


def test_mixed_dtype_pow_keeps_base_dtype():
    x = np.array([1.5, 2.0], dtype=np.float16)
    y = np.array([2, 3], dtype=np.int32)
    got = run1("Pow", [x, y])
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, np.array([2.25, 8.0], dtype=np.float16))


# ---------------------------------------------------------------------------------------
# Opset upgrades


def test_clip_before_opset_11_takes_attributes():
    x = rand(np.float32)
    check_against_ort("Clip", [x], {"min": -1.0, "max": 1.5}, opset=10)
    h = rand(np.float16)
    got = run1("Clip", [h], {"min": -0.5}, opset=10)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, np.maximum(h, np.float16(-0.5)))


def test_dropout_inference_and_old_ratio_attribute():
    x = rand(np.float32)
    y, mask = anvil(one_node("Dropout", [x], {"ratio": 0.3}, opset=10, n_out=2), [x])
    np.testing.assert_array_equal(y, x)
    assert mask.dtype == np.bool_ and mask.all()


def test_dropout_training_with_seed_is_deterministic_and_scaled():
    x = np.ones((50, 40), dtype=np.float32)
    r, t = np.array(0.25, dtype=np.float32), np.array(True)
    model = one_node("Dropout", [x, r, t], {"seed": 3}, n_out=2)
    (y1, m1), (_, m2) = anvil(model, [x, r, t]), anvil(model, [x, r, t])
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_allclose(y1, np.where(m1, np.float32(1 / 0.75), 0))
    assert 0.65 < m1.mean() < 0.85


# ---------------------------------------------------------------------------------------
# Clean errors from type relations


def test_add_dtype_mismatch():
    m = one_node("Add", [np.zeros(3, np.float32), np.zeros(3, np.int64)])
    assert "Add: input dtypes differ: float32 and int64" in import_error(m)


def test_add_shapes_do_not_broadcast():
    m = one_node("Add", [np.zeros((2, 3), np.float32), np.zeros((4,), np.float32)])
    assert "Add: cannot broadcast shapes [2, 3] and [4]" in import_error(m)


def test_unsupported_dtypes():
    assert "Sqrt: input dtype int32 not supported" in import_error(
        one_node("Sqrt", [np.zeros(3, np.int32)]))
    assert "Neg: input dtype uint8 not supported" in import_error(
        one_node("Neg", [np.zeros(3, np.uint8)]))
    assert "And: input A dtype float32 not supported" in import_error(
        one_node("And", [np.zeros(3, np.float32)] * 2))


def test_bad_attributes():
    ints = [np.zeros(3, np.int32)] * 2
    assert "Mod: fmod must be 0 or 1, got 2" in import_error(one_node("Mod", ints, {"fmod": 2}))
    assert "BitShift: direction must be LEFT or RIGHT, got 'UP'" in import_error(
        one_node("BitShift", ints, {"direction": "UP"}))


def test_where_condition_and_clip_bounds():
    f = np.zeros(3, np.float32)
    assert "Where: condition dtype float32 not supported" in import_error(
        one_node("Where", [f, f, f]))
    assert "Where: X and Y dtypes differ: float32 and int32" in import_error(
        one_node("Where", [np.zeros(3, bool), f, np.zeros(3, np.int32)]))
    assert "Clip: min must be a scalar, got shape [3]" in import_error(one_node("Clip", [f, f]))
    assert "Clip: max has dtype float64, input has float32" in import_error(
        one_node("Clip", [f, np.array(0, np.float32), np.array(1.0)]))


def test_variadic_dtype_mismatch_and_symbolic_broadcast():
    m = one_node("Sum", [np.zeros(3, np.float32), np.zeros(3, np.float64)])
    assert "Sum: input dtypes differ: float32 and float64" in import_error(m)
    x = np.zeros((2, 3), np.float32)
    m = one_node("Max", [x, x], in_shapes=[["N", 3], [1, 3]])
    assert prepare(m).module.main.results[0].type.shape == ("N", 3)


def test_dropout_ratio_out_of_range():
    x = np.zeros(3, np.float32)
    model = one_node("Dropout", [x, np.array(0, np.float32)])
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array(1.5, np.float32),
                                                                "x1"))
    assert "Dropout: ratio must be in [0, 1), got 1.5" in import_error(model)
