"""Activation functions. All elementwise; built with the factories of elementwise.py.

Attribute constants (alpha, beta, ...) are float32 values, as ONNX stores them, and the math
runs in float32 for float16/bfloat16/float32 inputs and in float64 for float64 inputs.
Each numpy body has a loop-IR twin (`_*_lower`) with the same formula, for the compute.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr, is_float
from compiler.lower import topi
from compiler.ops.base import (
    Attr,
    EvalCtx,
    InferCtx,
    Kind,
    OpDef,
    broadcast_shapes,
    check_dtype,
    dim_eq,
    register,
)
from compiler.ops.elementwise import (
    FLOATS,
    INTS,
    SIGNED,
    erf,
    fconst,
    float_to_int64,
    pointwise,
    unary,
    work,
)

D = DType
Attrs = dict[str, Any]


def _c(x: np.ndarray, v: float) -> np.ndarray:
    """Attribute value v as a scalar of x's (work) dtype."""
    return np.asarray(v, dtype=x.dtype)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.zeros_like(x), x)


def _fl(f: Any) -> Any:
    """Body over the float work copy of x: f(x, attrs)."""
    return lambda x, a: f(work(x), a)


def _relu(x: np.ndarray, a: Attrs) -> np.ndarray:
    return np.maximum(x, np.zeros_like(x))


def _leaky(x: np.ndarray, a: Attrs) -> np.ndarray:
    return np.where(x >= 0, x, x * _c(x, a["alpha"]))


def _elu(x: np.ndarray, a: Attrs) -> np.ndarray:
    return np.where(x > 0, x, _c(x, a["alpha"]) * np.expm1(x))


def _selu(x: np.ndarray, a: Attrs) -> np.ndarray:
    alpha, gamma = _c(x, a["alpha"]), _c(x, a["gamma"])
    return gamma * np.where(x > 0, x, alpha * np.exp(x) - alpha)


def _celu(x: np.ndarray, a: Attrs) -> np.ndarray:
    alpha = _c(x, a["alpha"])
    zero = np.zeros_like(x)
    return np.maximum(zero, x) + np.minimum(zero, alpha * np.expm1(x / alpha))


def _hard_sigmoid(x: np.ndarray, a: Attrs) -> np.ndarray:
    return np.clip(_c(x, a["alpha"]) * x + _c(x, a["beta"]), 0, 1)


def _hard_swish(x: np.ndarray, a: Attrs) -> np.ndarray:
    return x * np.clip(x / _c(x, 6.0) + _c(x, 0.5), 0, 1)


def _gelu(x: np.ndarray, a: Attrs) -> np.ndarray:
    half = _c(x, 0.5)
    if a["approximate"] == "tanh":
        k = _c(x, np.sqrt(2 / np.pi))
        return half * x * (1 + np.tanh(k * (x + _c(x, 0.044715) * x * x * x)))
    return half * x * (1 + erf(x / _c(x, np.sqrt(2))))


def _check_gelu(ctx: InferCtx) -> None:
    if ctx.attrs["approximate"] not in ("none", "tanh"):
        raise ctx.fail(f"approximate must be 'none' or 'tanh', got {ctx.attrs['approximate']!r}")


def _check_celu(ctx: InferCtx) -> None:
    if ctx.attrs["alpha"] == 0:
        raise ctx.fail("alpha must be nonzero")


def _shrink(x: np.ndarray, a: Attrs) -> np.ndarray:
    xf = x.astype(np.float64) if x.dtype.kind in "iu" else work(x)
    lambd, bias = _c(xf, a["lambd"]), _c(xf, a["bias"])
    y = np.where(xf < -lambd, xf + bias, np.where(xf > lambd, xf - bias, 0))
    return np.trunc(y) if x.dtype.kind in "iu" else y


def _swish(x: np.ndarray, a: Attrs) -> np.ndarray:
    return x * _sigmoid(_c(x, a["alpha"]) * x)


def _f32(v: float) -> float:
    """A default as ONNX stores it: a float32 value."""
    return float(np.float32(v))


# ---------------------------------------------------------------------------------------
# Loop-IR twins of the bodies above: x is an expression at work precision.


def _exp(x: Expr) -> Expr:
    return B.call("exp", x)


def _sigmoid_lower(x: Expr) -> Expr:
    return topi.let(x, lambda x: topi.let(_exp(-B.call("abs", x)), lambda e: B.select(
        x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e)), "e"))


