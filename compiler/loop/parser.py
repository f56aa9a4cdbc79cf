"""Parser for the loop-IR text form written by `printer.py`.

`parse(text)` reads exactly one function and `parse_module(text)` any number. Errors are
`ParseError`s whose line reads `LINE:COL: message`. The parser resolves names and builds
nodes but does not type-check: ill-typed programs parse, and the verifier rejects them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from compiler.dtypes import DType
from compiler.errors import ParseError
from compiler.loop.ir import (
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
    PrimFunc,
    Ramp,
    Reinterpret,
    Select,
    SeqStmt,
    Stmt,
    UnKind,
    UnOp,
    Var,
    is_float,
)
from compiler.loop.printer import FLOAT_WORD_RE, PREC, SUFFIX_DTYPE, parse_float

_TOKEN_RE = re.compile(
    r"""(?P<space>[ \t\r\n]+|\#[^\n]*)
    |(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?[A-Za-z0-9_]*)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    |(?P<str>"(?:[^"\\\n]|\\.)*")
    |(?P<op>\|\||&&|==|!=|<=|>=|<<|>>|//|[-+*/%<>!~&|^()\[\]{},:=@])""",
    re.X,
)
_NUM_RE = re.compile(r"(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)([A-Za-z0-9_]*)")
_DTYPES = {d.value: d for d in DType}
_BINARY: dict[str, BinKind | CmpKind] = {k.value: k for k in PREC}
_CALL_BINOPS = {k.value: k for k in (BinKind.min, BinKind.max, BinKind.truncdiv,
                                     BinKind.truncmod)}
_LOOP_KINDS = {k.value: k for k in ForKind}
_UNARY = {k.value: k for k in UnKind}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "num" | "ident" | "str" | "op" | "eof"
    text: str
    start: int
    end: int


