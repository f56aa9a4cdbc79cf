"""A small builder of LLVM IR text, and the loop IR's value representation in LLVM.

Values are typed SSA names or literals (`V`). A loop-IR value of dtype `d` with `lanes`
lanes has the LLVM type `value_type(d, lanes)`:

- bool is `i1`; intN/uintN are `iN` (signedness lives in the instructions);
- float32 is `float`, float64 is `double`;
- float16 and bfloat16 are held in a `float` that is exactly a value of the 16-bit type:
  every operation computes in float32 and rounds once (`round16`), like the interpreter;
- a minifloat (float8*, float4e2m1) is its byte, `i8`; int4/uint4 are `i4` and int2/uint2
  are `i2`.

In memory (buffers, and the ABI's scalar parameters) bool is `i8`, both 16-bit floats are
`i16` holding their raw bits, and every storage-only dtype is one `i8` (`memory_type`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from compiler.dtypes import DType
from compiler.loop.ir import STORAGE_DTYPES, is_minifloat

ELEM_BYTES: dict[DType, int] = {
    DType.bool: 1, DType.int8: 1, DType.uint8: 1, DType.int16: 2, DType.uint16: 2,
    DType.int32: 4, DType.uint32: 4, DType.int64: 8, DType.uint64: 8, DType.float16: 2,
    DType.bfloat16: 2, DType.float32: 4, DType.float64: 8,
    **{d: 1 for d in STORAGE_DTYPES},
}
HALF_TYPES = (DType.float16, DType.bfloat16)


@dataclass(frozen=True, slots=True)
class V:
    """An LLVM value: its type (`i32`, `<4 x float>`, `ptr`) and a name or literal."""

    ty: str
    ref: str

    def __str__(self) -> str:
        return f"{self.ty} {self.ref}"


def vec(ty: str, lanes: int) -> str:
    return ty if lanes == 1 else f"<{lanes} x {ty}>"


def lanes_of(ty: str) -> int:
    return int(ty[1:ty.index(" ")]) if ty.startswith("<") else 1


def elem_of(ty: str) -> str:
    return ty[ty.index("x ") + 2:-1] if ty.startswith("<") else ty


def scalar_type(dtype: DType) -> str:
    if dtype is DType.bool:
        return "i1"
    if dtype is DType.float64:
        return "double"
    if is_minifloat(dtype):
        return "i8"
    if dtype.is_float:
        return "float"
    return f"i{dtype.bits}"


def value_type(dtype: DType, lanes: int = 1) -> str:
    return vec(scalar_type(dtype), lanes)


def memory_type(dtype: DType) -> str:
    if dtype is DType.bool or dtype in STORAGE_DTYPES:
        return "i8"
    if dtype in HALF_TYPES:
        return "i16"
    return scalar_type(dtype)


def float_literal(value: float) -> str:
    """An LLVM float/double literal: the exact bits of the value as a double, in hex."""
    bits = struct.unpack("<Q", struct.pack("<d", value))[0]
    return f"0x{bits:016X}"


def int_literal(value: int, bits: int) -> str:
    """A two's-complement literal of an `iN` (LLVM reads decimal digits as signed)."""
    value &= (1 << bits) - 1
    return str(value - (1 << bits) if value >> (bits - 1) and bits > 1 else value)


def splat(literal: str, ty: str) -> str:
    """A constant of type `ty` with every lane `literal`."""
    lanes = lanes_of(ty)
    if lanes == 1:
        return literal
    elem = elem_of(ty)
    return "<" + ", ".join(f"{elem} {literal}" for _ in range(lanes)) + ">"


class IRFunction:
    """The text of one LLVM function under construction."""

    def __init__(self, header: str) -> None:
        self.header = header
        self.allocas: list[str] = []
        self.lines: list[str] = []
        self.block = "entry"
        self.count = 0

    def fresh(self, hint: str = "t") -> str:
        self.count += 1
        return f"{hint}{self.count}"

    def emit(self, line: str) -> None:
        self.lines.append("  " + line)

    def val(self, ty: str, rhs: str) -> V:
        name = "%" + self.fresh()
        self.emit(f"{name} = {rhs}")
        return V(ty, name)

    def alloca(self, ty: str, align: int) -> V:
        name = "%" + self.fresh("a")
        self.allocas.append(f"  {name} = alloca {ty}, align {align}")
        return V("ptr", name)

    def start(self, label: str) -> None:
        self.lines.append(f"{label}:")
        self.block = label

    def br(self, label: str) -> None:
        self.emit(f"br label %{label}")

    def cbr(self, cond: V, then: str, other: str) -> None:
        self.emit(f"br i1 {cond.ref}, label %{then}, label %{other}")

    def text(self) -> str:
        return "\n".join([self.header + " {", "entry:", *self.allocas, *self.lines, "}", ""])

    # -- instructions ----------------------------------------------------------------------

    def binop(self, op: str, a: V, b: V | str) -> V:
        ref = b.ref if isinstance(b, V) else b
        return self.val(a.ty, f"{op} {a.ty} {a.ref}, {ref}")

    def cmp(self, op: str, pred: str, a: V, b: V | str) -> V:
        ref = b.ref if isinstance(b, V) else b
        return self.val(vec("i1", lanes_of(a.ty)), f"{op} {pred} {a.ty} {a.ref}, {ref}")

    def conv(self, op: str, a: V, ty: str) -> V:
        return a if a.ty == ty and op in ("bitcast",) else self.val(ty, f"{op} {a} to {ty}")

    def select(self, cond: V, t: V, f: V) -> V:
        return self.val(t.ty, f"select {cond}, {t}, {f}")

    def call(self, ty: str, name: str, *args: V, attrs: str = "") -> V:
        suffix = f" {attrs}" if attrs else ""
        return self.val(ty, f"call {ty} @{name}({', '.join(str(a) for a in args)}){suffix}")

    def broadcast(self, a: V, lanes: int) -> V:
        if lanes_of(a.ty) == lanes:
            return a
        ty = vec(a.ty, lanes)
        if not a.ref.startswith("%"):
            return V(ty, splat(a.ref, ty))
        one = self.val(f"<1 x {a.ty}>", f"insertelement <1 x {a.ty}> poison, {a}, i64 0")
        return self.val(ty, f"shufflevector {one}, <1 x {a.ty}> poison, "
                            f"<{lanes} x i32> zeroinitializer")

    def extract(self, a: V, lane: int) -> V:
        return self.val(elem_of(a.ty), f"extractelement {a}, i64 {lane}")

    def insert(self, a: V | None, x: V, lane: int, ty: str) -> V:
        base = a.ref if a is not None else "poison"
        return self.val(ty, f"insertelement {ty} {base}, {x}, i64 {lane}")

    def lanewise(self, ty: str, fn: Callable[..., V], *args: V) -> V:
        """Apply a scalar emitter `fn(*scalars) -> V` to each lane of vector arguments."""
        lanes = lanes_of(ty)
        if lanes == 1:
            return fn(*args)
        out: V | None = None
        for k in range(lanes):
            out = self.insert(out, fn(*(self.extract(a, k) for a in args)), k, ty)
        assert out is not None
        return out
