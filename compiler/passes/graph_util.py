"""Shared machinery of the graph passes (not a pass itself).

Graph IR values are `Var`s compared by name *and* type, so a pass that changes a value's type
or replaces one value by another rebuilds every use. The helpers here do that generically:

- `substitute(fn, mapping)`: replace uses (args, results, captures inside subgraphs);
- `use_counts(fn)`, `producers(fn)`, `const_values(fn)`: the facts most passes need;
- `Emitter`: build new bindings with fresh names and inferred output types;
- `retype(fn)`: re-run every type relation (after constants or parameter types changed);
- `map_functions(module, f)`: apply a function rewrite to `main` and every subgraph,
  innermost first;
- `remove_unused(fn)`: drop bindings nobody uses (the core of `dce`).

Every helper is deterministic: iteration follows binding order, never hash order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from compiler.errors import AnvilError
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
    make_attrs,
    walk_functions,
)
from compiler.names import fresh
from compiler.ops.base import InferCtx, OpDef, get_op

# ---------------------------------------------------------------------------------------
# facts


def producers(fn: Function) -> dict[Var, Binding]:
    """Each value defined in `fn`'s body -> its binding (params are absent)."""
    return {o: b for b in fn.body for o in b.outs}


def const_values(fn: Function) -> dict[Var, np.ndarray]:
    """Values bound by a `Const` in `fn` (not in enclosing functions)."""
    return {b.outs[0]: b.expr.value.array for b in fn.body if isinstance(b.expr, Const)}


def _call_uses(call: Call, counts: Counter) -> None:
    for a in call.args:
        if a is not None:
            counts[a] += 1
    for _, v in call.attrs:
        if isinstance(v, Function):
            _function_uses(v, counts)


def _function_uses(fn: Function, counts: Counter) -> None:
    for b in fn.body:
        if isinstance(b.expr, Call):
            _call_uses(b.expr, counts)
    for r in fn.results:
        counts[r] += 1


def use_counts(fn: Function) -> Counter:
    """How often each value is used: as an argument, a result, or captured by a subgraph."""
    counts: Counter = Counter()
    _function_uses(fn, counts)
    return counts


def is_pure(call: Call) -> bool:
    """A call that can be removed, deduplicated or folded: deterministic and known."""
    op = get_op(call.op)
    return op is not None and not op.nondeterministic


# ---------------------------------------------------------------------------------------
# rebuilding


def substitute(fn: Function, mapping: Mapping[Var, Var | None]) -> Function:
    """`fn` with every use of a key of `mapping` replaced by its value, in nested subgraphs
    too. Definitions are not renamed: map a value only to one defined before its uses."""
    if not mapping:
        return fn

    def sub(v: Var | None) -> Var | None:
        while v is not None and v in mapping:
            nxt = mapping[v]
            if nxt == v:
                break
            v = nxt
        return v

    body = []
    for b in fn.body:
        e = b.expr
        if isinstance(e, Call):
            args = tuple(sub(a) for a in e.args)
            attrs = tuple((k, substitute(v, mapping) if isinstance(v, Function) else v)
                          for k, v in e.attrs)
            if args != e.args or attrs != e.attrs:
                e = Call(e.op, args, attrs)
                b = Binding(b.outs, e, b.origin)
        body.append(b)
    results = tuple(sub(r) for r in fn.results)
    return Function(fn.name, fn.params, tuple(body), results)  # type: ignore[arg-type]


def map_functions(module: Module, rewrite: Callable[[Function], Function]) -> Module:
    """Apply `rewrite` to every function of `module` and every subgraph, innermost first."""

    def visit(fn: Function) -> Function:
        body = []
        changed = False
        for b in fn.body:
            e = b.expr
            if isinstance(e, Call) and any(isinstance(v, Function) for _, v in e.attrs):
                attrs = tuple((k, visit(v) if isinstance(v, Function) else v) for k, v in e.attrs)
                if attrs != e.attrs:
                    b = Binding(b.outs, Call(e.op, e.args, attrs), b.origin)
                    changed = True
            body.append(b)
        if changed:
            fn = Function(fn.name, fn.params, tuple(body), fn.results)
        return rewrite(fn)

    return Module(tuple(visit(f) for f in module.functions), module.opset)


