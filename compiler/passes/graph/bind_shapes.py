"""bind_shapes: give symbolic dims of `main`'s parameters integer values, then re-infer types.

`dims` lists the bindings, `"N=1,seq=128"`. Every symbol must occur in a parameter's shape
and every value must be a non-negative integer; anything else is a one-line error. Parameters
keep their names and order (only their types change), and every binding of `main` and of
its subgraphs is re-typed, so each value whose shape becomes known is static. Values that
contradict a binding (an `Add` of `[N]` and `[3]` with `N=2`) are a one-line error too. With
no `dims` the pass only re-infers, refining dims that inference can now decide.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from compiler.errors import AnvilError, VerifyError
from compiler.graph.ir import Binding, Call, Const, Function, Module, TensorType, Var
from compiler.graph.verifier import verify
from compiler.passes.base import Arg, graph_pass
from compiler.passes.graph_util import retype

_ITEM_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([+-]?\d+)\s*")


def parse_dims(spec: str) -> dict[str, int]:
    """`"N=1, seq=128"` -> {"N": 1, "seq": 128}."""
    out: dict[str, int] = {}
    if not spec.strip():
        return out
    for item in spec.split(","):
        m = _ITEM_RE.fullmatch(item)
        if m is None:
            raise AnvilError(f"bind_shapes: bad dim binding {item.strip()!r}, expected "
                             f"NAME=INTEGER")
        name, value = m.group(1), int(m.group(2))
        if value < 0:
            raise AnvilError(f"bind_shapes: dim {name} bound to negative {value}")
        if name in out:
            raise AnvilError(f"bind_shapes: dim {name} bound twice")
        out[name] = value
    return out


def bind_params(params: Sequence[Var], dims: Mapping[str, int]) -> tuple[Var, ...]:
    """`params` with every bound symbol replaced by its value."""
    symbols = {d for p in params for d in (p.type.shape or ()) if isinstance(d, str)}
    unknown = [name for name in dims if name not in symbols]
    if unknown:
        have = ", ".join(sorted(symbols)) or "none"
        raise AnvilError(f"bind_shapes: no parameter has dim {unknown[0]} "
                         f"(symbolic dims: {have})")
    out = []
    for p in params:
        shape = p.type.shape
        if shape is not None:
            shape = tuple(dims.get(d, d) if isinstance(d, str) else d for d in shape)
        out.append(Var(p.name, TensorType(shape, p.type.dtype)))
    return tuple(out)


def _retype_subgraphs(fn: Function, outer: Mapping[Var, np.ndarray]) -> Function:
    known = dict(outer)
    body = []
    for b in fn.body:
        e = b.expr
        if isinstance(e, Const):
            known[b.outs[0]] = e.value.array
        elif isinstance(e, Call) and any(isinstance(v, Function) for _, v in e.attrs):
            attrs = tuple((k, retype_all(v, None, known) if isinstance(v, Function) else v)
                          for k, v in e.attrs)
            if attrs != e.attrs:
                b = Binding(b.outs, Call(e.op, e.args, attrs), b.origin)
        body.append(b)
    return Function(fn.name, fn.params, tuple(body), fn.results)


def retype_all(fn: Function, params: Sequence[Var] | None = None,
               outer: Mapping[Var, np.ndarray] | None = None) -> Function:
    """`retype` of `fn` and of every subgraph, repeated until the types settle (a subgraph's
    result types feed the type of the call that carries it)."""
    outer = outer or {}
    while True:
        new = _retype_subgraphs(retype(fn, params, outer), outer)
        if new == fn:
            return fn
        fn, params = new, None


@graph_pass("Bind symbolic dims of main's parameters (dims=\"N=1,seq=128\") and re-infer types.",
            Arg("dims", str, "", "comma-separated NAME=INTEGER bindings"))
def bind_shapes(module: Module, dims: str) -> Module:
    values = parse_dims(dims)
    main = module.main
    main = retype_all(main, bind_params(main.params, values))
    out = Module((main, *module.functions[1:]), module.opset)
    try:
        verify(out)
    except VerifyError as err:
        raise AnvilError(f"bind_shapes: dims {dims} contradict the model: {err.line()}") from None
    return out