def _softplus_lower(x: Expr) -> Expr:
    """log(1 + exp(x)) as np.logaddexp(0, x): max(x, 0) + log1p(exp(-|x|))."""
    return topi.let(x, lambda x: B.max_(x, 0.0) + B.call("log1p", _exp(-B.call("abs", x))))


def _leaky_lower(x: Expr, a: Attrs) -> Expr:
    return topi.let(x, lambda x: B.select(x >= 0.0, x, x * a["alpha"]))


def _elu_lower(x: Expr, a: Attrs) -> Expr:
    return topi.let(x, lambda x: B.select(x > 0.0, x, fconst(x, a["alpha"])
                                          * B.call("expm1", x)))


def _selu_lower(x: Expr, a: Attrs) -> Expr:
    alpha, gamma = fconst(x, a["alpha"]), fconst(x, a["gamma"])
    return topi.let(x, lambda x: gamma * B.select(x > 0.0, x, alpha * _exp(x) - alpha))


def _celu_lower(x: Expr, a: Attrs) -> Expr:
    alpha = fconst(x, a["alpha"])
    return topi.let(x, lambda x: B.max_(fconst(x, 0.0), x)
                    + B.min_(fconst(x, 0.0), alpha * B.call("expm1", x / alpha)))


def _hard_sigmoid_lower(x: Expr, a: Attrs) -> Expr:
    return _clip01(fconst(x, a["alpha"]) * x + fconst(x, a["beta"]))


def _clip01(x: Expr) -> Expr:
    return B.min_(B.max_(x, 0.0), 1.0)


def _hard_swish_lower(x: Expr, a: Attrs) -> Expr:
    return topi.let(x, lambda x: x * _clip01(x / 6.0 + 0.5))


def _gelu_lower(x: Expr, a: Attrs) -> Expr:
    def body(x: Expr) -> Expr:
        half = fconst(x, 0.5)
        if a["approximate"] == "tanh":
            inner = fconst(x, math.sqrt(2 / math.pi)) * (x + fconst(x, 0.044715) * x * x * x)
            return half * x * (1.0 + B.call("tanh", inner))
        return half * x * (1.0 + B.call("erf", x / fconst(x, math.sqrt(2))))

    return topi.let(x, body)


def _shrink_lower(x: Expr, a: Attrs) -> Expr:
    """Integers: the float64 result truncated, then wrapped to x's dtype."""
    xf = x if is_float(x.dtype) else B.cast(D.float64, x)

    def body(xf: Expr) -> Expr:
        lambd, bias = fconst(xf, a["lambd"]), fconst(xf, a["bias"])
        neg_lambd = fconst(xf, -a["lambd"])
        return B.select(xf < neg_lambd, xf + bias, B.select(xf > lambd, xf - bias, 0.0))

    y = topi.let(xf, body)
    return y if is_float(x.dtype) else float_to_int64(y)


def _swish_lower(x: Expr, a: Attrs) -> Expr:
    return topi.let(x, lambda x: x * _sigmoid_lower(fconst(x, a["alpha"]) * x))


ALPHA1 = {"alpha": Attr("float", 1.0)}

unary("Relu", lambda x, a: _relu(x, a), FLOATS + SIGNED,
      lower=lambda x, a: B.max_(x, topi.scalar(0, x.dtype)))
unary("LeakyRelu", _fl(_leaky), FLOATS, attrs={"alpha": Attr("float", _f32(0.01))},
      lower=_leaky_lower)
unary("Elu", _fl(_elu), FLOATS, attrs=ALPHA1, lower=_elu_lower)
unary("Selu", _fl(_selu), FLOATS, attrs={"alpha": Attr("float", 1.67326319217681884765625),
                                         "gamma": Attr("float", 1.05070102214813232421875)},
      lower=_selu_lower)
unary("Celu", _fl(_celu), FLOATS, attrs=ALPHA1, check=_check_celu, lower=_celu_lower)
unary("Sigmoid", _fl(lambda x, a: _sigmoid(x)), FLOATS,
      lower=lambda x, a: _sigmoid_lower(x))
unary("HardSigmoid", _fl(_hard_sigmoid), FLOATS,
      attrs={"alpha": Attr("float", _f32(0.2)), "beta": Attr("float", 0.5)},
      lower=_hard_sigmoid_lower)
unary("HardSwish", _fl(_hard_swish), FLOATS, lower=_hard_swish_lower)
unary("Softplus", _fl(lambda x, a: _softplus(x)), FLOATS,
      lower=lambda x, a: _softplus_lower(x))
