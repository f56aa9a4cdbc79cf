"""Graph IR verifier: SSA scoping, op existence, attribute schemas, arity, and types.

Each call's declared output types are checked against its op's type relation: the declared
type may be more precise than the inferred one (a symbol or int where inference says "?"),
never in conflict with it.
"""

from __future__ import annotations

from compiler.errors import AnvilError, VerifyError
from compiler.graph.ir import UNKNOWN, Call, Const, Function, Module, TensorType, Var
from compiler.ops.base import REQUIRED, InferCtx, get_op

_KIND_CHECK = {
    "int": lambda v: isinstance(v, int),
    "float": lambda v: isinstance(v, float),
    "string": lambda v: isinstance(v, str),
    "ints": lambda v: isinstance(v, tuple) and all(isinstance(x, int) for x in v),
    "floats": lambda v: isinstance(v, tuple) and all(isinstance(x, float) for x in v),
    "strings": lambda v: isinstance(v, tuple) and all(isinstance(x, str) for x in v),
    "tensor": lambda v: type(v).__name__ == "Tensor",
    "graph": lambda v: isinstance(v, Function),
    "any": lambda v: True,
}


def compatible(declared: TensorType, inferred: TensorType) -> bool:
    if declared.dtype != inferred.dtype:
        return False
    if declared.shape is None or inferred.shape is None:
        return True
    if len(declared.shape) != len(inferred.shape):
        return False
    for d, i in zip(declared.shape, inferred.shape, strict=True):
        if isinstance(d, int) and isinstance(i, int) and d != i:
            return False
    return True


def verify(m: Module | Function) -> None:
    fns = m.functions if isinstance(m, Module) else (m,)
    names = set()
    for fn in fns:
        if fn.name in names:
            raise VerifyError(f"function @{fn.name} defined twice")
        names.add(fn.name)
        _verify_function(fn, {})


def _verify_function(fn: Function, outer: dict[str, Var]) -> None:
    where_fn = f"@{fn.name}"
    scope: dict[str, Var] = dict(outer)
    local: set[str] = set()
    consts: dict[Var, object] = {}

    def define(v: Var, where: str) -> None:
        if v.name in local:
            raise VerifyError(f"%{v.name} is defined twice", where)
        local.add(v.name)
        scope[v.name] = v

    for p in fn.params:
        define(p, where_fn)
    for i, b in enumerate(fn.body):
        where = f"{where_fn} binding {i}"
        e = b.expr
        if isinstance(e, Const):
            if len(b.outs) != 1:
                raise VerifyError("a const binds exactly one value", where)
            if b.outs[0].type != e.value.type:
                raise VerifyError(
                    f"%{b.outs[0].name} declared {b.outs[0].type} but the constant is "
                    f"{e.value.type}", where)
            consts[b.outs[0]] = e.value.array
            define(b.outs[0], where)
            continue
        if not isinstance(e, Call):
            raise VerifyError(f"unknown expression {type(e).__name__}", where)
        where = f"{where} ({e.op})"
        for a in e.args:
            if a is not None and scope.get(a.name) != a:
                raise VerifyError(f"%{a.name} is used before it is defined", where)
        op = get_op(e.op)
        if op is None:
            raise VerifyError(f"unknown op {e.op!r}", where)
        _check_attrs(op, e, where)
        n = len(e.args)
        lo, hi = op.inputs
        if n < lo or (hi is not None and n > hi):
            raise VerifyError(f"{e.op} takes {lo}..{hi} inputs, got {n}", where)
        if not op.outputs[0] <= len(b.outs) <= op.outputs[1]:
            raise VerifyError(f"{e.op} has {op.outputs} outputs, {len(b.outs)} bound", where)
        for _, v in e.attrs:
            if isinstance(v, Function):
                _verify_function(v, scope)
        ctx = InferCtx(e.op, where, e.attr_dict, [a.type if a else None for a in e.args],
                       [consts.get(a) if a is not None else None for a in e.args], len(b.outs))
        try:
            inferred = list(op.infer(ctx))
        except AnvilError as err:
            raise VerifyError(f"type relation failed: {err.message}", where) from None
        for k, o in enumerate(b.outs):
            if k < len(inferred) and not compatible(o.type, inferred[k]):
                raise VerifyError(
                    f"%{o.name} declared {o.type} but {e.op} gives {inferred[k]}", where)
            define(o, where)
    for r in fn.results:
        if scope.get(r.name) != r:
            raise VerifyError(f"result %{r.name} is not defined", where_fn)


def _check_attrs(op, e: Call, where: str) -> None:
    attrs = e.attr_dict
    for k, v in attrs.items():
        spec = op.attrs.get(k)
        if spec is None:
            raise VerifyError(f"{e.op} has no attribute {k!r}", where)
        if not _KIND_CHECK[spec.kind](v):
            raise VerifyError(f"{e.op} attribute {k!r} must be {spec.kind}", where)
    for k, spec in op.attrs.items():
        if spec.default is REQUIRED and k not in attrs:
            raise VerifyError(f"{e.op} requires attribute {k!r}", where)


__all__ = ["verify", "compatible", "UNKNOWN"]
