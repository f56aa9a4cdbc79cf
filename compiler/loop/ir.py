"""Loop IR nodes: a TIR-like IR of loops over buffers.

Every node is a frozen, slotted dataclass with structural equality. Expressions carry a
`dtype` and a number of vector `lanes` (1 for scalars). For literals, variables, casts and
calls the dtype is a field; for every other expression it is derived from the operands when
the node is built, so it can never disagree with them (the verifier checks that the operands
agree with each other).

Semantics (the interpreter in `interp.py` is the executable definition):

- Integer `add`, `sub`, `mul`, `neg`, `shl` wrap like two's complement at the dtype's width.
- `div` is IEEE division and is float-only. Integers use `floordiv`/`floormod` (rounding
  toward minus infinity; the remainder has the sign of the divisor) or `truncdiv`/`truncmod`
  (C semantics: rounding toward zero; the remainder has the sign of the dividend). A zero
  divisor, and `MIN // -1` for signed types, are undefined behaviour.
- `shl`/`shr` with a shift amount outside `[0, bits)` are undefined; `shr` is arithmetic on
  signed types and logical on unsigned ones.
- Float `min`/`max` are IEEE 754-2019 minimum/maximum: NaN if either operand is NaN, and
  -0.0 < +0.0.
- `Select` evaluates both arms (undefined behaviour in either arm is undefined behaviour).
- `Cast`: int->int wraps; int->float and float->float round to nearest even; float->int
  truncates toward zero and is undefined for NaN, infinities and values outside the target
  range; x->bool is `x != 0`; bool->x is 0 or 1.
- `Reinterpret(dtype, value)`: the bits of `value` read as `dtype` (numpy's `.view`). Both
  types have the same width of at least 8 bits, and neither is bool. NaN bits are only as
  portable as NaN payloads are: native backends hold float16/bfloat16 values in float32,
  which quiets a signalling NaN.
- Float immediates are stored as Python floats holding exactly a value of their dtype. NaN
  immediates are canonical (positive quiet NaN); `-0.0` and `0.0` are different immediates.
- `eval barrier()` (the one void intrinsic) makes the threads of a block wait for each other,
  with their shared-memory writes visible after it; where threads run one after another
  (the interpreter, the CPU backends) it does nothing. It is a statement, never a value.

Storage-only dtypes (`STORAGE_DTYPES`): the minifloats float8e4m3fn, float8e4m3fnuz,
float8e5m2, float8e5m2fnuz, float8e8m0 and float4e2m1, and the narrow integers int4, uint4,
int2, uint2. Buffers hold one element per byte, as numpy/ml_dtypes arrays of these types do
(a narrow integer in the low bits, the high bits zero when written). The only operations on
them are load, store, `Select`, `Let`, `Broadcast`, `Reinterpret` (8-bit ones) and `Cast` to
and from every supported dtype; arithmetic, comparisons, intrinsics and immediates of these
dtypes are rejected by the verifier (cast to a wider type first). Their casts are ml_dtypes'
`astype`, which for the minifloats always goes through float32:

- minifloat -> x: decode exactly to float32, then float32 -> x by the rules above (so a
  minifloat -> integer cast is undefined for NaN, infinities and out-of-range values);
- x -> minifloat: x -> float32 by the rules above (float64 and wide integers round twice),
  then float32 -> minifloat as ml_dtypes rounds: to nearest even; overflow gives inf
  (float8e5m2), NaN (the fn/fnuz formats) or the largest value (float4e2m1, which has no inf
  or NaN: NaN becomes a zero whose sign is the NaN's flipped); fnuz formats have no -0.0;
  NaN keeps its sign where the format has a signed NaN. float8e8m0 (powers of two 2**-127 ..
  2**127, byte 255 is NaN) rounds halfway cases up, gives NaN for zero, negatives, inf and
  NaN, 2**-127 for every positive value up to 2**-127, and 2**-126 for values between
  2**-127 and 2**-126;
- narrow integers are integers for casts: to them, int->int wraps and float->int truncates
  (undefined outside the range); from them, the value converts as an int8/uint8 would.

Bytes a program did not write are read as ml_dtypes reads them: a narrow integer ignores the
high bits; a float4e2m1 byte is negative when any of bits 3..7 is set.

Traversal is written once: `map_children` rebuilds a node from its dataclass fields, and
`children`, `walk`, `transform` and `rewrite` are built on top of it (see `traverse.py`).
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from compiler.dtypes import DType
from compiler.loop.numeric import round_float

INT_DTYPES: tuple[DType, ...] = (
    DType.int8, DType.int16, DType.int32, DType.int64,
    DType.uint8, DType.uint16, DType.uint32, DType.uint64,
)
FLOAT_DTYPES: tuple[DType, ...] = (DType.float16, DType.bfloat16, DType.float32, DType.float64)
MINIFLOAT_DTYPES: tuple[DType, ...] = (
    DType.float8e4m3fn, DType.float8e4m3fnuz, DType.float8e5m2, DType.float8e5m2fnuz,
    DType.float8e8m0, DType.float4e2m1,
)
NARROW_INT_DTYPES: tuple[DType, ...] = (DType.int4, DType.uint4, DType.int2, DType.uint2)
STORAGE_DTYPES: tuple[DType, ...] = (*MINIFLOAT_DTYPES, *NARROW_INT_DTYPES)
SUPPORTED_DTYPES: tuple[DType, ...] = (DType.bool, *INT_DTYPES, *FLOAT_DTYPES, *STORAGE_DTYPES)

SCOPES = ("global", "shared", "local")
THREAD_TAGS = tuple(f"{k}.{a}" for k in ("blockIdx", "threadIdx") for a in "xyz")

_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000000))[0]


def is_int(dtype: DType) -> bool:
    return dtype in INT_DTYPES


def is_float(dtype: DType) -> bool:
    return dtype in FLOAT_DTYPES


def is_storage(dtype: DType) -> bool:
    """A storage-only dtype: load, store, select and cast, no arithmetic."""
    return dtype in STORAGE_DTYPES


def is_minifloat(dtype: DType) -> bool:
    return dtype in MINIFLOAT_DTYPES


def is_narrow_int(dtype: DType) -> bool:
    return dtype in NARROW_INT_DTYPES


def can_reinterpret(src: DType, dst: DType) -> bool:
    """Whether `Reinterpret` may read `src`'s bits as `dst`: one width of 8+ bits, no bool."""
    return (src.bits == dst.bits and src.bits >= 8 and DType.bool not in (src, dst)
            and src in SUPPORTED_DTYPES and dst in SUPPORTED_DTYPES)


