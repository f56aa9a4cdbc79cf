"""Expressions of the C backend: loop-IR expressions -> C text (see `c_emit.py`).

`ExprEmitter.expr(e, lane)` returns C text for `e`, or for lane `lane` (a C expression) of a
vector `e`. A `Let` is hoisted: its declaration is written to the output before the
statement that uses it. Integer add/sub/mul/neg/shl are computed in the dtype's wide
unsigned type (`wide_ctype`) and converted back, so wrap-around is never undefined
behaviour; float16/bfloat16 results are rounded back to their type after every operation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from compiler.codegen.c_helpers import (
    STORAGE_CTYPE,
    VALUE_CTYPE,
    Names,
    float_literal,
    helper_name,
    int_literal,
    wide_ctype,
    wide_literal,
)
from compiler.codegen.c_minifloat import decode_name, encode_name, wrap_name
from compiler.dtypes import DType
from compiler.errors import UnsupportedError
from compiler.loop.ir import (
    BinKind,
    BinOp,
    Broadcast,
    BufferLoad,
    Call,
    Cast,
    CmpOp,
    Expr,
    FloatImm,
    IntImm,
    Let,
    Node,
    PrimFunc,
    Ramp,
    Reinterpret,
    Select,
    UnKind,
    UnOp,
    Var,
    is_float,
    is_int,
    is_minifloat,
    is_narrow_int,
)

D = DType
LANE = "lane"
INDENT = "    "

_WRAP = {BinKind.add: "+", BinKind.sub: "-", BinKind.mul: "*"}
_PLAIN = {BinKind.bitand: "&", BinKind.bitor: "|", BinKind.bitxor: "^", BinKind.shr: ">>",
          BinKind.and_: "&&", BinKind.or_: "||", BinKind.truncdiv: "/",
          BinKind.truncmod: "%"}
_FLOAT_ARITH = {BinKind.add: "+", BinKind.sub: "-", BinKind.mul: "*", BinKind.div: "/"}
_LIBM_NAME = {"round": "rint", "abs": "fabs"}
_EXACT_IN_HALF = frozenset({"floor", "ceil", "trunc", "round", "abs", "copysign", "fmod"})
_WIDE_INDEX = (D.int64, D.uint32, D.uint64)


def strip_parens(text: str) -> str:
    """`text` without one pair of parentheses enclosing all of it."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(text) - 1:
            return text
    return text[1:-1]


@dataclass
class Buf:
    cname: str
    dtype: DType
    strides: list[str]
    wide: bool  # index arithmetic in int64_t


