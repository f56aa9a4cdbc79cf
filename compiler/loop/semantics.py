"""Value-level semantics of loop-IR operations, shared by the interpreter.

Scalars are Python ints/bools or numpy float scalars of the exact dtype; vectors are 1-D numpy
arrays. See `interp.py` for the full definition of the IR's meaning.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from compiler.dtypes import DType
from compiler.loop.ir import int_range, is_float, is_int, is_minifloat, is_narrow_int
from compiler.loop.numeric import float_from_f64, float_from_ints, wrap_int


def _to_array(value: Any, dtype: DType) -> np.ndarray:
    return np.asarray(value, dtype=dtype.np)


def _from_array(a: np.ndarray, dtype: DType, lanes: int) -> Any:
    if lanes != 1:
        return np.asarray(a, dtype.np).reshape(lanes)
    if dtype is DType.bool:
        return bool(a)
    if is_int(dtype):
        return int(a)
    return dtype.np.type(a[()] if isinstance(a, np.ndarray) else a)


def ieee_minmax(is_min: bool, vector: bool) -> Callable[[Any, Any], Any]:
    """IEEE 754-2019 minimum/maximum: NaN-propagating, with -0.0 < +0.0."""
    ufunc = np.minimum if is_min else np.maximum

    def f(a: Any, b: Any) -> Any:
        r = ufunc(a, b)
        zeros = (a == b) & (a == 0)
        if np.any(zeros):
            neg = np.signbit(a) | np.signbit(b) if is_min else np.signbit(a) & np.signbit(b)
            pick = np.where(neg, -np.abs(a), np.abs(a)).astype(np.asarray(a).dtype)
            r = np.where(zeros, pick, r) if vector else pick[()]
        return r

    return f


def cast_value(value: Any, src: DType, dst: DType, lanes: int,
               fail: Callable[[str], None]) -> Any:
    return _from_array(cast_array(_to_array(value, src), src, dst, fail), dst, lanes)


def cast_array(a: np.ndarray, src: DType, dst: DType, fail: Callable[[str], None]
               ) -> np.ndarray:
    """`a` (of `src`) cast to `dst` by the loop IR's rules; `fail(message)` on UB."""
    if src == dst:
        return a
    if is_minifloat(src):  # decoded exactly, then an ordinary float32 cast
        return cast_array(a.astype(np.float32), DType.float32, dst, fail)
    if is_narrow_int(src):
        return cast_array(a.astype(np.int64), DType.int64, dst, fail)
    if is_minifloat(dst):  # ml_dtypes converts through float32 (and rounds twice)
        return cast_array(a, src, DType.float32, fail).astype(dst.np)
    if dst is DType.bool:
        return a != 0
    if is_float(src) and (is_int(dst) or is_narrow_int(dst)):
        t = np.trunc(a.astype(np.float64))
        lo, hi = int_range(dst)
        ok = (t >= float(lo)) & (t < float(hi + 1))
        if not np.all(ok):
            bad = np.asarray(a).reshape(-1)[~np.asarray(ok).reshape(-1)][0]
            fail(f"cast of {bad} to {dst.value} is out of range")
        return t.astype(np.int64).astype(dst.np) if is_narrow_int(dst) else t.astype(dst.np)
    if is_float(dst) and is_float(src):
        return float_from_f64(a.astype(np.float64), dst)
    if is_float(dst):
        return float_from_ints(a, dst) if src is not DType.bool else a.astype(dst.np)
    if is_narrow_int(dst):  # wraps, as ml_dtypes does from int64
        return a.astype(np.int64).astype(dst.np)
    return a.astype(dst.np)  # int/bool -> int: wraps


def reinterpret_value(value: Any, src: DType, dst: DType, lanes: int) -> Any:
    """The bits of `value` read as `dst` (same width)."""
    return _from_array(_to_array(value, src).view(dst.np), dst, lanes)


def _in_f32(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a float ufunc; float16/bfloat16 compute in float32 and round once."""

    def f(dtype: DType, *args: Any) -> Any:
        if dtype in (DType.float16, DType.bfloat16):
            out = np.asarray(fn(*(np.asarray(a, np.float32) for a in args)))
            return out.astype(bool if out.dtype == bool else dtype.np)[()]
        return fn(*args)

    return f


def _via_f64(fn: Callable[[float], float]) -> Callable[..., Any]:
    vec = np.frompyfunc(fn, 1, 1)

    def f(dtype: DType, x: Any) -> Any:
        return float_from_f64(np.asarray(vec(np.asarray(x, np.float64)), np.float64), dtype)[()]

    return f


FLOAT_INTRINSICS: dict[str, Callable[..., Any]] = {
    "exp": _in_f32(np.exp), "exp2": _in_f32(np.exp2), "expm1": _in_f32(np.expm1),
    "log": _in_f32(np.log), "log2": _in_f32(np.log2), "log10": _in_f32(np.log10),
    "log1p": _in_f32(np.log1p), "sqrt": _in_f32(np.sqrt), "sin": _in_f32(np.sin),
    "cos": _in_f32(np.cos), "tan": _in_f32(np.tan), "asin": _in_f32(np.arcsin),
    "acos": _in_f32(np.arccos), "atan": _in_f32(np.arctan), "sinh": _in_f32(np.sinh),
    "cosh": _in_f32(np.cosh), "tanh": _in_f32(np.tanh), "asinh": _in_f32(np.arcsinh),
    "acosh": _in_f32(np.arccosh), "atanh": _in_f32(np.arctanh), "erf": _via_f64(math.erf),
    "floor": _in_f32(np.floor), "ceil": _in_f32(np.ceil), "trunc": _in_f32(np.trunc),
    "round": _in_f32(np.rint), "abs": _in_f32(np.abs), "pow": _in_f32(np.power),
    "atan2": _in_f32(np.arctan2), "fmod": _in_f32(np.fmod),
    "copysign": _in_f32(np.copysign), "hypot": _in_f32(np.hypot),
    "isnan": _in_f32(np.isnan), "isinf": _in_f32(np.isinf), "isfinite": _in_f32(np.isfinite),
}


def int_intrinsic(name: str, dtype: DType, vector: bool) -> Callable[[Any], Any]:
    unsigned = np.dtype(f"uint{dtype.bits}")
    if name == "abs":
        return np.abs if vector else lambda a: wrap_int(abs(a), dtype)
    if name == "popcount":
        if vector:
            return lambda a: np.bitwise_count(a.view(unsigned)).astype(dtype.np)
        return lambda a: bin(a & ((1 << dtype.bits) - 1)).count("1")
    raise AssertionError(f"no integer implementation of {name}")