def int_range(dtype: DType) -> tuple[int, int]:
    """Inclusive [lo, hi] of an integer (or bool) dtype."""
    if dtype is DType.bool:
        return 0, 1
    bits = dtype.bits
    if dtype.is_signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


class Node:
    """Base of every loop-IR node."""

    __slots__ = ()

    def __str__(self) -> str:
        from compiler.loop.printer import print_node

        return print_node(self)


# ----------------------------------------------------------------------------- expressions


class Expr(Node):
    """Base of expressions. Operators build IR (except `==`, which is structural equality)."""

    __slots__ = ()
    dtype: DType

    @property
    def lanes(self) -> int:
        return 1


ExprLike = Expr | int | float | bool


def _set(node: Node, **values: object) -> None:
    for name, value in values.items():
        object.__setattr__(node, name, value)


@dataclass(frozen=True, slots=True)
class IntImm(Expr):
    """An integer or bool literal. The verifier checks that `value` fits `dtype`."""

    value: int
    dtype: DType = DType.int32

    def __post_init__(self) -> None:
        _set(self, value=int(self.value))


@dataclass(frozen=True, slots=True, eq=False)
class FloatImm(Expr):
    """A float literal; equality is bitwise (so -0.0 != 0.0, and NaN == NaN)."""

    value: float
    dtype: DType = DType.float32

    def __post_init__(self) -> None:
        value = float(self.value)
        _set(self, value=_NAN if math.isnan(value) else value)

    def _key(self) -> tuple[bytes, DType]:
        return struct.pack("<d", self.value), self.dtype

    def __eq__(self, other: object) -> bool:
        return type(other) is FloatImm and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@dataclass(frozen=True, slots=True)
class Var(Expr):
    """A named, immutable value: a scalar parameter, loop variable or let-bound name."""

    name: str
    dtype: DType = DType.int32
    lanes: int = 1


