"""Dtype-aware comparison of a result against a reference.

Integers, booleans and strings compare exactly; floats within rtol/atol with NaN equal to
NaN and infinities required to match in sign.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Diff:
    ok: bool
    reason: str = ""
    max_abs: float = 0.0
    max_rel: float = 0.0

    def __bool__(self) -> bool:
        return self.ok


def compare(expected: np.ndarray, actual: np.ndarray, rtol: float = 1e-3,
            atol: float = 1e-7) -> Diff:
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    if expected.dtype != actual.dtype:
        return Diff(False, f"dtype {actual.dtype} != expected {expected.dtype}")
    if expected.shape != actual.shape:
        return Diff(False, f"shape {list(actual.shape)} != expected {list(expected.shape)}")
    if expected.dtype == object:
        ok = expected.tolist() == actual.tolist()
        return Diff(ok, "" if ok else "values differ")
    if expected.dtype.kind in "biu":
        bad = int(np.sum(expected != actual))
        return Diff(bad == 0, "" if bad == 0 else f"{bad} of {expected.size} elements differ")
    if expected.dtype.kind != "c":
        expected = expected.astype(np.float64)
        actual = actual.astype(np.float64)
    if expected.size == 0:
        return Diff(True)
    nan_e, nan_a = np.isnan(expected), np.isnan(actual)
    if (nan_e != nan_a).any():
        return Diff(False, f"{int((nan_e != nan_a).sum())} NaN positions differ")
    fin = ~nan_e
    inf_e = np.isinf(expected) & fin
    if (actual[inf_e] != expected[inf_e]).any():
        return Diff(False, "infinities differ")
    both = fin & ~inf_e
    e, a = expected[both], actual[both]
    err = np.abs(a - e)
    if err.size == 0:
        return Diff(True)
    if np.isinf(err).any():
        return Diff(False, "a finite value became infinite")
    rel = err / np.maximum(np.abs(e), np.finfo(np.float64).tiny)
    max_abs, max_rel = float(err.max()), float(rel.max())
    bad = err > atol + rtol * np.abs(e)
    if bad.any():
        return Diff(False, f"{int(bad.sum())} of {e.size} elements differ "
                           f"(max abs {max_abs:.3g}, max rel {max_rel:.3g})", max_abs, max_rel)
    return Diff(True, "", max_abs, max_rel)
