"""Graph IR text form. `parser.parse(print_module(m)) == m` for every module.

    func @main(%x: float32[N, 3]) {
      %w = const float32[3] [0.5, 1.0, -2.0]
      %y = Mul(%x, %w) : float32[N, 3]
      %v, %i = TopK(%y, %k) {axis=1} : float32[N, 2], int64[N, 2]
      return %v
    }

Constants of more than a few elements (and any holding NaN) live in a trailing `blobs`
section as base64 of their little-endian bytes, so weights never bloat the readable part.
"""

from __future__ import annotations

import base64
import json
import math
import re

import numpy as np

from compiler.graph.ir import Binding, Call, Const, Function, Module, Tensor, TensorType, Var

INLINE_LIMIT = 16
_PLAIN = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_.]*|\d+)\Z")


def format_name(name: str) -> str:
    ok = _PLAIN.match(name) and name not in ("_", "inf", "nan")
    return name if ok else json.dumps(name)


def format_type(t: TensorType) -> str:
    if t.shape is None:
        return f"{t.dtype.value}[*]"
    return f"{t.dtype.value}[{', '.join(str(d) for d in t.shape)}]"


def format_float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    r = repr(float(x))
    return r


class _Printer:
    def __init__(self) -> None:
        self.blobs: list[str] = []

    def tensor_literal(self, t: Tensor) -> str:
        arr = t.array
        if arr.dtype == object:
            return json.dumps([str(x) for x in arr.reshape(-1).tolist()])
        kind = arr.dtype.kind
        inline = arr.size <= INLINE_LIMIT and kind not in "cV"
        if inline and t.dtype.is_float:
            flat = arr.reshape(-1).astype(np.float64)
            inline = not np.isnan(flat).any()
        if inline:
            flat = arr.reshape(-1)
            if t.dtype.is_float:
                items = (format_float(float(x)) for x in flat.astype(np.float64))
                return "[" + ", ".join(items) + "]"
            if kind == "b":
                return "[" + ", ".join("true" if x else "false" for x in flat.tolist()) + "]"
            return "[" + ", ".join(str(int(x)) for x in flat.astype(np.int64 if kind != "u"
                                                                   else np.uint64).tolist()) + "]"
        data = np.ascontiguousarray(arr).tobytes()
        self.blobs.append(base64.b64encode(data).decode("ascii"))
        return f"blob {len(self.blobs) - 1}"

    def attr(self, v, indent: str) -> str:
        if isinstance(v, bool):
            return str(int(v))
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return format_float(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, tuple):
            return "[" + ", ".join(self.attr(x, indent) for x in v) + "]"
        if isinstance(v, Tensor):
            return f"tensor<{format_type(v.type)}> {self.tensor_literal(v)}"
        if isinstance(v, Function):
            return self.function(v, indent).rstrip()
        raise TypeError(f"cannot print attribute value {v!r}")

    def binding(self, b: Binding, indent: str) -> str:
        lhs = ", ".join(f"%{format_name(o.name)}" for o in b.outs)
        e = b.expr
        if isinstance(e, Const):
            lit = self.tensor_literal(e.value)
            return f"{indent}{lhs} = const {format_type(e.value.type)} {lit}"
        assert isinstance(e, Call)
        args = ", ".join("_" if a is None else f"%{format_name(a.name)}" for a in e.args)
        s = f"{indent}{lhs} = {format_name(e.op)}({args})"
        if e.attrs:
            inner = indent + "  "
            items = (f"{format_name(k)}={self.attr(v, inner)}" for k, v in e.attrs)
            s += " {" + ", ".join(items) + "}"
        return s + " : " + ", ".join(format_type(o.type) for o in b.outs)

    def function(self, fn: Function, indent: str = "") -> str:
        params = ", ".join(f"%{format_name(p.name)}: {format_type(p.type)}" for p in fn.params)
        lines = [f"func @{format_name(fn.name)}({params}) {{"]
        inner = indent + "  "
        for b in fn.body:
            lines.append(self.binding(b, inner))
        rets = ", ".join(f"%{format_name(r.name)}" for r in fn.results)
        lines.append(f"{inner}return {rets}".rstrip())
        lines.append(f"{indent}}}")
        return "\n".join(lines) + "\n"


def print_module(m: Module) -> str:
    p = _Printer()
    funcs = "\n".join(p.function(f) for f in m.functions)
    out = f"module opset={m.opset}\n\n{funcs}"
    if p.blobs:
        out += "\nblobs {\n" + "".join(f"  {i}: \"{b}\"\n" for i, b in enumerate(p.blobs)) + "}\n"
    return out


def print_function(fn: Function) -> str:
    return print_module(Module((fn,)))


def format_var(v: Var) -> str:
    return f"%{format_name(v.name)}: {format_type(v.type)}"