class BinKind(enum.Enum):
    add = "+"
    sub = "-"
    mul = "*"
    div = "/"
    floordiv = "//"
    floormod = "%"
    truncdiv = "truncdiv"
    truncmod = "truncmod"
    min = "min"
    max = "max"
    and_ = "&&"
    or_ = "||"
    bitand = "&"
    bitor = "|"
    bitxor = "^"
    shl = "<<"
    shr = ">>"

    @property
    def label(self) -> str:
        return self.name.rstrip("_")


# Which operand dtypes each operator accepts: "num" = int or float.
BIN_OPERANDS: dict[BinKind, str] = {
    BinKind.add: "num", BinKind.sub: "num", BinKind.mul: "num", BinKind.div: "float",
    BinKind.floordiv: "int", BinKind.floormod: "int", BinKind.truncdiv: "int",
    BinKind.truncmod: "int", BinKind.min: "num", BinKind.max: "num",
    BinKind.and_: "bool", BinKind.or_: "bool", BinKind.bitand: "int", BinKind.bitor: "int",
    BinKind.bitxor: "int", BinKind.shl: "int", BinKind.shr: "int",
}


@dataclass(frozen=True, slots=True)
class BinOp(Expr):
    op: BinKind
    a: Expr
    b: Expr
    dtype: DType = field(init=False, repr=False, compare=False)
    lanes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, dtype=self.a.dtype, lanes=self.a.lanes)


class CmpKind(enum.Enum):
    eq = "=="
    ne = "!="
    lt = "<"
    le = "<="
    gt = ">"
    ge = ">="


@dataclass(frozen=True, slots=True)
class CmpOp(Expr):
    """A comparison; bool-typed. Float comparisons are IEEE (`ne` is true on NaN)."""

    op: CmpKind
    a: Expr
    b: Expr
    lanes: int = field(init=False, repr=False, compare=False)

    @property
    def dtype(self) -> DType:
        return DType.bool

    def __post_init__(self) -> None:
        _set(self, lanes=self.a.lanes)


class UnKind(enum.Enum):
    neg = "-"
    not_ = "!"
    bitnot = "~"

    @property
    def label(self) -> str:
        return self.name.rstrip("_")


UN_OPERANDS: dict[UnKind, str] = {UnKind.neg: "num", UnKind.not_: "bool", UnKind.bitnot: "int"}


@dataclass(frozen=True, slots=True)
class UnOp(Expr):
    op: UnKind
    a: Expr
    dtype: DType = field(init=False, repr=False, compare=False)
    lanes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, dtype=self.a.dtype, lanes=self.a.lanes)


@dataclass(frozen=True, slots=True)
class Select(Expr):
    """`cond ? t : f`, evaluating both arms. A scalar cond may select between vectors."""

    cond: Expr
    t: Expr
    f: Expr
    dtype: DType = field(init=False, repr=False, compare=False)
    lanes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, dtype=self.t.dtype, lanes=self.t.lanes)


@dataclass(frozen=True, slots=True)
class Cast(Expr):
    dtype: DType
    value: Expr
    lanes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, lanes=self.value.lanes)


@dataclass(frozen=True, slots=True)
class Reinterpret(Expr):
    """The bits of `value` read as `dtype` (same width; see `can_reinterpret`)."""

    dtype: DType
    value: Expr
    lanes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, lanes=self.value.lanes)


@dataclass(frozen=True, slots=True)
class Intrinsic:
    """One entry of the intrinsic table. operand: "float" | "int" | "num" | "none" (no
    arguments); result: "same" | "bool" | "void". A void intrinsic is an effect, not a value:
    its call stands alone as `eval name(...)` (typed `VOID_DTYPE`, its value unused), and
    passes never move, merge or drop it (see `is_barrier`)."""

    name: str
    arity: int
    operand: str = "float"
    result: str = "same"
    doc: str = ""

    def result_dtype(self, args: tuple[Expr, ...]) -> DType:
        if self.result == "bool":
            return DType.bool
        if self.result == "void":
            return VOID_DTYPE
        return args[0].dtype


VOID_DTYPE = DType.int32  # the dtype a call of a void intrinsic carries (the IR has no void)


