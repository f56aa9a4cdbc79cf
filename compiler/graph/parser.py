"""Parser for the graph IR text form written by `printer.py`.

Errors are `ParseError("line:col: message")`. Types of bound values are taken from the text;
the verifier (not the parser) checks that they agree with the ops' type relations.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ParseError
from compiler.graph.ir import (
    UNKNOWN,
    Binding,
    Call,
    Const,
    Function,
    Module,
    Tensor,
    TensorType,
    Var,
)

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+|\#[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<float>-?(?:\d+\.\d*(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|inf\b)|nan\b)
  | (?P<int>-?\d+)
  | (?P<pct>%)
  | (?P<at>@)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[()\[\]{},=:<>?*_])
    """,
    re.VERBOSE,
)


class _Tok:
    __slots__ = ("kind", "text", "pos")

    def __init__(self, kind: str, text: str, pos: int):
        self.kind, self.text, self.pos = kind, text, pos


def _tokenize(src: str) -> list[_Tok]:
    toks, pos = [], 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m:
            raise ParseError(f"{_loc(src, pos)}: unexpected character {src[pos]!r}")
        kind = m.lastgroup
        if kind != "ws":
            text = m.group()
            if kind == "ident" and text == "_":
                kind = "punct"
            toks.append(_Tok(kind, text, pos))
        pos = m.end()
    toks.append(_Tok("eof", "", len(src)))
    return toks


def _loc(src: str, pos: int) -> str:
    line = src.count("\n", 0, pos) + 1
    col = pos - (src.rfind("\n", 0, pos) + 1) + 1
    return f"{line}:{col}"


