"""Element types shared by every IR level, with their numpy and ONNX mappings."""

from __future__ import annotations

import enum

import ml_dtypes
import numpy as np


class DType(enum.Enum):
    bool = "bool"
    int2 = "int2"
    uint2 = "uint2"
    int4 = "int4"
    uint4 = "uint4"
    int8 = "int8"
    int16 = "int16"
    int32 = "int32"
    int64 = "int64"
    uint8 = "uint8"
    uint16 = "uint16"
    uint32 = "uint32"
    uint64 = "uint64"
    float4e2m1 = "float4e2m1"
    float8e4m3fn = "float8e4m3fn"
    float8e4m3fnuz = "float8e4m3fnuz"
    float8e5m2 = "float8e5m2"
    float8e5m2fnuz = "float8e5m2fnuz"
    float8e8m0 = "float8e8m0"
    float16 = "float16"
    bfloat16 = "bfloat16"
    float32 = "float32"
    float64 = "float64"
    complex64 = "complex64"
    complex128 = "complex128"
    string = "string"

    def __repr__(self) -> str:
        return self.value

    __str__ = __repr__

    @property
    def np(self) -> np.dtype:
        return _TO_NP[self]

    @property
    def is_float(self) -> bool:
        return self.value.startswith(("float", "bfloat"))

    @property
    def is_int(self) -> bool:
        return self.value.startswith(("int", "uint"))

    @property
    def is_signed(self) -> bool:
        return self.value.startswith("int") or self.is_float

    @property
    def bits(self) -> int:
        if self is DType.bool:
            return 8
        if self is DType.string:
            return 64
        return _BITS[self]

    @property
    def onnx(self) -> int:
        return _TO_ONNX[self]

    @staticmethod
    def from_np(dt: np.dtype | type) -> DType:
        dt = np.dtype(dt)
        if dt.kind in "OUS":
            return DType.string
        try:
            return _FROM_NP[dt]
        except KeyError:
            raise KeyError(f"no Anvil dtype for numpy dtype {dt}") from None

    @staticmethod
    def from_onnx(elem_type: int) -> DType:
        return _FROM_ONNX[elem_type]


_TO_NP: dict[DType, np.dtype] = {
    DType.bool: np.dtype(np.bool_),
    DType.int2: np.dtype(getattr(ml_dtypes, "int2", np.int8)),
    DType.uint2: np.dtype(getattr(ml_dtypes, "uint2", np.uint8)),
    DType.int4: np.dtype(ml_dtypes.int4),
    DType.uint4: np.dtype(ml_dtypes.uint4),
    DType.int8: np.dtype(np.int8),
    DType.int16: np.dtype(np.int16),
    DType.int32: np.dtype(np.int32),
    DType.int64: np.dtype(np.int64),
    DType.uint8: np.dtype(np.uint8),
    DType.uint16: np.dtype(np.uint16),
    DType.uint32: np.dtype(np.uint32),
    DType.uint64: np.dtype(np.uint64),
    DType.float4e2m1: np.dtype(ml_dtypes.float4_e2m1fn),
    DType.float8e4m3fn: np.dtype(ml_dtypes.float8_e4m3fn),
    DType.float8e4m3fnuz: np.dtype(ml_dtypes.float8_e4m3fnuz),
    DType.float8e5m2: np.dtype(ml_dtypes.float8_e5m2),
    DType.float8e5m2fnuz: np.dtype(ml_dtypes.float8_e5m2fnuz),
    DType.float8e8m0: np.dtype(ml_dtypes.float8_e8m0fnu),
    DType.float16: np.dtype(np.float16),
    DType.bfloat16: np.dtype(ml_dtypes.bfloat16),
    DType.float32: np.dtype(np.float32),
    DType.float64: np.dtype(np.float64),
    DType.complex64: np.dtype(np.complex64),
    DType.complex128: np.dtype(np.complex128),
    DType.string: np.dtype(object),
}
_FROM_NP = {v: k for k, v in reversed(list(_TO_NP.items())) if k is not DType.string}

_BITS = {
    DType.int2: 2, DType.uint2: 2, DType.int4: 4, DType.uint4: 4, DType.float4e2m1: 4,
    DType.int8: 8, DType.uint8: 8, DType.float8e4m3fn: 8, DType.float8e4m3fnuz: 8,
    DType.float8e5m2: 8, DType.float8e5m2fnuz: 8, DType.float8e8m0: 8,
    DType.int16: 16, DType.uint16: 16, DType.float16: 16, DType.bfloat16: 16,
    DType.int32: 32, DType.uint32: 32, DType.float32: 32,
    DType.int64: 64, DType.uint64: 64, DType.float64: 64,
    DType.complex64: 64, DType.complex128: 128,
}

_TO_ONNX = {
    DType.float32: 1, DType.uint8: 2, DType.int8: 3, DType.uint16: 4, DType.int16: 5,
    DType.int32: 6, DType.int64: 7, DType.string: 8, DType.bool: 9, DType.float16: 10,
    DType.float64: 11, DType.uint32: 12, DType.uint64: 13, DType.complex64: 14,
    DType.complex128: 15, DType.bfloat16: 16, DType.float8e4m3fn: 17,
    DType.float8e4m3fnuz: 18, DType.float8e5m2: 19, DType.float8e5m2fnuz: 20,
    DType.uint4: 21, DType.int4: 22, DType.float4e2m1: 23, DType.float8e8m0: 24,
    DType.uint2: 25, DType.int2: 26,
}
_FROM_ONNX = {v: k for k, v in _TO_ONNX.items()}

INT_TYPES = tuple(d for d in DType if d.is_int)
FLOAT_TYPES = tuple(d for d in DType if d.is_float)
