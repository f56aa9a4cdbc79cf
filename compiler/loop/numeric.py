"""Exact numeric conversions the loop IR relies on.

numpy and ml_dtypes convert float64 (and wide integers) to bfloat16 through float32, which
rounds twice and can be off by one ulp. These helpers round once, to nearest even.
"""

from __future__ import annotations

import numpy as np

from compiler.dtypes import DType


def wrap_int(value: int, dtype: DType) -> int:
    """`value` wrapped to a two's-complement integer of `dtype`'s width."""
    bits = dtype.bits
    mask = (1 << bits) - 1
    if dtype.is_signed:
        half = 1 << (bits - 1)
        return ((value + half) & mask) - half
    return value & mask


def _round_int(value: int, bits: int) -> int:
    """`value` rounded to `bits` significant bits, ties to even."""
    mag = abs(value)
    shift = mag.bit_length() - bits
    if shift <= 0:
        return value
    q, r = divmod(mag, 1 << shift)
    half = 1 << (shift - 1)
    if r > half or (r == half and q & 1):
        q += 1
    return (q << shift) * (1 if value >= 0 else -1)


_PRECISION = {DType.float16: 11, DType.bfloat16: 8, DType.float32: 24, DType.float64: 53}


def float_from_f64(x: np.ndarray | float, dtype: DType) -> np.ndarray:
    """float64 values rounded once to the float `dtype`."""
    x = np.asarray(x, np.float64)
    if dtype is not DType.bfloat16:
        return x.astype(dtype.np)
    # Round to odd in float32, then to nearest even in bfloat16: 24 >= 8 + 2 bits, so the
    # second rounding is exact.
    r = np.array(x.astype(np.float32), ndmin=1)
    xs = np.array(x, ndmin=1)
    back = r.astype(np.float64)
    fix = (back != xs) & np.isfinite(r) & ((r.view(np.uint32) & 1) == 0)
    if fix.any():
        toward = np.where(back[fix] < xs[fix], np.inf, -np.inf).astype(np.float32)
        r[fix] = np.nextafter(r[fix], toward)
    return r.astype(dtype.np).reshape(x.shape)


def float_from_ints(x: np.ndarray, dtype: DType) -> np.ndarray:
    """Integer values rounded once to the float `dtype`."""
    if dtype in (DType.float32, DType.float64):
        return x.astype(dtype.np)  # a direct C conversion, rounded once
    bits = _PRECISION[dtype]
    flat = [float(_round_int(int(v), bits)) for v in np.asarray(x).reshape(-1)]
    exact = np.array(flat, np.float64).reshape(np.shape(x))
    with np.errstate(over="ignore"):
        return exact.astype(dtype.np)  # exactly representable, or out of range: no rounding


def round_float(value: float, dtype: DType) -> float:
    """A Python float rounded to the float `dtype`, back as a Python float."""
    with np.errstate(all="ignore"):
        return float(float_from_f64(value, dtype))