class _Parser:
    def __init__(self, src: str):
        self.src = src
        body, self.blobs = _split_blobs(src)
        self.toks = _tokenize(body)
        self.i = 0

    # -- token helpers ------------------------------------------------------------------
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def error(self, msg: str, tok: _Tok | None = None) -> ParseError:
        t = tok or self.tok
        return ParseError(f"{_loc(self.src, t.pos)}: {msg}")

    def next(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def at(self, text: str) -> bool:
        return self.tok.text == text and self.tok.kind in ("punct", "ident")

    def expect(self, text: str) -> _Tok:
        if not self.at(text):
            found = self.tok.text or "end of input"
            raise self.error(f"expected {text!r}, found {found!r}")
        return self.next()

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.i += 1
            return True
        return False

    def name(self) -> str:
        t = self.next()
        if t.kind in ("ident", "int"):
            return t.text
        if t.kind == "float" and re.fullmatch(r"[0-9.]+", t.text):
            return t.text
        if t.kind == "str":
            return self.string(t)
        raise self.error(f"expected a name, found {t.text!r}", t)

    def string(self, t: _Tok) -> str:
        try:
            return json.loads(t.text)
        except json.JSONDecodeError as err:
            raise self.error(f"bad string literal: {err.msg}", t) from None

    # -- grammar ------------------------------------------------------------------------
    def module(self) -> Module:
        opset = 0
        if self.accept("module"):
            self.expect("opset")
            self.expect("=")
            opset = self.int()
        fns = []
        while self.tok.kind != "eof":
            fns.append(self.function({}))
        if not fns:
            raise self.error("expected at least one function")
        return Module(tuple(fns), opset=opset)

    def int(self) -> int:
        t = self.next()
        if t.kind != "int":
            raise self.error(f"expected an integer, found {t.text!r}", t)
        return int(t.text)

    def dtype(self) -> DType:
        t = self.next()
        try:
            return DType(t.text)
        except ValueError:
            raise self.error(f"unknown dtype {t.text!r}", t) from None

    def type(self) -> TensorType:
        dt = self.dtype()
        self.expect("[")
        if self.accept("*"):
            self.expect("]")
            return TensorType(None, dt)
        dims: list[int | str] = []
        while not self.at("]"):
            if dims:
                self.expect(",")
            t = self.next()
            if t.kind == "int":
                dims.append(int(t.text))
            elif t.kind == "ident":
                dims.append(t.text)
            elif t.text == "?":
                dims.append(UNKNOWN)
            else:
                raise self.error(f"bad dimension {t.text!r}", t)
        self.expect("]")
        return TensorType(tuple(dims), dt)

    def var_ref(self, scope: dict[str, Var]) -> Var:
        t = self.tok
        self.expect_pct()
        name = self.name()
        if name not in scope:
            raise self.error(f"undefined value %{name}", t)
        return scope[name]

    def expect_pct(self) -> None:
        if self.tok.kind != "pct":
            raise self.error(f"expected a %value, found {self.tok.text!r}")
        self.next()

    def function(self, outer: dict[str, Var]) -> Function:
        self.expect("func")
        if self.tok.kind != "at":
            raise self.error("expected @name after func")
        self.next()
        fname = self.name()
        scope = dict(outer)
        self.expect("(")
        params = []
        while not self.at(")"):
            if params:
                self.expect(",")
            self.expect_pct()
            pname = self.name()
            self.expect(":")
            v = Var(pname, self.type())
            scope[pname] = v
            params.append(v)
        self.expect(")")
        self.expect("{")
        body = []
        while not self.at("return"):
            body.append(self.binding(scope))
        self.expect("return")
        results = []
        while not self.at("}"):
            if results:
                self.expect(",")
            results.append(self.var_ref(scope))
        self.expect("}")
        return Function(fname, tuple(params), tuple(body), tuple(results))

    def binding(self, scope: dict[str, Var]) -> Binding:
        start = self.tok
        names = []
        while True:
            self.expect_pct()
            names.append(self.name())
            if not self.accept(","):
                break
        self.expect("=")
        if self.accept("const"):
            t = self.type()
            value = self.tensor_literal(t)
            if len(names) != 1:
                raise self.error("a const binds exactly one value", start)
            v = Var(names[0], t)
            scope[names[0]] = v
            return Binding((v,), Const(value))
        op = self.name()
        self.expect("(")
        args: list[Var | None] = []
        while not self.at(")"):
            if args:
                self.expect(",")
            if self.accept("_"):
                args.append(None)
            else:
                args.append(self.var_ref(scope))
        self.expect(")")
        attrs = []
        if self.accept("{"):
            while not self.at("}"):
                if attrs:
                    self.expect(",")
                k = self.name()
                self.expect("=")
                attrs.append((k, self.attr(scope)))
            self.expect("}")
        self.expect(":")
        types = [self.type()]
        while self.accept(","):
            types.append(self.type())
        if len(types) != len(names):
            raise self.error(f"{len(names)} values bound but {len(types)} types given", start)
        outs = tuple(Var(n, t) for n, t in zip(names, types, strict=True))
        for o in outs:
            scope[o.name] = o
        return Binding(outs, Call(op, tuple(args), tuple(sorted(attrs))))

    def attr(self, scope: dict[str, Var]):
        t = self.tok
        if t.kind == "int":
            return int(self.next().text)
        if t.kind == "float":
            return float(self.next().text)
        if t.kind == "str":
            return self.string(self.next())
        if self.accept("["):
            items = []
            while not self.at("]"):
                if items:
                    self.expect(",")
                items.append(self.attr(scope))
            self.expect("]")
            return tuple(items)
        if self.at("tensor"):
            self.next()
            self.expect("<")
            ty = self.type()
            self.expect(">")
            return self.tensor_literal(ty)
        if self.at("func"):
            return self.function(scope)
        raise self.error(f"bad attribute value {t.text!r}")

    def tensor_literal(self, t: TensorType) -> Tensor:
        if t.shape is None or not all(isinstance(d, int) for d in t.shape):
            raise self.error(f"a constant needs a static type, got {t}")
        shape = tuple(int(d) for d in t.shape)
        start = self.tok
        if self.accept("blob"):
            idx = self.int()
            if idx not in self.blobs:
                raise self.error(f"blob {idx} is not defined", start)
            if t.dtype is DType.string:
                raise self.error("string constants cannot be blobs", start)
            data = self.blobs[idx]
            if len(data) % t.dtype.np.itemsize:
                raise self.error(f"blob {idx} holds {len(data)} bytes, not a whole number of "
                                 f"{t.dtype} elements", start)
            arr = np.frombuffer(data, dtype=t.dtype.np)
            if arr.size != int(np.prod(shape)):
                raise self.error(f"blob {idx} holds {arr.size} elements, type {t} needs "
                                 f"{int(np.prod(shape))}", start)
            return Tensor(arr.reshape(shape))
        if start.kind == "str" or (start.text == "[" and self.toks[self.i + 1].kind == "str"):
            pass
        self.expect("[")
        items: list = []
        while not self.at("]"):
            if items:
                self.expect(",")
            tok = self.next()
            if tok.kind == "int":
                items.append(int(tok.text))
            elif tok.kind == "float":
                items.append(float(tok.text))
            elif tok.kind == "str":
                items.append(self.string(tok))
            elif tok.text in ("true", "false"):
                items.append(tok.text == "true")
            else:
                raise self.error(f"bad constant element {tok.text!r}", tok)
        self.expect("]")
        n = int(np.prod(shape))
        if len(items) != n:
            raise self.error(f"constant has {len(items)} elements, type {t} needs {n}", start)
        if t.dtype is DType.string:
            arr = np.array(items, dtype=object).reshape(shape)
        elif t.dtype.is_float:
            arr = np.array(items, dtype=np.float64).astype(t.dtype.np).reshape(shape)
        else:
            arr = np.array(items, dtype=t.dtype.np if t.dtype.bits >= 8 else np.int64)
            arr = arr.astype(t.dtype.np).reshape(shape)
        return Tensor(arr)


_BLOBS = re.compile(r"^blobs\s*\{\s*$", re.MULTILINE)
_BLOB_LINE = re.compile(r'^\s*(\d+)\s*:\s*"([A-Za-z0-9+/=]*)"\s*$')


def _split_blobs(src: str) -> tuple[str, dict[int, bytes]]:
    m = _BLOBS.search(src)
    if not m:
        return src, {}
    body, rest = src[: m.start()], src[m.end():]
    blobs: dict[int, bytes] = {}
    lineno = src.count("\n", 0, m.end()) + 1
    for line in rest.splitlines():
        lineno += 1
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s == "}":
            break
        bm = _BLOB_LINE.match(line)
        if not bm:
            raise ParseError(f"{lineno}:1: bad blob line")
        try:
            blobs[int(bm.group(1))] = base64.b64decode(bm.group(2), validate=True)
        except binascii.Error as err:
            raise ParseError(f"{lineno}:1: bad base64 in blob {bm.group(1)}: {err}") from None
    else:
        raise ParseError(f"{lineno}:1: blobs section is not closed")
    return body, blobs


def parse(src: str) -> Module:
    return _Parser(src).module()


def parse_function(src: str) -> Function:
    return parse(src).main