class _Parser:
    def __init__(self, text: str, source: str | None) -> None:
        self.text = text
        self.source = source
        self.tokens = self._lex(text)
        self.i = 0
        self.scopes: list[dict[str, Var | Buffer]] = []

    # -- tokens ------------------------------------------------------------------------

    def _lex(self, text: str) -> list[Token]:
        tokens = []
        pos = 0
        while pos < len(text):
            m = _TOKEN_RE.match(text, pos)
            if m is None:
                raise self.error(f"unexpected character {text[pos]!r}", pos)
            kind = m.lastgroup or ""
            if kind != "space":
                tokens.append(Token(kind, m.group(), m.start(), m.end()))
            pos = m.end()
        tokens.append(Token("eof", "end of input", len(text), len(text)))
        return tokens

    def error(self, message: str, pos: int | None = None) -> ParseError:
        if pos is None:
            pos = self.tokens[self.i].start
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        where = f"{line}:{col}" if self.source is None else f"{self.source}:{line}:{col}"
        return ParseError(message, where)

    def peek(self, k: int = 0) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def at(self, text: str) -> bool:
        tok = self.peek()
        return tok.text == text and tok.kind in ("op", "ident")

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.next()
            return True
        return False

    def expect(self, text: str) -> Token:
        if not self.at(text):
            raise self.error(f"expected '{text}', found {self._show(self.peek())}")
        return self.next()

    @staticmethod
    def _show(tok: Token) -> str:
        return tok.text if tok.kind == "eof" else f"'{tok.text}'"

    def name(self) -> str:
        tok = self.next()
        if tok.kind == "ident":
            return tok.text
        if tok.kind == "str":
            return self.string(tok)
        raise self.error(f"expected a name, found {self._show(tok)}", tok.start)

    def string(self, tok) -> str:
        try:
            return json.loads(tok.text)
        except json.JSONDecodeError as err:
            raise self.error(f"bad string literal: {err.msg}", tok.start) from None

    def int_token(self) -> int:
        tok = self.next()
        if tok.kind != "num" or not tok.text.isdigit():
            raise self.error(f"expected an integer, found {self._show(tok)}", tok.start)
        return int(tok.text)

    # -- scopes ------------------------------------------------------------------------

    def lookup(self, name: str, tok: Token) -> Var | Buffer:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise self.error(f"undefined name '{name}'", tok.start)

    def bind(self, item: Var | Buffer) -> None:
        self.scopes[-1][item.name] = item

    # -- types -------------------------------------------------------------------------

    def dtype(self) -> tuple[DType, int]:
        tok = self.next()
        m = re.fullmatch(r"(\w+?)x(\d+)", tok.text)
        if tok.kind == "ident" and m and m.group(1) in _DTYPES:
            return _DTYPES[m.group(1)], int(m.group(2))
        if tok.kind == "ident" and tok.text in _DTYPES:
            return _DTYPES[tok.text], 1
        raise self.error(f"expected a type, found {self._show(tok)}", tok.start)

    def buffer_type(self, name: str, scope_required: bool = False) -> Buffer:
        scope = "global"
        tok = self.peek()
        if (tok.kind == "ident" and tok.text in SCOPES) or tok.kind == "str":
            scope = self.name()
        elif scope_required:
            raise self.error(f"expected a memory scope, found {self._show(tok)}")
        dtype, lanes = self.dtype()
        if lanes != 1:
            raise self.error("buffer element types are scalar")
        self.expect("[")
        shape = self.exprs("]")
        return Buffer(name, dtype, shape, scope)

    def binder(self, default: Expr) -> Var:
        name = self.name()
        if self.accept(":"):
            dtype, lanes = self.dtype()
            return Var(name, dtype, lanes)
        return Var(name, default.dtype, default.lanes)

    # -- functions ---------------------------------------------------------------------

    def module(self) -> tuple[PrimFunc, ...]:
        funcs = []
        while self.peek().kind != "eof":
            funcs.append(self.func())
        return tuple(funcs)

    def func(self) -> PrimFunc:
        self.expect("func")
        self.expect("@")
        name = self.name()
        self.expect("(")
        self.scopes.append({})
        for var in self._scan_scalar_params():
            self.bind(var)
        params: list[Buffer | Var] = []
        while not self.at(")"):
            if params:
                self.expect(",")
            pname = self.name()
            self.expect(":")
            tok, after = self.peek(), self.peek(1)
            if tok.kind == "str" or tok.text in SCOPES or after.text == "[":
                params.append(self.buffer_type(pname))
            else:
                dtype, lanes = self.dtype()
                params.append(Var(pname, dtype, lanes))
            self.bind(params[-1])
        self.expect(")")
        attrs: list[tuple[str, AttrValue]] = []
        if self.accept("attrs"):
            self.expect("{")
            while not self.at("}"):
                if attrs:
                    self.expect(",")
                key = self.name()
                self.expect("=")
                attrs.append((key, self.attr_value()))
            self.expect("}")
        body = self.block()
        self.scopes.pop()
        return PrimFunc(name, tuple(params), body, tuple(attrs))

    def _scan_scalar_params(self) -> list[Var]:
        """Scalar params (`n: int32`) are visible in every buffer shape of the list, so they
        are collected by a look-ahead over the tokens up to the closing parenthesis."""
        found, depth, segment = [], 0, []
        for tok in self.tokens[self.i:]:
            if tok.kind == "op" and depth == 0 and tok.text in (",", ")"):
                if len(segment) == 3 and segment[1].text == ":" and segment[0].kind in (
                        "ident", "str") and segment[2].kind == "ident":
                    m = re.fullmatch(r"(\w+?)(?:x(\d+))?", segment[2].text)
                    if m and m.group(1) in _DTYPES:
                        name = segment[0].text if segment[0].kind == "ident" else \
                            self.string(segment[0])
                        found.append(Var(name, _DTYPES[m.group(1)], int(m.group(2) or 1)))
                if tok.text == ")":
                    break
                segment = []
                continue
            if tok.kind == "op":
                depth += tok.text in "([{"
                depth -= tok.text in ")]}"
            segment.append(tok)
        return found

    def attr_value(self) -> AttrValue:
        tok = self.next()
        if tok.kind == "str":
            return self.string(tok)
        if tok.text in ("true", "false"):
            return tok.text == "true"
        sign = 1
        if tok.text == "-":
            sign, tok = -1, self.next()
        if tok.text in ("inf", "nan"):
            return sign * float(tok.text)
        if tok.kind == "num" and re.fullmatch(r"\d+", tok.text):
            return sign * int(tok.text)
        if tok.kind == "num" and _NUM_RE.fullmatch(tok.text).group(2) == "":
            return sign * float(tok.text)
        raise self.error(f"expected an attribute value, found {self._show(tok)}", tok.start)

    # -- statements --------------------------------------------------------------------

    def block(self) -> Stmt:
        stmts = self.stmt_list()
        return stmts[0] if len(stmts) == 1 else SeqStmt(tuple(stmts))

    def stmt_list(self) -> list[Stmt]:
        self.expect("{")
        stmts = []
        while not self.at("}"):
            if self.peek().kind == "eof":
                raise self.error("expected '}', found end of input")
            stmts.append(self.stmt())
        self.next()
        return stmts

    def scoped_block(self, item: Var | Buffer) -> Stmt:
        self.scopes.append({item.name: item})
        try:
            return self.block()
        finally:
            self.scopes.pop()

    def stmt(self) -> Stmt:
        tok = self.peek()
        word = tok.text if tok.kind == "ident" else None
        if word == "for":
            self.next()
            save = self.i
            self.name()
            if self.accept(":"):
                self.dtype()
            self.expect("in")
            kind_tok = self.peek()
            kind_name = self.name()
            self.expect("(")
            lo = self.expr()
            self.expect(",")
            extent = self.expr()
            self.expect(")")
            end = self.i
            self.i = save
            var = self.binder(lo)
            self.i = end
            kind = _LOOP_KINDS.get(kind_name) if kind_tok.kind == "ident" else None
            thread = None if kind is not None else kind_name
            body = self.scoped_block(var)
            return For(var, lo, extent, kind or ForKind.thread_binding, body, thread)
        if word == "alloc":
            self.next()
            name = self.name()
            self.expect(":")
            buf = self.buffer_type(name)
            return Allocate(buf, self.scoped_block(buf))
        if word == "if":
            self.next()
            cond = self.expr()
            then = self.block()
            else_ = self.block() if self.accept("else") else None
            return IfThenElse(cond, then, else_)
        if word == "let":
            self.next()
            save = self.i
            self.name()
            if self.accept(":"):
                self.dtype()
            self.expect("=")
            value = self.expr()
            end = self.i
            self.i = save
            var = self.binder(value)
            self.i = end
            return LetStmt(var, value, self.scoped_block(var))
        if word == "assert":
            self.next()
            cond = self.expr()
            self.expect(",")
            msg = self.next()
            if msg.kind != "str":
                raise self.error(f"expected a message string, found {self._show(msg)}",
                                 msg.start)
            return Assert(cond, self.string(msg))
        if word == "eval":
            self.next()
            return Evaluate(self.expr())
        if word == "seq":
            self.next()
            return SeqStmt(tuple(self.stmt_list()))
        if tok.kind in ("ident", "str") and self.peek(1).text == "[":
            buf = self.lookup(self.name(), tok)
            if not isinstance(buf, Buffer):
                raise self.error(f"'{buf.name}' is a variable, not a buffer", tok.start)
            self.expect("[")
            indices = self.exprs("]")
            self.expect("=")
            return BufferStore(buf, self.expr(), indices)
        raise self.error(f"expected a statement, found {self._show(tok)}")

    # -- expressions -------------------------------------------------------------------

    def exprs(self, close: str) -> tuple[Expr, ...]:
        out: list[Expr] = []
        while not self.at(close):
            if out:
                self.expect(",")
            out.append(self.expr())
        self.next()
        return tuple(out)

    def expr(self, min_prec: int = 1) -> Expr:
        left = self.unary()
        while True:
            tok = self.peek()
            kind = _BINARY.get(tok.text) if tok.kind == "op" else None
            if kind is None or PREC[kind] < min_prec:
                return left
            self.next()
            right = self.expr(PREC[kind] + 1)
            left = BinOp(kind, left, right) if isinstance(kind, BinKind) else \
                CmpOp(kind, left, right)

    def unary(self) -> Expr:
        tok = self.peek()
        if tok.kind == "op" and tok.text in _UNARY:
            self.next()
            nxt = self.peek()
            literal = nxt.kind == "num" or (nxt.kind == "ident" and FLOAT_WORD_RE.fullmatch(
                nxt.text))
            if tok.text == "-" and literal and nxt.start == tok.end:
                self.next()
                return self.literal(nxt, negative=True)
            return UnOp(_UNARY[tok.text], self.unary())
        return self.primary()

    def literal(self, tok: Token, negative: bool = False) -> Expr:
        m = FLOAT_WORD_RE.fullmatch(tok.text)
        if tok.kind == "ident" and m:
            dtype = SUFFIX_DTYPE[m.group(2)] if m.group(2) else DType.float32
            value = float(m.group(1))
            return FloatImm(-value if negative else value, dtype)
        m = _NUM_RE.fullmatch(tok.text)
        digits, suffix = m.group(1), m.group(2)
        if suffix and suffix not in SUFFIX_DTYPE:
            raise self.error(f"unknown literal suffix '{suffix}'", tok.start)
        floaty = "." in digits or "e" in digits.lower()
        dtype = SUFFIX_DTYPE.get(suffix) or (DType.float32 if floaty else DType.int32)
        if is_float(dtype):
            value = parse_float(digits, dtype)
            return FloatImm(-value if negative else value, dtype)
        if floaty:
            raise self.error(f"'{tok.text}' is not an integer", tok.start)
        return IntImm(-int(digits) if negative else int(digits), dtype)

    def call_args(self) -> tuple[Expr, ...]:
        self.expect("(")
        return self.exprs(")")

    def primary(self) -> Expr:
        tok = self.next()
        if tok.kind == "num":
            return self.literal(tok)
        if tok.text == "(" and tok.kind == "op":
            if self.accept("let"):
                save = self.i
                self.name()
                if self.accept(":"):
                    self.dtype()
                self.expect("=")
                value = self.expr()
                end = self.i
                self.i = save
                var = self.binder(value)
                self.i = end
                self.expect("in")
                self.scopes.append({var.name: var})
                body = self.expr()
                self.scopes.pop()
                self.expect(")")
                return Let(var, value, body)
            inner = self.expr()
            self.expect(")")
            return inner
        if tok.kind == "ident":
            word = tok.text
            if word in ("true", "false"):
                return IntImm(int(word == "true"), DType.bool)
            if FLOAT_WORD_RE.fullmatch(word):
                return self.literal(tok)
            if word == "reinterpret":
                return self.reinterpret()
            if self.at("("):
                return self.call_like(tok)
        if tok.kind in ("ident", "str"):
            name = tok.text if tok.kind == "ident" else self.string(tok)
            item = self.lookup(name, tok)
            if isinstance(item, Var):
                if self.at("["):
                    raise self.error(f"'{name}' is a variable, not a buffer")
                return item
            self.expect("[")
            return BufferLoad(item, self.exprs("]"))
        raise self.error(f"expected an expression, found {self._show(tok)}", tok.start)

    def reinterpret(self) -> Expr:
        """`reinterpret<dtype>(x)`, after the word."""
        self.expect("<")
        tok = self.peek()
        dtype, lanes = self.dtype()
        if lanes != 1:
            raise self.error("reinterpret takes a scalar type (the lanes are x's)", tok.start)
        self.expect(">")
        self.expect("(")
        value = self.expr()
        self.expect(")")
        return Reinterpret(dtype, value)

    def call_like(self, tok: Token) -> Expr:
        word = tok.text
        if word == "select":
            args = self.call_args()
            self._arity(tok, args, 3)
            return Select(*args)
        if word in ("ramp", "broadcast"):
            self.expect("(")
            parts = [self.expr()]
            self.expect(",")
            if word == "ramp":
                parts.append(self.expr())
                self.expect(",")
            lanes = self.int_token()
            self.expect(")")
            return Ramp(parts[0], parts[1], lanes) if word == "ramp" else \
                Broadcast(parts[0], lanes)
        if word in _CALL_BINOPS:
            args = self.call_args()
            self._arity(tok, args, 2)
            return BinOp(_CALL_BINOPS[word], *args)
        if word in _DTYPES:
            args = self.call_args()
            self._arity(tok, args, 1)
            return Cast(_DTYPES[word], args[0])
        if word in INTRINSICS:
            args = self.call_args()
            self._arity(tok, args, INTRINSICS[word].arity)
            return Call(word, args, INTRINSICS[word].result_dtype(args))
        raise self.error(f"unknown function '{word}'", tok.start)

    def _arity(self, tok: Token, args: tuple[Expr, ...], n: int) -> None:
        if len(args) != n:
            raise self.error(f"'{tok.text}' takes {n} argument{'s' * (n != 1)}, got "
                             f"{len(args)}", tok.start)


def parse_module(text: str, source: str | None = None) -> tuple[PrimFunc, ...]:
    """Every function in `text`, in order."""
    return _Parser(text, source).module()


def parse(text: str, source: str | None = None) -> PrimFunc:
    """The one function in `text`."""
    parser = _Parser(text, source)
    funcs = parser.module()
    if len(funcs) != 1:
        raise parser.error(f"expected exactly one function, found {len(funcs)}", 0)
    return funcs[0]


def parse_expr(text: str, names: Iterable[Var | Buffer] = (), source: str | None = None) -> Expr:
    """One expression over the given variables and buffers."""
    parser = _Parser(text, source)
    parser.scopes.append({n.name: n for n in names})
    expr = parser.expr()
    if parser.peek().kind != "eof":
        raise parser.error(f"unexpected {parser._show(parser.peek())} after expression")
    return expr
