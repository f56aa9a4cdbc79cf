"""The loop IR's minifloat formats, as both native backends encode and decode them.

A minifloat value is held as its byte (as in memory) and converted through float32, exactly
as ml_dtypes converts (see the storage-only dtypes in `compiler/loop/ir.py`):

- decode: every byte to the float32 ml_dtypes gives (NaNs are quiet, with the format's sign;
  fnuz's NaN byte 0x80 decodes to a negative NaN);
- encode: float32 rounded to nearest even by the rounding of ml_dtypes' `ConvertImpl`
  (subnormal results round from the full float32 significand), then the format's rules for
  overflow, infinities, NaN and negative zero (`kind`):
  - "ieee": IEEE-like (float8e5m2): overflow and inf give inf, NaN gives the quiet NaN;
  - "fn": no inf (float8e4m3fn): overflow, inf and NaN give the NaN S.1111.111;
  - "fnuz": no inf, no -0.0 (float8e4m3fnuz, float8e5m2fnuz): overflow, inf and NaN give
    the NaN byte 0x80, and a zero result is +0.0;
  - "sat": no inf, no NaN (float4e2m1): overflow and inf give +-highest; NaN gives the
    zero whose sign is the NaN's flipped (ml_dtypes' `-quiet_NaN()` is +0.0);
  - "e8m0": float8e8m0 (2**(byte - 127), no sign, no zero, 255 is NaN) has its own rules:
    NaN for NaN, inf, zero and negatives; halfway cases round up; positive float32
    subnormals give byte 0 up to 2**-127 and byte 1 above it.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.dtypes import DType


@dataclass(frozen=True)
class Format:
    dtype: DType
    tag: str  # in helper names: anv_f32_to_<tag>, anv_<tag>_to_f32
    mbits: int
    bias: int
    kind: str  # "ieee" | "fn" | "fnuz" | "sat" | "e8m0"
    highest: int  # magnitude bits of the largest finite value
    sign: int  # the sign bit (0 for e8m0)

    @property
    def mag_mask(self) -> int:
        return self.sign - 1

    @property
    def overflow(self) -> int:
        """The magnitude bits that overflow and infinities give (fnuz: the whole byte)."""
        if self.kind in ("ieee", "fn"):
            return self.highest + 1
        return self.sign if self.kind == "fnuz" else self.highest

    @property
    def nan(self) -> int:
        """The byte NaN gives (before the sign is added for "ieee"/"fn")."""
        if self.kind == "ieee":
            return self.highest + 1 + (1 << (self.mbits - 1))
        if self.kind == "fn":
            return self.highest + 1
        return self.sign if self.kind == "fnuz" else 0xFF  # "sat" has none


FORMATS: dict[DType, Format] = {f.dtype: f for f in (
    Format(DType.float8e4m3fn, "f8e4m3fn", 3, 7, "fn", 0x7E, 0x80),
    Format(DType.float8e4m3fnuz, "f8e4m3fnuz", 3, 8, "fnuz", 0x7F, 0x80),
    Format(DType.float8e5m2, "f8e5m2", 2, 15, "ieee", 0x7B, 0x80),
    Format(DType.float8e5m2fnuz, "f8e5m2fnuz", 2, 16, "fnuz", 0x7F, 0x80),
    Format(DType.float4e2m1, "f4e2m1", 1, 1, "sat", 0x7, 0x8),
    Format(DType.float8e8m0, "f8e8m0", 0, 127, "e8m0", 0xFE, 0),
)}

F32_INF = 0x7F800000
F32_QNAN = 0x7FC00000
