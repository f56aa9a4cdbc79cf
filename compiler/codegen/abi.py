"""The calling convention every CPU backend compiles a PrimFunc to, and its Python wrapper.

A PrimFunc `f(params...)` becomes the C-ABI symbol

    int32_t f(T0 *buf0, T1 *buf1, ..., S0 scalar0, ...)

in parameter order: a `Buffer` parameter is a pointer to its element type (contiguous,
row-major, multi-dimensional indices flattened by the buffer's shape), a scalar `Var`
parameter is passed by value in its dtype. bool is one byte (0/1); float16 is IEEE half;
bfloat16 is passed and stored as its 16 raw bits; each storage-only dtype (float8, float4,
int4, int2, ...) is one byte, as ml_dtypes stores it. The return value is 0, or k >= 1 when
the k-th `Assert` of the function (in `walk` pre-order) failed.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.loop.ir import STORAGE_DTYPES, Assert, Buffer, IntImm, PrimFunc, Var
from compiler.loop.traverse import walk

CTYPES: dict[DType, type] = {
    DType.bool: ctypes.c_uint8,
    DType.int8: ctypes.c_int8,
    DType.int16: ctypes.c_int16,
    DType.int32: ctypes.c_int32,
    DType.int64: ctypes.c_int64,
    DType.uint8: ctypes.c_uint8,
    DType.uint16: ctypes.c_uint16,
    DType.uint32: ctypes.c_uint32,
    DType.uint64: ctypes.c_uint64,
    DType.float16: ctypes.c_uint16,
    DType.bfloat16: ctypes.c_uint16,
    DType.float32: ctypes.c_float,
    DType.float64: ctypes.c_double,
    **{d: ctypes.c_uint8 for d in STORAGE_DTYPES},
}


def assert_messages(func: PrimFunc) -> list[str]:
    """Messages of the function's Asserts in status-code order (code k -> messages[k-1])."""
    return [n.message for n in walk(func.body) if isinstance(n, Assert)]


@dataclass
class NativeKernel:
    """A compiled PrimFunc callable with numpy arrays (buffers) and Python scalars."""

    func: PrimFunc
    address: int
    keepalive: object = None  # the engine / library that owns the code

    def __post_init__(self) -> None:
        argtypes = []
        for p in self.func.params:
            if isinstance(p, Buffer):
                argtypes.append(ctypes.c_void_p)
            else:
                argtypes.append(CTYPES[p.dtype])
        self._cfunc = ctypes.CFUNCTYPE(ctypes.c_int32, *argtypes)(self.address)
        self._messages = assert_messages(self.func)

    def __call__(self, *args: object) -> None:
        params = self.func.params
        if len(args) != len(params):
            raise ExecutionError(f"{self.func.name} takes {len(params)} arguments, "
                                 f"got {len(args)}")
        scalars = {p.name: a for p, a in zip(params, args, strict=True) if isinstance(p, Var)}
        cargs = [self._buffer_arg(p, a, scalars) if isinstance(p, Buffer) else _scalar_arg(p, a)
                 for p, a in zip(params, args, strict=True)]
        status = self._cfunc(*cargs)
        if status:
            msg = self._messages[status - 1] if status <= len(self._messages) else "?"
            raise ExecutionError(f"{self.func.name}: assertion failed: {msg}")

    def _buffer_arg(self, p: Buffer, a: object, scalars: dict[str, object]) -> int:
        if not isinstance(a, np.ndarray):
            raise ExecutionError(f"{self.func.name}: buffer {p.name} needs a numpy array")
        if a.dtype != p.dtype.np:
            raise ExecutionError(f"{self.func.name}: buffer {p.name} is {p.dtype}, "
                                 f"got {a.dtype}")
        if not a.flags.c_contiguous:
            raise ExecutionError(f"{self.func.name}: buffer {p.name} must be C-contiguous")
        need = 1
        for d in p.shape:
            if isinstance(d, IntImm):
                need *= d.value
            elif isinstance(d, Var) and d.name in scalars:
                need *= int(scalars[d.name])
            else:
                need = 0
                break
        if a.size < need:
            raise ExecutionError(f"{self.func.name}: buffer {p.name} holds {a.size} elements, "
                                 f"needs {need}")
        return a.ctypes.data


def _scalar_arg(p: Var, a: object) -> object:
    """16-bit floats and the storage-only dtypes travel as their raw bits; everything else
    as the value itself."""
    if p.dtype in (DType.float16, DType.bfloat16):
        from compiler.loop.numeric import float_from_f64

        return int(np.asarray(float_from_f64(float(a), p.dtype)).view(np.uint16))
    if p.dtype in STORAGE_DTYPES:
        return int(np.asarray(a, dtype=p.dtype.np).view(np.uint8))
    return a