def all_names(fn: Function) -> set[str]:
    names: set[str] = set()
    for f in walk_functions(fn):
        names.update(p.name for p in f.params)
        for b in f.body:
            names.update(o.name for o in b.outs)
    return names


def remove_unused(fn: Function, keep: Callable[[Binding], bool] | None = None) -> Function:
    """Drop bindings whose outputs are all unused (repeatedly, back to front). Calls of
    nondeterministic ops are kept only if `keep` says so (default: removable too, since
    their values are unobservable once unused)."""
    counts = use_counts(fn)
    live: list[Binding] = []
    for b in reversed(fn.body):
        used = any(counts[o] for o in b.outs)
        if not used and (keep is None or not keep(b)):
            if isinstance(b.expr, Call):
                inner: Counter = Counter()
                _call_uses(b.expr, inner)
                counts.subtract(inner)
            continue
        live.append(b)
    live.reverse()
    if len(live) == len(fn.body):
        return fn
    return Function(fn.name, fn.params, tuple(live), fn.results)


# ---------------------------------------------------------------------------------------
# type inference


def infer(op: OpDef | str, attrs: Mapping[str, Any], args: Sequence[Var | None],
          consts: Mapping[Var, np.ndarray], num_outputs: int, where: str = "") -> list[TensorType]:
    """Output types of `op(args)` from its type relation (constant inputs passed as values)."""
    opdef = get_op(op) if isinstance(op, str) else op
    if opdef is None:
        raise AnvilError(f"unknown op {op!r}", where or None)
    ctx = InferCtx(opdef.name, where, dict(attrs), [a.type if a is not None else None
                                                    for a in args],
                   [consts.get(a) if a is not None else None for a in args], num_outputs)
    return list(opdef.infer(ctx))[:num_outputs]


def merge_type(declared: TensorType, inferred: TensorType) -> TensorType:
    """The more precise of two compatible types, dim by dim (an int beats a symbol beats ?)."""
    if inferred.shape is None:
        return TensorType(declared.shape, inferred.dtype)
    if declared.shape is None or len(declared.shape) != len(inferred.shape):
        return inferred
    dims = []
    for d, i in zip(declared.shape, inferred.shape, strict=True):
        if isinstance(i, int):
            dims.append(i)
        elif isinstance(d, int):
            dims.append(d)
        elif i != UNKNOWN:
            dims.append(i)
        else:
            dims.append(d)
    return TensorType(tuple(dims), inferred.dtype)


def retype(fn: Function, params: Sequence[Var] | None = None,
           consts: Mapping[Var, np.ndarray] | None = None) -> Function:
    """Re-infer every binding's output types in order, starting from `params` (default: the
    current ones); values whose type changes are renamed nowhere, only re-typed, and every
    use follows. Outer constants visible to a subgraph may be passed in `consts`."""
    new_params = tuple(params) if params is not None else fn.params
    mapping: dict[Var, Var] = {o: n for o, n in zip(fn.params, new_params, strict=True)
                               if o != n}
    known: dict[Var, np.ndarray] = dict(consts or {})
    body = []
    for b in fn.body:
        e = b.expr
        if isinstance(e, Const):
            body.append(b)
            known[b.outs[0]] = e.value.array
            continue
        assert isinstance(e, Call)
        args = tuple(mapping.get(a, a) if a is not None else None for a in e.args)
        attrs = tuple((k, substitute(v, mapping) if isinstance(v, Function) else v)
                      for k, v in e.attrs)
        op = get_op(e.op)
        try:
            types = infer(op or e.op, e.attr_dict, args, known, len(b.outs))
        except AnvilError:
            types = []
        outs = []
        for k, o in enumerate(b.outs):
            t = merge_type(o.type, types[k]) if k < len(types) else o.type
            n = Var(o.name, t) if t != o.type else o
            if n != o:
                mapping[o] = n
            outs.append(n)
        body.append(Binding(tuple(outs), Call(e.op, args, attrs), b.origin))
    results = tuple(mapping.get(r, r) for r in fn.results)
    return Function(fn.name, new_params, tuple(body), results)