class ExprEmitter:
    """Output lines, scopes and the expression half of a function's emitter."""

    def __init__(self, func: PrimFunc, helpers: set[str]) -> None:
        self.func = func
        self.helpers = helpers
        self.names = Names()
        self.lines: list[str] = []
        self.depth = 1
        self.vars: dict[str, tuple[str, int]] = {}  # IR name -> (C name, lanes)
        self.bufs: dict[str, Buf] = {}

    def line(self, text: str) -> None:
        self.lines.append(INDENT * self.depth + text)

    def use(self, helper: str) -> str:
        self.helpers.add(helper)
        return helper

    def fail(self, node: Node, message: str) -> UnsupportedError:
        return UnsupportedError(f"C backend: {message}: `{str(node).splitlines()[0][:72]}`",
                                where=f"@{self.func.name}")

    # -- scopes and temporaries ---------------------------------------------------------

    def bind_value(self, var: Var, value: Expr) -> str:
        """Declare a (hoisted) let-bound variable; returns its C name."""
        cname = self.names.fresh(var.name)
        if var.lanes == 1:
            self.line(f"const {VALUE_CTYPE[var.dtype]} {cname} = "
                      f"{strip_parens(self.expr(value))};")
        else:
            self.vector_temp(cname, value)
        self.vars[var.name] = (cname, var.lanes)
        return cname

    def unbind(self, name: str) -> None:
        del self.vars[name]

    def vector_temp(self, cname: str, value: Expr) -> None:
        text = strip_parens(self.expr(value, LANE))
        self.line(f"{VALUE_CTYPE[value.dtype]} {cname}[{value.lanes}];")
        self.lane_loop(value.lanes, f"{cname}[{LANE}] = {text};")

    def lane_loop(self, lanes: int, *body: str) -> None:
        self.line(f"for (int {LANE} = 0; {LANE} < {lanes}; ++{LANE}) {{")
        for text in body:
            self.line(INDENT + text)
        self.line("}")

    def offset(self, info: Buf, indices: Sequence[Expr], lane: str | None) -> str:
        terms = []
        for idx, stride in zip(indices, info.strides, strict=True):
            if isinstance(idx, IntImm) and idx.value == 0:
                continue
            text = self.expr(idx, lane)
            if info.wide or idx.dtype in _WIDE_INDEX:
                text = f"(int64_t){text}"
            terms.append(text if stride == "1" else f"{text} * {stride}")
        return " + ".join(terms) or "0"

    def to_value(self, text: str, dtype: DType) -> str:
        if dtype is D.float16:
            return f"{self.use('anv_f16_to_f32')}({text})"
        if dtype is D.bfloat16:
            return f"{self.use('anv_bf16_to_f32')}({text})"
        if is_narrow_int(dtype):  # the low bits of the byte
            return f"{self.use(wrap_name(dtype))}({text})"
        return text

    def to_storage(self, text: str, dtype: DType) -> str:
        if dtype is D.float16:
            return f"{self.use('anv_f32_to_f16')}({text})"
        if dtype is D.bfloat16:
            return f"{self.use('anv_f32_to_bf16')}({text})"
        if is_narrow_int(dtype) and dtype.is_signed:
            return f"(uint8_t)(({text}) & {(1 << dtype.bits) - 1})"
        return text

    def round_half(self, text: str, dtype: DType) -> str:
        """Round a float computed from float16/bfloat16 operands back to their type."""
        if dtype is D.float16:
            return f"{self.use('anv_f16_round')}({strip_parens(text)})"
        if dtype is D.bfloat16:
            return f"{self.use('anv_bf16_round')}({strip_parens(text)})"
        return text

    # -- expressions ---------------------------------------------------------------------

    def expr(self, e: Expr, lane: str | None = None) -> str:
        """C text of `e` (of lane `lane` when `e` is a vector)."""
        if e.lanes == 1:
            lane = None
        if isinstance(e, IntImm):
            return int_literal(e.value, e.dtype)
        if isinstance(e, FloatImm):
            return float_literal(e.value, e.dtype)
        if isinstance(e, Var):
            cname, lanes = self.vars[e.name]
            return cname if lanes == 1 else f"{cname}[{lane}]"
        if isinstance(e, BinOp):
            return self.binop(e, lane)
        if isinstance(e, CmpOp):
            return f"({self.expr(e.a, lane)} {e.op.value} {self.expr(e.b, lane)})"
        if isinstance(e, UnOp):
            return self.unop(e, lane)
        if isinstance(e, Select):
            return (f"({self.expr(e.cond, lane)} ? {self.expr(e.t, lane)} : "
                    f"{self.expr(e.f, lane)})")
        if isinstance(e, Cast):
            return self.convert(self.expr(e.value, lane), e.value.dtype, e.dtype)
        if isinstance(e, Reinterpret):
            return self.reinterpret(e, lane)
        if isinstance(e, Call):
            return self.call(e, lane)
        if isinstance(e, Ramp):
            return self.int_wrap(e, lane)
        if isinstance(e, Broadcast):
            return self.expr(e.value)
        if isinstance(e, BufferLoad):
            info = self.bufs[e.buffer.name]
            return self.to_value(f"{info.cname}[{self.offset(info, e.indices, lane)}]",
                                 info.dtype)
        if isinstance(e, Let):
            self.bind_value(e.var, e.value)
            text = self.expr(e.body, lane)
            self.unbind(e.var.name)
            return text
        raise self.fail(e, f"cannot emit {type(e).__name__}")

    def int_wrap(self, e: Expr, lane: str | None) -> str:
        ct, wide = VALUE_CTYPE[e.dtype], wide_ctype(e.dtype)
        text = self.wrapped(e, lane)
        return text if ct == wide else f"({ct}){text}"

    def wrapped(self, e: Expr, lane: str | None) -> str:
        """`e` computed in its wide unsigned type (see `wide_ctype`), wrapping."""
        if e.lanes == 1:
            lane = None
        if isinstance(e, BinOp) and e.op in _WRAP:
            return f"({self.wrapped(e.a, lane)} {_WRAP[e.op]} {self.wrapped(e.b, lane)})"
        if isinstance(e, BinOp) and e.op is BinKind.shl:
            return f"({self.wrapped(e.a, lane)} << {self.expr(e.b, lane)})"
        if isinstance(e, UnOp) and e.op is UnKind.neg:
            text = self.wrapped(e.a, lane)
            return f"(-({text}))" if text.startswith("-") else f"(-{text})"
        if isinstance(e, IntImm):
            return wide_literal(e.value, e.dtype)
        if isinstance(e, Ramp):
            stride = e.stride
            if isinstance(stride, IntImm) and stride.value == 1:
                step = str(lane)
            else:
                step = f"{lane} * {self.wrapped(stride, None)}"
            return f"({self.wrapped(e.base, None)} + {step})"
        text = self.expr(e, lane)
        return text if VALUE_CTYPE[e.dtype] == wide_ctype(e.dtype) else \
            f"({wide_ctype(e.dtype)}){text}"

    def binop(self, e: BinOp, lane: str | None) -> str:
        op, dt = e.op, e.a.dtype
        if is_int(dt) and (op in _WRAP or op is BinKind.shl):
            return self.int_wrap(e, lane)
        a, b = self.expr(e.a, lane), self.expr(e.b, lane)
        if is_float(dt):
            if op in _FLOAT_ARITH:
                return self.round_half(f"({a} {_FLOAT_ARITH[op]} {b})", dt)
            if op in (BinKind.min, BinKind.max):
                kind = "minimum_f" if op is BinKind.min else "maximum_f"
                return f"{self.use(helper_name(kind, dt))}({a}, {b})"
        elif op in (BinKind.min, BinKind.max):
            return f"{self.use(helper_name(op.name, dt))}({a}, {b})"
        elif op in (BinKind.floordiv, BinKind.floormod):
            if dt.is_signed:
                return f"{self.use(helper_name(op.name, dt))}({a}, {b})"
            return f"({a} {'/' if op is BinKind.floordiv else '%'} {b})"
        if op is BinKind.shr and dt.bits == 64:  # `5 >> 40` would shift a 32-bit int
            a = f"({VALUE_CTYPE[dt]}){a}"
        if op in _PLAIN:
            return f"({a} {_PLAIN[op]} {b})"
        raise self.fail(e, f"no C lowering of {op.label} on {dt.value}")

    def unop(self, e: UnOp, lane: str | None) -> str:
        if e.op is UnKind.not_:
            return f"(!{self.expr(e.a, lane)})"
        if e.op is UnKind.neg:
            if is_int(e.dtype):
                return self.int_wrap(e, lane)
            text = self.expr(e.a, lane)
            return f"(-({text}))" if text.startswith("-") else f"(-{text})"
        ct = VALUE_CTYPE[e.dtype]
        if e.dtype.bits == 64:  # the operand's C type may be a 32-bit int (`~1`)
            return f"(~({ct}){self.expr(e.a, lane)})"
        text = f"~{self.expr(e.a, lane)}"
        return f"({text})" if e.dtype.bits == 32 else f"(({ct}){text})"

    def convert(self, x: str, src: DType, dst: DType) -> str:
        """C text of `x` (a value of `src`) cast to `dst`."""
        if src == dst:
            return x
        if is_minifloat(src):  # through float32, as ml_dtypes converts
            return self.convert(f"{self.use(decode_name(src))}({strip_parens(x)})", D.float32,
                                dst)
        if is_minifloat(dst):
            return f"{self.use(encode_name(dst))}({strip_parens(self.convert(x, src, D.float32))})"
        if is_narrow_int(src):  # held as an int8_t/uint8_t in range
            return self.convert(x, D.int8 if src.is_signed else D.uint8, dst)
        if is_narrow_int(dst):
            via = self.convert(x, src, D.int8 if dst.is_signed else D.uint8)
            return f"{self.use(wrap_name(dst))}((uint8_t){via})"
        if dst is D.bool:
            return f"({x} != 0)"
        if is_int(dst):
            return f"({VALUE_CTYPE[dst]}){x}"  # int -> int wraps; float -> int truncates
        if src is D.bool or is_int(src):
            if dst in (D.float32, D.float64):
                return f"({VALUE_CTYPE[dst]}){x}"  # rounds once, to nearest even
            if dst is D.float16 or src is D.bool:
                # int -> float32 is exact up to 2**24; beyond that float16 overflows anyway.
                return self.round_half(f"(float){x}", dst)
            if src is D.uint64:
                return f"{self.use('anv_bf16_from_u64')}({x})"
            return f"{self.use('anv_bf16_from_i64')}((int64_t){x})"
        if dst is D.float64:
            return f"(double){x}"
        if dst is D.float32:
            return f"(float){x}" if src is D.float64 else x
        if src is D.float64:
            name = "anv_f16_from_f64" if dst is D.float16 else "anv_bf16_from_f64"
            return f"{self.use(name)}({x})"
        return self.round_half(x, dst)

    def reinterpret(self, e: Reinterpret, lane: str | None) -> str:
        """The stored bits of the value, read as the other type's stored bits."""
        src, dst = e.value.dtype, e.dtype
        x = self.to_storage(strip_parens(self.expr(e.value, lane)), src)
        a, b = STORAGE_CTYPE[src], STORAGE_CTYPE[dst]
        if a == b:
            bits = x
        elif "float" in (a, b) or "double" in (a, b):
            bits = f"((union {{ {a} a; {b} b; }}){{ .a = {x} }}).b"
        else:
            bits = f"(({b}){x})"  # integers of one width: modular
        return self.to_value(bits, dst)

    def call(self, e: Call, lane: str | None) -> str:
        dt, op = e.args[0].dtype, e.op
        raw = [self.expr(a, lane) for a in e.args]
        args = [strip_parens(a) for a in raw]
        if is_int(dt):
            ct = VALUE_CTYPE[dt]
            if op == "abs":
                return f"{self.use(helper_name('abs', dt))}({args[0]})" if dt.is_signed \
                    else raw[0]
            if op == "popcount" and dt.bits == 64:
                return f"(({ct})__builtin_popcountll((uint64_t){raw[0]}))"
            if op == "popcount":
                return f"(({ct})__builtin_popcount((uint{dt.bits}_t){raw[0]}))"
            raise self.fail(e, f"intrinsic {op} on {dt.value}")
        if op in ("isnan", "isinf", "isfinite"):
            return f"({op}({args[0]}) != 0)"
        if op == "erf":  # the interpreter computes erf in float64 and rounds once
            if dt is D.float64:
                return f"erf({args[0]})"
            x = f"erf((double){raw[0]})"
            if dt is D.float32:
                return f"(float){x}"
            name = "anv_f16_from_f64" if dt is D.float16 else "anv_bf16_from_f64"
            return f"{self.use(name)}({x})"
        name = _LIBM_NAME.get(op, op)
        text = f"{name if dt is D.float64 else name + 'f'}({', '.join(args)})"
        return text if op in _EXACT_IN_HALF else self.round_half(text, dt)