unary("Softsign", _fl(lambda x, a: x / (1 + np.abs(x))), FLOATS,
      lower=lambda x, a: topi.let(x, lambda x: x / (1.0 + B.call("abs", x))))
unary("Mish", _fl(lambda x, a: x * np.tanh(_softplus(x))), FLOATS,
      lower=lambda x, a: topi.let(x, lambda x: x * B.call("tanh", _softplus_lower(x))))
unary("Gelu", _fl(_gelu), FLOATS, attrs={"approximate": Attr("string", "none")},
      check=_check_gelu, lower=_gelu_lower)
unary("ThresholdedRelu", _fl(lambda x, a: np.where(x > _c(x, a["alpha"]), x, 0)), FLOATS,
      attrs=ALPHA1,
      lower=lambda x, a: topi.let(x, lambda x: B.select(x > fconst(x, a["alpha"]), x, 0.0)))
unary("Shrink", _shrink, (D.float16, D.float32, D.float64) + INTS,
      attrs={"bias": Attr("float", 0.0), "lambd": Attr("float", 0.5)}, lower=_shrink_lower)
unary("Swish", _fl(_swish), FLOATS, attrs=ALPHA1, lower=_swish_lower)


# PRelu: slope broadcasts to X (unidirectionally); the output has X's shape and dtype.
PRELU_TYPES = FLOATS + (D.int32, D.int64, D.uint32, D.uint64)


def _prelu_infer(ctx: InferCtx) -> list[TensorType]:
    x, s = ctx.input(0), ctx.input(1)
    if x is None or s is None:
        raise ctx.fail("inputs X and slope are required")
    check_dtype(ctx, x, PRELU_TYPES)
    if s.dtype != x.dtype:
        raise ctx.fail(f"input dtypes differ: {x.dtype} and {s.dtype}")
    if x.shape is not None and s.shape is not None:
        out = broadcast_shapes(ctx, x.shape, s.shape)
        if len(out) != len(x.shape) or any(
            dim_eq(o, d) is False for o, d in zip(out, x.shape, strict=True)
        ):
            raise ctx.fail(f"slope shape {list(s.shape)} does not broadcast to X shape "
                           f"{list(x.shape)}")
    return [TensorType(x.shape, x.dtype)]


def _prelu_ref(ctx: EvalCtx, ins: list[np.ndarray | None]) -> list[np.ndarray]:
    x, s = ins[0], ins[1]
    xw, sw = work(x), work(s)
    y = np.broadcast_to(np.where(xw < 0, xw * sw, xw), x.shape)
    return [np.asarray(y).astype(x.dtype)]


register(OpDef("PRelu", _prelu_infer, _prelu_ref, kind=Kind.BROADCAST, inputs=(2, 2),
               compute=pointwise(lambda x, s, a: topi.let(
                   x, lambda x: B.select(x < topi.scalar(0, x.dtype), x * s, x)))))


# SwiGLU: Swish(A) * B, A and B of one shape (no broadcasting).
def _swiglu_infer(ctx: InferCtx) -> list[TensorType]:
    a, b = ctx.input(0), ctx.input(1)
    if a is None or b is None:
        raise ctx.fail("inputs A and B are required")
    check_dtype(ctx, a, FLOATS, "input A")
    if a.dtype != b.dtype:
        raise ctx.fail(f"input dtypes differ: {a.dtype} and {b.dtype}")
    if a.shape is not None and b.shape is not None:
        if len(a.shape) != len(b.shape) or any(
            dim_eq(p, q) is False for p, q in zip(a.shape, b.shape, strict=True)
        ):
            raise ctx.fail(f"A and B must have one shape, got {list(a.shape)} and "
                           f"{list(b.shape)}")
        shape = tuple(p if isinstance(p, int) or not isinstance(q, int) else q
                      for p, q in zip(a.shape, b.shape, strict=True))
    else:
        shape = a.shape if a.shape is not None else b.shape
    return [TensorType(shape, a.dtype)]


def _swiglu_ref(ctx: EvalCtx, ins: list[np.ndarray | None]) -> list[np.ndarray]:
    a, b = ins[0], ins[1]
    y = _swish(work(a), ctx.attrs) * work(b)
    return [np.asarray(y).astype(a.dtype)]


register(OpDef("SwiGLU", _swiglu_infer, _swiglu_ref, attrs=dict(ALPHA1), kind=Kind.ELEMWISE,
               inputs=(2, 2), compute=pointwise(lambda x, y, a: _swish_lower(x, a) * y)))