_FLOAT_UNARY = (
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "sin", "cos", "tan",
    "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "erf",
    "floor", "ceil", "trunc",
)
INTRINSICS: dict[str, Intrinsic] = {
    i.name: i
    for i in (
        *(Intrinsic(n, 1) for n in _FLOAT_UNARY),
        Intrinsic("round", 1, doc="round half to even"),
        Intrinsic("abs", 1, "num", doc="integer abs wraps: abs(MIN) == MIN"),
        Intrinsic("isnan", 1, result="bool"),
        Intrinsic("isinf", 1, result="bool"),
        Intrinsic("isfinite", 1, result="bool"),
        Intrinsic("pow", 2),
        Intrinsic("atan2", 2),
        Intrinsic("fmod", 2, doc="C fmod: exact, sign of the dividend"),
        Intrinsic("copysign", 2),
        Intrinsic("hypot", 2),
        Intrinsic("popcount", 1, "int"),
        Intrinsic("barrier", 0, "none", "void",
                  doc="workgroup barrier over shared memory (__syncthreads); a no-op where "
                      "threads run in sequence"),
    )
}


@dataclass(frozen=True, slots=True)
class Call(Expr):
    """A call of an intrinsic from `INTRINSICS`; all arguments share one dtype and lanes."""

    op: str
    args: tuple[Expr, ...]
    dtype: DType
    lanes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, args=tuple(self.args), lanes=self.args[0].lanes if self.args else 1)


@dataclass(frozen=True, slots=True)
class Ramp(Expr):
    """The integer vector `[base, base + stride, ..., base + (lanes - 1) * stride]`."""

    base: Expr
    stride: Expr
    lanes: int
    dtype: DType = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, dtype=self.base.dtype)


@dataclass(frozen=True, slots=True)
class Broadcast(Expr):
    value: Expr
    lanes: int
    dtype: DType = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, dtype=self.value.dtype)


@dataclass(frozen=True, slots=True)
class Let(Expr):
    """`let var = value in body` as an expression."""

    var: Var = field(metadata={"binder": True})
    value: Expr
    body: Expr
    dtype: DType = field(init=False, repr=False, compare=False)
    lanes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, dtype=self.body.dtype, lanes=self.body.lanes)


@dataclass(frozen=True, slots=True)
class Buffer(Node):
    """A multi-dimensional array. `shape` holds integer expressions (usually IntImm)."""

    name: str
    dtype: DType
    shape: tuple[Expr, ...]
    scope: str = "global"

    def __post_init__(self) -> None:
        _set(self, shape=tuple(as_expr(d) for d in self.shape))

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __getitem__(self, index: ExprLike | tuple[ExprLike, ...]) -> BufferLoad:
        idx = index if isinstance(index, tuple) else (index,)
        return BufferLoad(self, tuple(as_expr(i) for i in idx))


@dataclass(frozen=True, slots=True)
class BufferLoad(Expr):
    """Load at a multi-dimensional index; vector indices (all of one lanes) make a vector
    load, and scalar indices are broadcast against them."""

    buffer: Buffer
    indices: tuple[Expr, ...]
    lanes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        indices = tuple(self.indices)
        _set(self, indices=indices, lanes=max((i.lanes for i in indices), default=1))

    @property
    def dtype(self) -> DType:
        return self.buffer.dtype


# ----------------------------------------------------------------------------- statements


class Stmt(Node):
    __slots__ = ()


class ForKind(enum.Enum):
    serial = "serial"
    parallel = "parallel"
    vectorized = "vectorized"
    unrolled = "unrolled"
    thread_binding = "thread_binding"


@dataclass(frozen=True, slots=True)
class For(Stmt):
    """`for var in [min, min + extent)`. Thread-bound loops name their tag in `thread`."""

    var: Var = field(metadata={"binder": True})
    min: Expr
    extent: Expr
    kind: ForKind
    body: Stmt
    thread: str | None = None


@dataclass(frozen=True, slots=True)
class Allocate(Stmt):
    """Scratch memory for `body`; its contents start uninitialised."""

    buffer: Buffer
    body: Stmt


@dataclass(frozen=True, slots=True)
class BufferStore(Stmt):
    buffer: Buffer
    value: Expr
    indices: tuple[Expr, ...]

    def __post_init__(self) -> None:
        _set(self, indices=tuple(self.indices))


@dataclass(frozen=True, slots=True)
class IfThenElse(Stmt):
    cond: Expr
    then: Stmt
    else_: Stmt | None = None


@dataclass(frozen=True, slots=True)
class LetStmt(Stmt):
    var: Var = field(metadata={"binder": True})
    value: Expr
    body: Stmt


