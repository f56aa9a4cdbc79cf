"""Compute definitions of compiler/ops/{elementwise,activation,cast}.py: each op lowered at
small shapes, run on the loop-IR interpreter (and on LLVM/C where those backends import), and
checked against the op's numpy reference: exactly for integers and bools, within a few ulps
for floats."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from compiler.dtypes import DType
from compiler.errors import UnsupportedError
from compiler.loop.ir import Let
from compiler.loop.traverse import walk
from compiler.loop.verifier import verify
from compiler.lower.lowering import lower_call
from compiler.ops.base import EvalCtx, get_op
from oracles.compare import compare

TARGETS = ["lir", "llvm", "c"]
RNG = np.random.default_rng(7)
BF16 = np.dtype(ml_dtypes.bfloat16)
TOL = {np.dtype(np.float16): 2e-3, BF16: 1e-2, np.dtype(np.float32): 1e-5,
       np.dtype(np.float64): 1e-12}
SPECIAL = np.array([0.0, -0.0, 0.5, -1.5, 2.5, 3.0, -7.25, 1e-3, np.inf, -np.inf, np.nan])


@pytest.fixture(params=TARGETS)
def target(request) -> str:
    if request.param != "lir":
        pytest.importorskip(f"compiler.codegen.{request.param}")
    return request.param


def _attrs(op_name: str, attrs: dict | None) -> dict:
    op = get_op(op_name)
    out = {k: a.default for k, a in op.attrs.items()}
    out.update(attrs or {})
    return out


def lower(op_name: str, args: list, attrs: dict | None = None, n_out: int = 1):
    op = get_op(op_name)
    func, types = lower_call(op, _attrs(op_name, attrs), args, n_out, f"k_{op_name}")
    verify(func)
    return func, types


def run(target: str, op_name: str, args: list, attrs: dict | None = None,
        n_out: int = 1) -> list[np.ndarray]:
    from compiler.driver import codegen_for

    func, types = lower(op_name, args, attrs, n_out)
    kernel = codegen_for(target)([func])[func.name]
    outs = [np.empty(t.shape, t.dtype.np) for t in types]
    kernel(*[np.array(a) for a in args if a is not None], *outs)
    return outs


def reference(op_name: str, args: list, attrs: dict | None = None,
              n_out: int = 1) -> list[np.ndarray]:
    a = _attrs(op_name, attrs)
    with np.errstate(all="ignore"):
        return list(get_op(op_name).ref(EvalCtx(op_name, a, n_out), list(args)))[:n_out]


def check(target: str, op_name: str, args: list, attrs: dict | None = None,
          n_out: int = 1) -> None:
    want = reference(op_name, args, attrs, n_out)
    got = run(target, op_name, args, attrs, n_out)
    for k, (w, g) in enumerate(zip(want, got, strict=True)):
        w = np.asarray(w)
        tol = TOL.get(w.dtype, 0.0)
        d = compare(w, g, rtol=tol, atol=tol * 1e-2)
        assert d, f"{op_name} {attrs or ''} output {k} on {target}: {d.reason}\n" \
                  f"inputs {args}\nwant {w}\ngot  {g}"


def floats(dtype, n: int = 16, lo: float = -4.0, hi: float = 4.0) -> np.ndarray:
    return np.concatenate([SPECIAL, RNG.uniform(lo, hi, n)]).astype(dtype)


# ---------------------------------------------------------------------------------------
# unary math and activations


UNARY = ["Abs", "Neg", "Sign", "Exp", "Log", "Sqrt", "Sin", "Cos", "Tan", "Tanh", "Sinh",
         "Cosh", "Asin", "Acos", "Atan", "Asinh", "Acosh", "Atanh", "Erf", "Floor", "Ceil",
         "Round", "Reciprocal", "IsNaN", "Relu", "Sigmoid", "Softplus", "Softsign", "Mish",
         "HardSwish", "Swish"]


@pytest.mark.parametrize("dtype", [np.dtype(np.float32), np.dtype(np.float16),
                                   np.dtype(np.float64), BF16], ids=str)
def test_unary_float(target, dtype):
    x = floats(dtype)
    for op in UNARY:
        check(target, op, [x])


@pytest.mark.parametrize("op,attrs", [
    ("LeakyRelu", {"alpha": 0.1}), ("Elu", {"alpha": 0.5}), ("Selu", {}),
    ("Celu", {"alpha": 2.0}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
    ("Gelu", {}), ("Gelu", {"approximate": "tanh"}), ("ThresholdedRelu", {"alpha": 0.7}),
    ("Shrink", {"lambd": 1.0, "bias": 0.5}), ("Swish", {"alpha": 1.5}),
    ("IsInf", {}), ("IsInf", {"detect_negative": 0}), ("IsInf", {"detect_positive": 0}),
])
def test_activation_attrs(target, op, attrs):
    check(target, op, [floats(np.float32).reshape(3, 3, 3)[:, :2]], attrs)
    check(target, op, [floats(np.float16)], attrs)


def test_integer_unary(target):
    x8 = np.array([-128, -7, -1, 0, 1, 5, 127], np.int8)
    for op in ("Abs", "Neg", "Sign", "Relu", "BitwiseNot"):
        check(target, op, [x8])
    u = np.array([0, 1, 200, 255], np.uint8)
    for op in ("Abs", "Sign", "BitwiseNot"):
        check(target, op, [u])
    check(target, "Shrink", [u], {"lambd": 0.5, "bias": 3.0})  # 1 - 3 wraps to 254
    check(target, "Not", [np.array([True, False])])


# ---------------------------------------------------------------------------------------
# binary, with broadcasting


def test_binary_broadcast(target):
    a = RNG.uniform(-3, 3, (2, 1, 3)).astype(np.float32)
    b = RNG.uniform(0.5, 3, (4, 1)).astype(np.float32)
    for op in ("Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater",
               "LessOrEqual", "GreaterOrEqual", "PRelu"):
        args = [a, b] if op != "PRelu" else [np.broadcast_to(a, (2, 4, 3)).copy(), b[:1]]
        check(target, op, args)
    h = RNG.uniform(-3, 3, (3, 4)).astype(np.float16)
    check(target, "Mod", [h, np.float16(-1.5).reshape(1, 1)], {"fmod": 0})
    check(target, "Mod", [h, np.full((4,), 1.25, np.float16)], {"fmod": 1})
    check(target, "SwiGLU", [a, a * 2], {"alpha": 1.3})


def test_integer_division_and_mod(target):
    a = np.array([7, -7, 7, -7, -128, -128, 5, 0], np.int8)
    b = np.array([2, 2, -2, -2, -1, 3, 0, 0], np.int8)
    check(target, "Div", [a, b])
    check(target, "Mod", [a, b], {"fmod": 0})
    check(target, "Mod", [a, b], {"fmod": 1})
    ua, ub = np.array([7, 200, 5], np.uint8), np.array([2, 7, 0], np.uint8)
    check(target, "Div", [ua, ub])
    check(target, "Mod", [ua, ub])


def test_integer_pow(target):
    x = np.array([2, -3, 5, 1, -1, 0, 3, -2], np.int64).reshape(2, 4)
    e = np.array([62, 3, -1, -5, -3, 0, 40, 63], np.int64).reshape(2, 4)
    check(target, "Pow", [x, e])
    check(target, "Pow", [x.astype(np.int32), e.astype(np.int32)])
    check(target, "Pow", [x.astype(np.int32), np.array([0.5, 2.0, 1.5, 3.0], np.float32)])
    check(target, "Pow", [np.array([2.0, -2.0, 0.5], np.float16), np.array([3], np.int8)])


def test_integer_pow_is_linear_in_exponent_bits():
    """Square-and-multiply shares its partial powers through Lets, so the kernel stays small."""
    func, _ = lower("Pow", [np.ones(4, np.int64), np.ones(4, np.int64)])
    assert any(isinstance(n, Let) for n in walk(func))
    assert len(str(func)) < 20_000


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint64"])
@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_bitshift(target, dtype, direction):
    info = np.iinfo(dtype)
    x = np.array([1, 3, info.max, info.min, 100, 5], dtype)
    bits = info.bits
    amount = np.array([0, 1, bits - 1, bits - 1, bits, 2 * bits], dtype)
    check(target, "BitShift", [x, amount], {"direction": direction})
    for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
        check(target, op, [x, amount[::-1].copy()])


def test_logic_and_where(target):
    a = np.array([[True], [False]])
    b = np.array([True, False, True])
    for op in ("And", "Or", "Xor", "Equal"):
        check(target, op, [a, b])
    x = floats(np.float32)[:3].reshape(1, 3)
    y = np.array([[1.0], [2.0]], np.float32)
    check(target, "Where", [a, x, y])
    check(target, "Where", [b, np.int64(4).reshape(()), np.array([1, 2, 3], np.int64)])


def test_variadic_and_clip(target):
    xs = [floats(np.float32)[:6].reshape(2, 3), np.float32(1.0).reshape(1, 1),
          np.array([0.5, np.nan, -1.0], np.float32)]
    for op in ("Max", "Min", "Sum", "Mean"):
        check(target, op, xs)
        check(target, op, xs[:1])
        check(target, op, [x.astype(np.float16) for x in xs])
    ints = [np.array([3, -4, 7], np.int32), np.array([[0], [9]], np.int32)]
    check(target, "Max", ints)
    check(target, "Min", ints)
    x = floats(np.float32)
    check(target, "Clip", [x, np.float32(-1.0).reshape(()), np.array([2.0], np.float32)])
    check(target, "Clip", [x, None, np.float32(0.5).reshape(())])
    check(target, "Clip", [x, np.float32(3.0).reshape(()), np.float32(1.0).reshape(())])
    check(target, "Clip", [x])
    check(target, "Clip", [np.array(5.0, np.float32), None, np.array([3.0], np.float32)])
    check(target, "Clip", [np.array([-5, 0, 5], np.int8), np.int8(-2).reshape(()),
                           np.int8(3).reshape(())])


# ---------------------------------------------------------------------------------------
# Identity, Dropout


def test_identity_and_dropout(target):
    x = floats(np.float32).reshape(-1, 1)
    check(target, "Identity", [x])
    check(target, "Identity", [np.array([True, False])])
    check(target, "Dropout", [x], n_out=2)
    check(target, "Dropout", [x, np.float32(0.3).reshape(()), np.bool_(False).reshape(())],
          n_out=2)
    check(target, "Dropout", [x, np.float32(0.0).reshape(()), np.bool_(True).reshape(())],
          n_out=2)


def test_training_dropout_is_not_compiled():
    x = np.ones((2, 2), np.float32)
    with pytest.raises(UnsupportedError, match="training mode"):
        lower("Dropout", [x, np.float32(0.5).reshape(()), np.bool_(True).reshape(())], n_out=2)


# ---------------------------------------------------------------------------------------
# Cast, CastLike, BitCast


EDGES = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, -3.7, 3.7, -0.5, 255.9, 256.0, 3e9,
                  -3e9, 2.0**63, 2.0**64 + 2.0**12, -(2.0**63), 1e19], np.float64)


@pytest.mark.parametrize("src", ["float64", "float32", "float16"])
def test_cast_float_to_int(target, src):
    with np.errstate(over="ignore"):
        x = EDGES.astype(src)
    for dst in (DType.int8, DType.uint8, DType.int32, DType.uint32, DType.int64,
                DType.uint64, DType.bool):
        check(target, "Cast", [x], {"to": dst.onnx})


def test_cast_reference_rounds_wide_integers_once():
    from compiler.ops.cast import cast_array

    x = np.array([2**60 + 2**36 + 1], np.int64)  # through float64 it would tie, then round down
    assert cast_array(x, DType.float32)[0] == np.float32(2**60 + 2**37)
    assert float(cast_array(np.array([2**60 + 2**52 + 1], np.int64), DType.bfloat16)[0]) \
        == 2.0**60 + 2.0**53


def test_cast_between_numbers(target):
    big = np.array([2**60 + 2**36 + 1, 2**60 + 2**52 + 1, -(2**63), 2**53 + 1, -5, 0], np.int64)
    for dst in (DType.float32, DType.bfloat16, DType.float16, DType.float64, DType.int8,
                DType.uint16, DType.bool):
        check(target, "Cast", [big], {"to": dst.onnx})
        check(target, "Cast", [big.astype(np.uint64)], {"to": dst.onnx})
    f = floats(np.float64, lo=-1e5, hi=1e5)
    for dst in (DType.float32, DType.float16, DType.bfloat16):
        check(target, "Cast", [f], {"to": dst.onnx})
        check(target, "CastLike", [f, np.zeros(1, dst.np)])
    check(target, "Cast", [np.array([True, False])], {"to": DType.float32.onnx})
    check(target, "Cast", [f.astype(np.float32)], {"to": DType.float32.onnx})


def test_bitcast(target):
    x = np.array([-1, 0, 7, -(2**31)], np.int32)
    check(target, "BitCast", [x], {"to": DType.uint32.onnx})
    check(target, "BitCast", [np.array([0, 1, 2, 255], np.uint8)], {"to": DType.bool.onnx})
    check(target, "BitCast", [np.array([True, False])], {"to": DType.int8.onnx})


def exact(target: str, op_name: str, args: list, attrs: dict | None = None) -> None:
    """The target's output has the reference's dtype and bytes."""
    want = np.asarray(reference(op_name, args, attrs)[0])
    got = run(target, op_name, args, attrs)[0]
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), \
        f"{op_name} {attrs} on {target}\ninputs {args}\nwant {want}\ngot  {got}"


def test_bitcast_of_floats(target):
    f32 = np.array([1.0, -0.0, np.inf, -np.nan, 2.0**-149, 3e38], np.float32)
    exact(target, "BitCast", [f32], {"to": DType.int32.onnx})
    exact(target, "BitCast", [f32.view(np.int32)], {"to": DType.float32.onnx})
    exact(target, "BitCast", [f32.astype(np.float64)], {"to": DType.uint64.onnx})
    exact(target, "BitCast", [np.arange(8, dtype=np.uint8).astype(DType.float8e5m2.np)],
          {"to": DType.int8.onnx})
    with pytest.raises(UnsupportedError, match="not supported by native targets"):
        lower("BitCast", [np.zeros(2, ml_dtypes.int4)], {"to": DType.float4e2m1.onnx})


def test_unsupported_dtypes_fail_cleanly():
    with pytest.raises(UnsupportedError, match="not supported by native targets"):
        lower("Cast", [np.ones(2, np.float32)], {"to": DType.string.onnx})


# ---------------------------------------------------------------------------------------
# the storage-only dtypes (minifloats, int4/int2)

MINIFLOATS = (DType.float8e4m3fn, DType.float8e4m3fnuz, DType.float8e5m2, DType.float8e5m2fnuz,
              DType.float8e8m0, DType.float4e2m1)
NARROW = (DType.int4, DType.uint4, DType.int2, DType.uint2)
# overflow and saturation edges of every format, ties, subnormals, NaN, inf, -0.0
F8_EDGES = np.array([448, 464, 465, 480, 240, 248, 57344, 61440, 1e6, 6, 7, 5, 2.5, 0.25,
                     2**-9, 2**-10, 2**-17, 2**-18, 1.0625, 1.1875, 1e-30, 3e38, 1.5 * 2**127])
F8_INPUTS = np.concatenate([F8_EDGES, -F8_EDGES, SPECIAL,
                            np.random.default_rng(8).uniform(-20, 20, 16)])
TIES64 = np.array([(1 + m / 16) * 2.0**k * (1 + s * 2.0**-40) for k in (-8, 0, 3, 15)
                   for m in (1, 3, 8) for s in (-1, 0, 1)] + [1e-300, 1e300, 2.0**-127])


@pytest.mark.parametrize("dst", MINIFLOATS + NARROW, ids=str)
def test_cast_to_storage_dtypes(target, dst):
    """Saturation (or not), and one rounding from float64, as the reference does it."""
    exact(target, "Cast", [F8_INPUTS.astype(np.float32)], {"to": dst.onnx})
    if dst in NARROW:
        exact(target, "Cast", [np.arange(-40, 40, dtype=np.int32)], {"to": dst.onnx})
        return
    exact(target, "Cast", [np.concatenate([TIES64, -TIES64])], {"to": dst.onnx})
    if dst is not DType.float4e2m1:
        with np.errstate(over="ignore"):
            x16 = F8_INPUTS.astype(np.float16)
        exact(target, "CastLike", [x16, np.zeros(1, dst.np)], {"saturate": 0})


@pytest.mark.parametrize("mode", ["up", "down", "nearest"])
def test_cast_to_float8e8m0_rounding_modes(target, mode):
    x = np.concatenate([F8_INPUTS, TIES64, [2.0**-127, 2.0**-128, 2.0**-1074, 0.75 * 2**-126]])
    for sat in (0, 1):
        exact(target, "Cast", [x], {"to": DType.float8e8m0.onnx, "round_mode": mode,
                                    "saturate": sat})


@pytest.mark.parametrize("src", MINIFLOATS + NARROW, ids=str)
def test_cast_from_storage_dtypes(target, src):
    """Every byte, to a float and to an integer (NaN and out of range as the reference)."""
    x = np.arange(256, dtype=np.uint8).view(src.np)
    exact(target, "Cast", [x], {"to": DType.float16.onnx})
    exact(target, "Cast", [x], {"to": DType.int32.onnx if src in MINIFLOATS
                                else DType.float8e4m3fn.onnx})
