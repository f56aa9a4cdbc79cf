"""Text form of the loop IR (`.lir`). `parse(print_func(f)) == f` for verifier-clean `f`.

```
# header comments are ignored by the parser
func @add(A: float32[4, 8], B: float32[4, 8], C: float32[4, 8]) {
  for i in serial(0, 4) {
    for j in vectorized(0, 8) {
      C[i, j] = A[i, j] + B[i, j]
    }
  }
}
```

- Literals: `3` is int32, `2.5` is float32; other dtypes take a suffix (`3i64`, `7u8`,
  `2.5f64`, `1.0bf16`, `inff16`, `nanf64`); bools are `true`/`false`. Float literals are the
  shortest text that reads back to the exact value; `-0.0` stays `-0.0`.
- Types: `int32`, `float32x4` (4 lanes). Buffers: `[scope] dtype[dims]`, scope omitted when
  global. Scalar parameters: `n: int32`.
- Operators, loosest first: `||`, `&&`, `|`, `^`, `&`, `== !=`, `< <= > >=`, `<< >>`,
  `+ -`, `* / // %` (`//` and `%` are floordiv/floormod), unary `- ! ~`. Other operations
  are calls: `min`, `max`, `truncdiv`, `truncmod`, `select(c, a, b)`, `float32(x)` (cast),
  `reinterpret<int32>(x)` (the bits of `x` read as int32),
  `ramp(base, stride, lanes)`, `broadcast(x, lanes)`, intrinsics (`exp(x)`), and
  `(let x = v in e)`.
- Statements: `for i in serial(0, n) {..}` (kinds serial, parallel, vectorized, unrolled, or a
  thread tag such as `threadIdx.x`), `alloc T: local float32[16] {..}`, `A[i] = e`,
  `if c {..} else {..}`, `let x = e {..}`, `assert c, "message"`, `eval e`, `seq {..}`.
  A binder gets a type annotation (`for i: int64 in ...`) only when the value does not
  determine it. A block of one statement is that statement; `seq {..}` is an explicit
  SeqStmt (printed only where a block could not express it).
- Names that are not plain identifiers, or that are reserved words, are written as JSON
  strings: `"my var"[i]`.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Sequence

from compiler.dtypes import DType
from compiler.loop.ir import (
    FLOAT_DTYPES,
    INTRINSICS,
    SCOPES,
    Allocate,
    Assert,
    AttrValue,
    BinKind,
    BinOp,
    Broadcast,
    Buffer,
    BufferLoad,
    BufferStore,
    Call,
    Cast,
    CmpKind,
    CmpOp,
    Evaluate,
    Expr,
    FloatImm,
    For,
    ForKind,
    IfThenElse,
    IntImm,
    Let,
    LetStmt,
    Node,
    PrimFunc,
    Ramp,
    Reinterpret,
    Select,
    SeqStmt,
    Stmt,
    UnOp,
    Var,
)
from compiler.loop.numeric import round_float

SUFFIX: dict[DType, str] = {
    DType.int8: "i8", DType.int16: "i16", DType.int32: "", DType.int64: "i64",
    DType.uint8: "u8", DType.uint16: "u16", DType.uint32: "u32", DType.uint64: "u64",
    DType.float16: "f16", DType.bfloat16: "bf16", DType.float32: "", DType.float64: "f64",
}
SUFFIX_DTYPE: dict[str, DType] = {
    **{s: d for d, s in SUFFIX.items() if s}, "i32": DType.int32, "f32": DType.float32,
}

IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
FLOAT_WORD_RE = re.compile(r"(inf|nan)(bf16|f16|f32|f64)?")
_FLOAT_TEXT_RE = re.compile(r"-?\d+(\.\d*)?(e[+-]?\d+)?")

LOOP_KINDS = ("serial", "parallel", "vectorized", "unrolled", "thread_binding")
BUILTINS = ("select", "ramp", "broadcast", "min", "max", "truncdiv", "truncmod",
            "reinterpret")
KEYWORDS = ("func", "attrs", "for", "in", "alloc", "if", "else", "let", "assert", "eval", "seq",
            "true", "false")
RESERVED = frozenset(
    (*KEYWORDS, *BUILTINS, *LOOP_KINDS, *SCOPES, *INTRINSICS, *(d.value for d in DType))
)

# Binding strength of infix operators; calls, names and literals bind tightest.
PREC: dict[BinKind | CmpKind, int] = {
    BinKind.or_: 1, BinKind.and_: 2, BinKind.bitor: 3, BinKind.bitxor: 4, BinKind.bitand: 5,
    CmpKind.eq: 6, CmpKind.ne: 6,
    CmpKind.lt: 7, CmpKind.le: 7, CmpKind.gt: 7, CmpKind.ge: 7,
    BinKind.shl: 8, BinKind.shr: 8, BinKind.add: 9, BinKind.sub: 9,
    BinKind.mul: 10, BinKind.div: 10, BinKind.floordiv: 10, BinKind.floormod: 10,
}
UNARY_PREC = 11
ATOM_PREC = 12


def format_name(name: str) -> str:
    ok = IDENT_RE.fullmatch(name) and name not in RESERVED and not FLOAT_WORD_RE.fullmatch(name)
    return name if ok else json.dumps(name)


def format_type(dtype: DType, lanes: int = 1) -> str:
    return dtype.value if lanes == 1 else f"{dtype.value}x{lanes}"


def parse_float(text: str, dtype: DType) -> float:
    """The value of a non-negative decimal float literal rounded to `dtype`."""
    return round_float(float(text), dtype)


def _float_bits(v: float) -> bytes:
    return struct.pack("<d", v)


def format_float(value: float, dtype: DType) -> str:
    suffix = SUFFIX.get(dtype, f"<{dtype.value}>")
    if math.isnan(value):
        return "nan" + suffix
    if math.isinf(value):
        return ("inf" if value > 0 else "-inf") + suffix
    text = repr(value)
    if dtype in FLOAT_DTYPES and dtype is not DType.float64:
        short = str(dtype.np.type(value))
        if _FLOAT_TEXT_RE.fullmatch(short):
            sign = -1.0 if short.startswith("-") else 1.0
            if _float_bits(sign * parse_float(short.lstrip("-"), dtype)) == _float_bits(value):
                text = short
    if "." not in text and "e" not in text:
        text += ".0"
    return text + suffix


def format_int(value: int, dtype: DType) -> str:
    if dtype is DType.bool:
        return {0: "false", 1: "true"}.get(value, f"{value}<bool>")
    return f"{value}{SUFFIX.get(dtype, f'<{dtype.value}>')}"


def _binder(var: Var, value: Expr) -> str:
    same = var.dtype == value.dtype and var.lanes == value.lanes
    return format_name(var.name) + ("" if same else f": {format_type(var.dtype, var.lanes)}")


def _args(*parts: Expr | str) -> str:
    return ", ".join(p if isinstance(p, str) else print_expr(p) for p in parts)


def _expr(e: Expr) -> tuple[str, int]:
    """Text of `e` and its binding strength."""
    if isinstance(e, IntImm):
        return format_int(e.value, e.dtype), ATOM_PREC
    if isinstance(e, FloatImm):
        return format_float(e.value, e.dtype), ATOM_PREC
    if isinstance(e, Var):
        return format_name(e.name), ATOM_PREC
    if isinstance(e, (BinOp, CmpOp)) and e.op in PREC:
        prec = PREC[e.op]
        left, lp = _expr(e.a)
        right, rp = _expr(e.b)
        left = left if lp >= prec else f"({left})"
        right = right if rp > prec else f"({right})"
        return f"{left} {e.op.value} {right}", prec
    if isinstance(e, BinOp):
        return f"{e.op.value}({_args(e.a, e.b)})", ATOM_PREC
    if isinstance(e, UnOp):
        inner, ip = _expr(e.a)
        if ip < UNARY_PREC or isinstance(e.a, (IntImm, FloatImm)) or inner.startswith("-"):
            inner = f"({inner})"
        return f"{e.op.value}{inner}", UNARY_PREC
    if isinstance(e, Select):
        return f"select({_args(e.cond, e.t, e.f)})", ATOM_PREC
    if isinstance(e, Cast):
        return f"{e.dtype.value}({print_expr(e.value)})", ATOM_PREC
    if isinstance(e, Reinterpret):
        return f"reinterpret<{e.dtype.value}>({print_expr(e.value)})", ATOM_PREC
    if isinstance(e, Call):
        return f"{e.op}({_args(*e.args)})", ATOM_PREC
    if isinstance(e, Ramp):
        return f"ramp({_args(e.base, e.stride, str(e.lanes))})", ATOM_PREC
    if isinstance(e, Broadcast):
        return f"broadcast({_args(e.value, str(e.lanes))})", ATOM_PREC
    if isinstance(e, BufferLoad):
        return f"{format_name(e.buffer.name)}[{_args(*e.indices)}]", ATOM_PREC
    if isinstance(e, Let):
        text = f"(let {_binder(e.var, e.value)} = {print_expr(e.value)} in {print_expr(e.body)})"
        return text, ATOM_PREC
    return f"<{type(e).__name__}>", ATOM_PREC


def print_expr(e: Expr) -> str:
    return _expr(e)[0]


def format_buffer_type(buf: Buffer) -> str:
    scope = "" if buf.scope == "global" else (
        buf.scope + " " if buf.scope in SCOPES else json.dumps(buf.scope) + " ")
    return f"{scope}{buf.dtype.value}[{_args(*buf.shape)}]"


def _kind(loop: For) -> str:
    if loop.kind is not ForKind.thread_binding or loop.thread is None:
        return loop.kind.value
    return format_name(loop.thread)


class _Printer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, depth: int, text: str) -> None:
        self.lines.append("  " * depth + text)

    def block(self, body: Stmt, depth: int) -> None:
        """Statements of a `{ ... }` block (the caller prints the braces)."""
        if isinstance(body, SeqStmt) and len(body.stmts) != 1:
            for s in body.stmts:
                self.stmt(s, depth)
        else:
            self.stmt(body, depth)

    def opened(self, depth: int, head: str, body: Stmt, tail: str = "}") -> None:
        self.line(depth, head + " {")
        self.block(body, depth + 1)
        self.line(depth, tail)

    def stmt(self, s: Stmt, depth: int) -> None:
        if isinstance(s, SeqStmt):
            self.line(depth, "seq {")
            for inner in s.stmts:
                self.stmt(inner, depth + 1)
            self.line(depth, "}")
        elif isinstance(s, For):
            head = f"for {_binder(s.var, s.min)} in {_kind(s)}({_args(s.min, s.extent)})"
            self.opened(depth, head, s.body)
        elif isinstance(s, Allocate):
            buf = s.buffer
            scope = buf.scope if buf.scope in SCOPES else json.dumps(buf.scope)
            head = f"alloc {format_name(buf.name)}: {scope} {buf.dtype.value}[{_args(*buf.shape)}]"
            self.opened(depth, head, s.body)
        elif isinstance(s, BufferStore):
            target = f"{format_name(s.buffer.name)}[{_args(*s.indices)}]"
            self.line(depth, f"{target} = {print_expr(s.value)}")
        elif isinstance(s, IfThenElse):
            head = f"if {print_expr(s.cond)}"
            if s.else_ is None:
                self.opened(depth, head, s.then)
            else:
                self.opened(depth, head, s.then, "} else {")
                self.block(s.else_, depth + 1)
                self.line(depth, "}")
        elif isinstance(s, LetStmt):
            self.opened(depth, f"let {_binder(s.var, s.value)} = {print_expr(s.value)}", s.body)
        elif isinstance(s, Evaluate):
            self.line(depth, f"eval {print_expr(s.value)}")
        elif isinstance(s, Assert):
            self.line(depth, f"assert {print_expr(s.cond)}, {json.dumps(s.message)}")
        else:
            self.line(depth, f"<{type(s).__name__}>")


def format_attr_value(value: AttrValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float):
        text = repr(value)
        if text in ("inf", "-inf", "nan") or "." in text or "e" in text:
            return text
        return text + ".0"
    return str(value)


def format_param(p: Buffer | Var) -> str:
    if isinstance(p, Var):
        return f"{format_name(p.name)}: {format_type(p.dtype, p.lanes)}"
    return f"{format_name(p.name)}: {format_buffer_type(p)}"


def print_stmt(s: Stmt, depth: int = 0) -> str:
    printer = _Printer()
    printer.stmt(s, depth)
    return "\n".join(printer.lines)


def print_func(f: PrimFunc, header: Sequence[str] = ()) -> str:
    """The text of one function, preceded by `# ` header comment lines."""
    printer = _Printer()
    for h in header:
        printer.lines.append(f"# {h}".rstrip())
    params = ", ".join(format_param(p) for p in f.params)
    attrs = ""
    if f.attrs:
        items = ", ".join(f"{format_name(k)} = {format_attr_value(v)}" for k, v in f.attrs)
        attrs = f" attrs {{{items}}}"
    printer.opened(0, f"func @{format_name(f.name)}({params}){attrs}", f.body)
    return "\n".join(printer.lines) + "\n"


def print_module(funcs: Sequence[PrimFunc], header: Sequence[str] = ()) -> str:
    head = "".join(f"# {h}\n" for h in header)
    return head + "\n".join(print_func(f) for f in funcs)


def print_node(node: Node) -> str:
    """Any node's text (used by `str()` and in error messages)."""
    if isinstance(node, PrimFunc):
        return print_func(node).rstrip("\n")
    if isinstance(node, Stmt):
        return print_stmt(node)
    if isinstance(node, Expr):
        return print_expr(node)
    if isinstance(node, Buffer):
        return f"{format_name(node.name)}: {format_buffer_type(node)}"
    return repr(node)