@dataclass(frozen=True, slots=True)
class SeqStmt(Stmt):
    stmts: tuple[Stmt, ...]

    def __post_init__(self) -> None:
        _set(self, stmts=tuple(self.stmts))


@dataclass(frozen=True, slots=True)
class Evaluate(Stmt):
    value: Expr


def barrier() -> Evaluate:
    """`eval barrier()`: the threads of a block wait here until all have arrived, and their
    shared-memory writes before it are visible to every thread after it."""
    return Evaluate(Call("barrier", (), VOID_DTYPE))


def is_void_call(e: Node) -> bool:
    """A call of a void intrinsic (`barrier()`)."""
    if not isinstance(e, Call):
        return False
    intr = INTRINSICS.get(e.op)
    return intr is not None and intr.result == "void"


def is_barrier(s: Node) -> bool:
    return isinstance(s, Evaluate) and isinstance(s.value, Call) and s.value.op == "barrier"


@dataclass(frozen=True, slots=True)
class Assert(Stmt):
    """Stops execution (as undefined behaviour, in the interpreter) when `cond` is false."""

    cond: Expr
    message: str


AttrValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class PrimFunc(Node):
    """A kernel: buffer and scalar parameters, a body, and sorted (key, value) attributes."""

    name: str
    params: tuple[Buffer | Var, ...] = field(metadata={"binder": True})
    body: Stmt
    attrs: tuple[tuple[str, AttrValue], ...] = ()

    def __post_init__(self) -> None:
        _set(self, params=tuple(self.params), attrs=tuple(sorted(tuple(self.attrs))))

    def attr(self, key: str, default: AttrValue | None = None) -> AttrValue | None:
        return dict(self.attrs).get(key, default)


# ----------------------------------------------------------------------------- helpers


def as_expr(x: ExprLike, like: Expr | None = None) -> Expr:
    """Python scalars become immediates of `like`'s dtype and lanes (int32/float32 alone)."""
    if isinstance(x, Expr):
        return x
    dtype = like.dtype if like is not None else None
    if isinstance(x, (bool, int)) and dtype is not None and is_float(dtype):
        x = float(x)
    if isinstance(x, float) and dtype is not None and not is_float(dtype):
        dtype = None
    return const(x, dtype, like.lanes if like is not None else 1)


def const(value: int | float | bool, dtype: DType | None = None, lanes: int = 1) -> Expr:
    """An immediate, broadcast when lanes > 1. Floats are rounded to `dtype`; ints must fit."""
    if dtype is None:
        dtype = DType.bool if isinstance(value, bool) else (
            DType.int32 if isinstance(value, int) else DType.float32)
    if is_float(dtype):
        imm: Expr = FloatImm(round_float(float(value), dtype), dtype)
    else:
        lo, hi = int_range(dtype)
        if not lo <= int(value) <= hi or (isinstance(value, float) and value != int(value)):
            raise ValueError(f"{value!r} is not a value of {dtype}")
        imm = IntImm(int(value), dtype)
    return imm if lanes == 1 else Broadcast(imm, lanes)


def _operator(kind: BinKind | CmpKind, reflected: bool = False) -> Callable[..., Expr]:
    node = BinOp if isinstance(kind, BinKind) else CmpOp

    def method(self: Expr, other: ExprLike) -> Expr:
        other = as_expr(other, self)
        return node(kind, other, self) if reflected else node(kind, self, other)

    return method


for _name, _kind in (
    ("add", BinKind.add), ("sub", BinKind.sub), ("mul", BinKind.mul),
    ("truediv", BinKind.div), ("floordiv", BinKind.floordiv), ("mod", BinKind.floormod),
    ("and", BinKind.bitand), ("or", BinKind.bitor), ("xor", BinKind.bitxor),
    ("lshift", BinKind.shl), ("rshift", BinKind.shr),
):
    setattr(Expr, f"__{_name}__", _operator(_kind))
    setattr(Expr, f"__r{_name}__", _operator(_kind, reflected=True))
for _name, _kind in (("lt", CmpKind.lt), ("le", CmpKind.le), ("gt", CmpKind.gt),
                     ("ge", CmpKind.ge)):
    setattr(Expr, f"__{_name}__", _operator(_kind))
Expr.__neg__ = lambda self: UnOp(UnKind.neg, self)  # type: ignore[method-assign]
Expr.__invert__ = lambda self: UnOp(UnKind.bitnot, self)  # type: ignore[method-assign]