# ---------------------------------------------------------------------------------------
# building new bindings


class Emitter:
    """Builds bindings with fresh names (unique within a function) and inferred types.

    ```python
    em = Emitter(fn)
    y = em.call("Mul", [x, em.const(np.float32(2))], origin="simplify")
    new_bindings = em.take()
    ```
    """

    def __init__(self, fn: Function, consts: Mapping[Var, np.ndarray] | None = None) -> None:
        self.names = all_names(fn)
        self.consts: dict[Var, np.ndarray] = dict(const_values(fn))
        if consts:
            self.consts.update(consts)
        self.bindings: list[Binding] = []

    def fresh(self, hint: str) -> str:
        return fresh(self.names, hint or "v")

    def const(self, value: np.ndarray | np.generic | Tensor, hint: str = "c",
              origin: str = "") -> Var:
        t = value if isinstance(value, Tensor) else Tensor(np.asarray(value))
        v = Var(self.fresh(hint), t.type)
        self.bindings.append(Binding((v,), Const(t), origin))
        self.consts[v] = t.array
        return v

    def call(self, op: str, args: Sequence[Var | None], attrs: Mapping[str, Any] | None = None,
             num_outputs: int = 1, hint: str = "", origin: str = "",
             out_names: Sequence[str] | None = None) -> list[Var]:
        opdef = get_op(op)  # every default written out, as the importer does
        attrs = {**(opdef.default_attrs() if opdef is not None else {}), **(attrs or {})}
        args = list(args)
        while args and args[-1] is None:
            args.pop()
        types = infer(op, attrs, args, self.consts, num_outputs, origin)
        names = list(out_names) if out_names else [self.fresh(hint or op.lower())
                                                   for _ in range(num_outputs)]
        outs = [Var(n, t) for n, t in zip(names, types, strict=True)]
        self.bindings.append(Binding(tuple(outs), Call(op, tuple(args), make_attrs(attrs)),
                                     origin))
        return outs

    def take(self) -> list[Binding]:
        out, self.bindings = self.bindings, []
        return out


Rewrite = Callable[[Binding, "Emitter"], Iterable[Binding] | Mapping[Var, Var] | None]


def replace_bindings(fn: Function, rewrite: Rewrite) -> Function:
    """One forward sweep: `rewrite(binding, emitter)` returns None (keep the binding), or a
    mapping from the binding's outputs to replacement values (whose bindings it emitted into
    the emitter, or which already exist). Replaced bindings are left for `dce` to remove
    only when something still uses them; otherwise they are dropped here."""
    em = Emitter(fn)
    mapping: dict[Var, Var] = {}
    body: list[Binding] = []
    for b in fn.body:
        e = b.expr
        if isinstance(e, Call) and mapping:
            args = tuple(_chase(mapping, a) for a in e.args)
            attrs = tuple((k, substitute(v, mapping) if isinstance(v, Function) else v)
                          for k, v in e.attrs)
            if args != e.args or attrs != e.attrs:
                b = Binding(b.outs, Call(e.op, args, attrs), b.origin)
        r = rewrite(b, em)
        body.extend(em.take())
        if r is None:
            body.append(b)
            continue
        if isinstance(r, Mapping):
            mapping.update({k: v for k, v in r.items() if k != v})
            if any(o not in r for o in b.outs):
                body.append(b)
        else:
            body.extend(r)
    results = tuple(_chase(mapping, r) for r in fn.results)
    out = Function(fn.name, fn.params, tuple(body), results)  # type: ignore[arg-type]
    return remove_unused(out, keep=lambda b: not isinstance(b.expr, Const)
                         and not is_pure(b.expr)) if mapping else out


def _chase(mapping: Mapping[Var, Var], v: Var | None) -> Var | None:
    while v is not None and v in mapping:
        v = mapping[v]
    return v


__all__ = [
    "Emitter", "all_names", "const_values", "infer", "is_pure", "map_functions", "merge_type",
    "producers", "remove_unused", "replace_bindings", "retype", "substitute",
    "use_counts",
]
