"""ONNX import: ModelProto -> graph IR Module.

Handles opsets 7 up to the newest the installed onnx knows. Initializers become constants,
symbolic dimensions stay symbolic, and each op's `upgrade` hook (in its op file) rewrites an
older-opset node into the op's canonical form. Ops Anvil does not define natively but that
ONNX defines as a function of other ops are expanded inline. Every problem with the model is
one `AnvilError` line naming the node.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from compiler.dtypes import DType
from compiler.errors import AnvilError, ModelError, UnsupportedError
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
)
from compiler.names import fresh
from compiler.ops.base import REQUIRED, InferCtx, get_op

ML_DOMAIN = "ai.onnx.ml"
MIN_OPSET = 7


def load(path: str | os.PathLike) -> onnx.ModelProto:
    """Read a model file; a missing, truncated or corrupt file is one clean error."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelError(f"no such file: {path}")
    try:
        with open(path, "rb") as f:
            data = f.read()
        model = onnx.ModelProto()
        model.ParseFromString(data)
    except Exception as e:  # protobuf raises DecodeError and friends
        raise ModelError(f"cannot parse {path} as an ONNX model ({type(e).__name__})") from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise ModelError(f"{path} holds no ONNX graph (empty or truncated file?)")
    if model.graph.node and any(n.op_type == "" for n in model.graph.node):
        raise ModelError(f"{path}: a node has an empty op_type (truncated file?)")
    return model


def import_model(model: onnx.ModelProto | str | os.PathLike) -> Module:
    if not isinstance(model, onnx.ModelProto):
        model = load(model)
    opsets = {o.domain or "": o.version for o in model.opset_import}
    if "ai.onnx" in opsets:
        opsets[""] = opsets.pop("ai.onnx")
    opsets.setdefault("", 7)
    if opsets[""] < 1:
        raise UnsupportedError(f"opset {opsets['']} is not a valid opset")
    newest = onnx.defs.onnx_opset_version()
    if opsets[""] > newest:
        raise UnsupportedError(f"opset {opsets['']} is newer than the newest known ({newest})")
    functions = {(f.domain, f.name): f for f in model.functions}
    imp = _Importer(opsets, functions)
    main = imp.graph(model.graph, "main", outer={})
    return Module((main,), opset=opsets[""])


# ---------------------------------------------------------------------------------------


def tensor_type_of(tp: onnx.TypeProto, where: str) -> TensorType:
    if not tp.HasField("tensor_type"):
        kind = tp.WhichOneof("value") or "no"
        raise UnsupportedError(f"{kind} values are not supported (only tensors)", where)
    tt = tp.tensor_type
    try:
        dtype = DType.from_onnx(tt.elem_type)
    except KeyError:
        raise UnsupportedError(f"element type {tt.elem_type} is not supported", where) from None
    if not tt.HasField("shape"):
        return TensorType(None, dtype)
    dims: list[int | str] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            dims.append(_symbol(d.dim_param))
        else:
            dims.append(UNKNOWN)
    return TensorType(tuple(dims), dtype)


def _symbol(name: str) -> str:
    s = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return s if s and not s[0].isdigit() else "s" + s


def tensor_value(t: onnx.TensorProto, where: str) -> Tensor:
    try:
        arr = numpy_helper.to_array(t)
    except Exception as e:
        raise ModelError(f"cannot read tensor {t.name!r}: {e}", where) from None
    try:
        DType.from_onnx(t.data_type)
    except KeyError:
        raise UnsupportedError(f"tensor {t.name!r} has unsupported type {t.data_type}",
                               where) from None
    if arr.dtype.kind in "SU":
        arr = arr.astype(object)
    if arr.dtype == object:
        arr = np.vectorize(lambda x: x.decode() if isinstance(x, bytes) else x, otypes=[object])(
            arr
        ) if arr.size else arr
    return Tensor(arr)


@dataclass
class ImportCtx:
    """What an op's `upgrade` hook sees and may change (see compiler/ops/base.py)."""

    op: str
    opset: int
    attrs: dict[str, Any]
    inputs: list[str]  # value names; "" for an absent optional input
    num_outputs: int
    where: str
    _importer: Any = field(repr=False, default=None)
    _scope: Any = field(repr=False, default=None)

    def const(self, i: int) -> np.ndarray | None:
        """Value of input i when it is a compile-time constant."""
        if i >= len(self.inputs) or not self.inputs[i]:
            return None
        return self._scope.const_value(self.inputs[i])

    def input_type(self, i: int) -> TensorType | None:
        """Type of input i (None when absent)."""
        if i >= len(self.inputs) or not self.inputs[i]:
            return None
        return self._scope.lookup(self.inputs[i], self.where).type

    def add_const(self, value: Any, dtype: Any = None) -> str:
        """Bind a new constant; returns the value name to put in `inputs`."""
        arr = np.asarray(value, dtype=dtype)
        return self._scope.bind_const(arr, hint=f"{self.where}_c")

    def fail(self, message: str) -> AnvilError:
        return UnsupportedError(f"{self.op}: {message}", self.where)


class _Scope:
    """Name -> Var for one (sub)graph, chained to the enclosing graph's scope."""

    def __init__(self, importer: _Importer, outer: dict[str, Var], parent: _Scope | None):
        self.importer = importer
        self.names: dict[str, Var] = {}
        self.outer = outer
        self.parent = parent
        self.body: list[Binding] = []
        self.consts: dict[str, np.ndarray] = {}

    def lookup(self, name: str, where: str) -> Var:
        if name in self.names:
            return self.names[name]
        s = self.parent
        while s is not None:
            if name in s.names:
                return s.names[name]
            s = s.parent
        raise ModelError(f"input {name!r} is not defined before use", where)

    def const_value(self, name: str) -> np.ndarray | None:
        s: _Scope | None = self
        while s is not None:
            if name in s.consts:
                return s.consts[name]
            if name in s.names:
                return None
            s = s.parent
        return None

    def fresh(self, hint: str) -> str:
        return self.importer.fresh(hint)

    def define(self, name: str, t: TensorType) -> Var:
        v = Var(self.importer.unique(name), t)
        self.names[name] = v
        return v

    def bind_const(self, arr: np.ndarray, hint: str, name: str | None = None) -> str:
        name = name or self.fresh(hint)
        t = Tensor(arr)
        v = self.define(name, t.type)
        self.body.append(Binding((v,), Const(t), origin=name))
        self.consts[name] = t.array
        return name


class _Importer:
    def __init__(self, opsets: dict[str, int], functions: dict):
        self.opsets = opsets
        self.functions = functions
        self.used: set[str] = set()
        self.counter = 0

    def unique(self, name: str) -> str:
        return fresh(self.used, name or "v")

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return self.unique(f"{hint}{self.counter}")

    # -- graphs ----------------------------------------------------------------------

    def graph(self, g: onnx.GraphProto, name: str, outer: dict, parent: _Scope | None = None,
              input_types: list[TensorType] | None = None) -> Function:
        scope = _Scope(self, outer, parent)
        inits = {t.name for t in g.initializer}
        params: list[Var] = []
        for k, vi in enumerate(g.input):
            if vi.name in inits:
                continue  # an input with a default (initializer) is a constant here
            where = f"input {vi.name!r}"
            untyped = not vi.type.HasField("tensor_type") or not vi.type.tensor_type.elem_type
            if input_types is not None and k < len(input_types) and untyped \
                    and input_types[k] is not None:
                t = input_types[k]
            else:
                t = tensor_type_of(vi.type, where)
            params.append(scope.define(vi.name, t))
        for t in g.initializer:
            scope.bind_const(tensor_value(t, f"initializer {t.name!r}").array, "", name=t.name)
        for sp in g.sparse_initializer:
            dense = numpy_helper.to_array(sp)
            scope.bind_const(dense, "", name=sp.values.name)
        for i, node in enumerate(g.node):
            self.node(node, scope, i)
        results = []
        for vo in g.output:
            where = f"output {vo.name!r}"
            if not vo.name:
                raise ModelError("graph output has no name", where)
            results.append(scope.lookup(vo.name, where))
        return Function(name, tuple(params), tuple(scope.body), tuple(results))

    # -- nodes -----------------------------------------------------------------------

    def node(self, node: onnx.NodeProto, scope: _Scope, index: int) -> None:
        domain = node.domain or ""
        if domain == "ai.onnx":
            domain = ""
        where = f"node {index} ({node.op_type} {node.name!r})" if node.name else (
            f"node {index} ({node.op_type})"
        )
        if domain not in self.opsets and domain != "":
            if (domain, node.op_type) not in self.functions:
                raise UnsupportedError(f"op domain {domain!r} is not supported", where)
        body_types = self.body_input_types(node, scope, where)
        attrs = {a.name: self.attr(a, where, scope, body_types) for a in node.attribute}
        ctx = ImportCtx(
            op=node.op_type,
            opset=self.opsets.get(domain, 1),
            attrs=attrs,
            inputs=list(node.input),
            num_outputs=len(node.output),
            where=where,
            _importer=self,
            _scope=scope,
        )
        if node.op_type == "Constant" and domain == "":
            self.constant(ctx, scope, node)
            return
        if domain == "" and ctx.opset < MIN_OPSET:
            self.check_old_opset(node.op_type, ctx.opset, where)
        op = get_op(node.op_type)
        if op is not None and domain not in ("", ML_DOMAIN, op.domain):
            op = None
        if op is None:
            if self.expand_function(node, domain, scope, where):
                return
            raise UnsupportedError(f"unsupported op {node.op_type!r}", where)
        if op.upgrade is not None:
            op.upgrade(ctx)
            if ctx.op != op.name:
                op = get_op(ctx.op)
                if op is None:
                    raise UnsupportedError(f"unsupported op {ctx.op!r}", where)
        self.check_arity(op, ctx, where)
        attrs = self.fill_attrs(op, ctx.attrs, where)
        args = tuple(scope.lookup(n, where) if n else None for n in ctx.inputs)
        while args and args[-1] is None:
            args = args[:-1]
        in_types = [a.type if a is not None else None for a in args]
        consts = [scope.const_value(n) if n else None for n in ctx.inputs]
        ictx = InferCtx(op.name, where, attrs, in_types, consts, len(node.output))
        try:
            out_types = list(op.infer(ictx))
        except AnvilError:
            raise
        except Exception as e:  # a bug in a type relation still reports the node
            raise AnvilError(f"internal error inferring {op.name}: {type(e).__name__}: {e}",
                             where) from e
        outs = []
        for k, oname in enumerate(node.output):
            t = out_types[k] if k < len(out_types) else None
            if t is None:
                raise AnvilError(f"{op.name} produced no type for output {k}", where)
            outs.append(scope.define(oname or f"{node.op_type}_unused", t))
        scope.body.append(Binding(tuple(outs), Call(op.name, args, make_attrs(attrs)),
                                  origin=node.name))
        if not args or all(n == "" or scope.const_value(n) is not None for n in ctx.inputs):
            pass  # constant folding happens in graph passes, not at import

    def check_old_opset(self, op_type: str, opset: int, where: str) -> None:
        """Models older than opset 7 import only where the op has not changed since."""
        try:
            old = onnx.defs.get_schema(op_type, opset, "")
            new = onnx.defs.get_schema(op_type, MIN_OPSET, "")
        except Exception:
            raise UnsupportedError(f"{op_type} at opset {opset} is not supported", where) \
                from None
        if old.since_version != new.since_version:
            raise UnsupportedError(f"{op_type} at opset {opset} is older than the oldest "
                                   f"supported form (opset {MIN_OPSET})", where)

    def constant(self, ctx: ImportCtx, scope: _Scope, node: onnx.NodeProto) -> None:
        """A Constant node becomes a Const binding."""
        if len(ctx.attrs) != 1 or len(node.output) != 1:
            raise ModelError("Constant needs exactly one value attribute and one output",
                             ctx.where)
        (key, v), = ctx.attrs.items()
        kinds = {
            "value": None, "sparse_value": None, "value_float": np.float32,
            "value_floats": np.float32, "value_int": np.int64, "value_ints": np.int64,
            "value_string": object, "value_strings": object,
        }
        if key not in kinds:
            raise ModelError(f"Constant has no attribute {key!r}", ctx.where)
        arr = v.array if isinstance(v, Tensor) else np.array(v, dtype=kinds[key])
        scope.bind_const(arr, "", name=node.output[0])

    def check_arity(self, op, ctx: ImportCtx, where: str) -> None:
        lo, hi = op.inputs
        n = len(ctx.inputs)
        while n and not ctx.inputs[n - 1]:
            n -= 1
        if n < lo or (hi is not None and n > hi):
            want = f"{lo}" if hi == lo else f"{lo}..{hi if hi is not None else 'n'}"
            raise ModelError(f"{op.name} takes {want} inputs, got {n}", where)
        for i in range(min(lo, len(ctx.inputs))):
            if not ctx.inputs[i]:
                raise ModelError(f"{op.name} input {i} is required", where)
        olo, ohi = op.outputs
        if not olo <= ctx.num_outputs <= ohi:
            raise ModelError(f"{op.name} has {olo}..{ohi} outputs, got {ctx.num_outputs}", where)

    def fill_attrs(self, op, attrs: dict[str, Any], where: str) -> dict[str, Any]:
        out = {}
        for k, v in attrs.items():
            if k not in op.attrs:
                raise ModelError(f"{op.name} has no attribute {k!r}", where)
            out[k] = _coerce_attr(op.name, k, op.attrs[k].kind, v, where)
        for k, spec in op.attrs.items():
            if k not in out and spec.default is REQUIRED:
                raise ModelError(f"{op.name} requires attribute {k!r}", where)
        return {**op.default_attrs(), **out}

    def body_input_types(self, node: onnx.NodeProto, scope: _Scope,
                         where: str) -> list[TensorType] | None:
        """Types for a Loop/Scan body's inputs, for bodies that leave them untyped."""
        def typ(name: str) -> TensorType | None:
            return scope.lookup(name, where).type if name else None

        if node.op_type == "Loop" and not node.domain:
            carried = [typ(n) for n in node.input[2:]]
            return [TensorType((), DType.int64), TensorType((), DType.bool), *carried]
        if node.op_type == "Scan" and not node.domain:
            n_scan = next((a.i for a in node.attribute if a.name == "num_scan_inputs"), 0)
            ins = [typ(n) for n in node.input]
            state, scans = ins[: len(ins) - n_scan], ins[len(ins) - n_scan:]
            return [*state, *(TensorType(None if t is None or t.shape is None
                                         else (UNKNOWN,) * (len(t.shape) - 1), t.dtype)
                              if t is not None else None for t in scans)]
        return None

    def attr(self, a: onnx.AttributeProto, where: str, scope: _Scope,
             body_types: list[TensorType] | None = None) -> Any:
        A = onnx.AttributeProto
        if a.ref_attr_name:
            raise ModelError(f"attribute {a.name!r} refers to a function attribute", where)
        t = a.type
        if t == A.INT:
            return int(a.i)
        if t == A.FLOAT:
            return float(np.float32(a.f))
        if t == A.STRING:
            return a.s.decode("utf-8", errors="replace")
        if t == A.INTS:
            return tuple(int(x) for x in a.ints)
        if t == A.FLOATS:
            return tuple(float(np.float32(x)) for x in a.floats)
        if t == A.STRINGS:
            return tuple(s.decode("utf-8", errors="replace") for s in a.strings)
        if t == A.TENSOR:
            return tensor_value(a.t, where)
        if t == A.SPARSE_TENSOR:
            return Tensor(numpy_helper.to_array(a.sparse_tensor))
        if t == A.GRAPH:
            return self.graph(a.g, a.name, outer={}, parent=scope, input_types=body_types)
        if t == A.TYPE_PROTO:
            return tensor_type_of(a.tp, where).dtype.value
        raise UnsupportedError(f"attribute {a.name!r} of kind {A.AttributeType.Name(t)}", where)

    # -- function expansion ------------------------------------------------------------

    def expand_function(self, node: onnx.NodeProto, domain: str, scope: _Scope,
                        where: str) -> bool:
        """Inline a model-local function, or a standard op ONNX defines as a function."""
        fproto = self.functions.get((domain, node.op_type))
        if fproto is None:
            try:
                schema = onnx.defs.get_schema(node.op_type, self.opsets.get(domain, 1), domain)
            except Exception:
                return False
            fproto = _schema_function(schema, self.opsets.get(domain, 1), node, scope, where)
            if fproto is None:
                return False
        if not fproto.node:
            return False
        saved = dict(self.opsets)
        for o in fproto.opset_import:
            self.opsets[o.domain or ""] = o.version
        try:
            self._inline(fproto, node, scope)
        finally:
            self.opsets = saved
        return True

    def _inline(self, fproto, node: onnx.NodeProto, scope: _Scope) -> None:
        attr_map = {a.name: a for a in node.attribute}
        defaults = {a.name: a for a in fproto.attribute_proto}
        rename: dict[str, str] = {}
        for formal, actual in zip(fproto.input, node.input, strict=False):
            rename[formal] = actual
        for formal, actual in zip(fproto.output, node.output, strict=False):
            rename[formal] = actual
        prefix = self.fresh(f"{node.op_type}_")
        for k, inner in enumerate(fproto.node):
            n = onnx.NodeProto()
            n.CopyFrom(inner)
            del n.input[:]
            del n.output[:]
            n.input.extend(rename.get(x, f"{prefix}/{x}") if x else "" for x in inner.input)
            n.output.extend(rename.get(x, f"{prefix}/{x}") if x else "" for x in inner.output)
            del n.attribute[:]
            for a in inner.attribute:
                if a.ref_attr_name:
                    src = attr_map.get(a.ref_attr_name) or defaults.get(a.ref_attr_name)
                    if src is None:
                        continue
                    b = onnx.AttributeProto()
                    b.CopyFrom(src)
                    b.name = a.name
                    n.attribute.append(b)
                else:
                    n.attribute.append(a)
            n.name = f"{node.name or node.op_type}/{inner.op_type}{k}"
            self.node(n, scope, k)


def _schema_function(schema, opset: int, node, scope: _Scope, where: str):
    if schema.has_function:
        versions = sorted(getattr(schema, "function_opset_versions", []) or [opset])
        usable = [v for v in versions if v <= opset] or versions[:1]
        f = onnx.FunctionProto()
        f.ParseFromString(schema.get_function_with_opset_version(usable[-1]))
        return f
    if getattr(schema, "has_context_dependent_function", False):
        try:
            in_types = []
            for name in node.input:
                if not name:
                    in_types.append(onnx.TypeProto().SerializeToString())
                    continue
                v = scope.lookup(name, where)
                tp = onnx.helper.make_tensor_type_proto(
                    v.type.dtype.onnx,
                    None if v.type.shape is None else [d if isinstance(d, int) else None
                                                       for d in v.type.shape],
                )
                in_types.append(tp.SerializeToString())
            body = schema.get_context_dependent_function(node.SerializeToString(), in_types)
        except Exception:
            return None
        f = onnx.FunctionProto()
        f.ParseFromString(body)
        return f
    return None


_ATTR_PY = {
    "int": int, "float": float, "string": str,
}


def _coerce_attr(op: str, name: str, kind: str, v: Any, where: str) -> Any:
    bad = ModelError(f"{op} attribute {name!r} must be {kind}, got {type(v).__name__}", where)
    if kind == "any":
        return v
    if kind == "int":
        if isinstance(v, int):
            return v
        raise bad
    if kind == "float":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        raise bad
    if kind == "string":
        if isinstance(v, str):
            return v
        raise bad
    if kind in ("ints", "floats", "strings"):
        if not isinstance(v, tuple):
            if kind == "ints" and isinstance(v, int):
                return (v,)
            raise bad
        elem = {"ints": int, "floats": (int, float), "strings": str}[kind]
        if not all(isinstance(x, elem) for x in v):
            raise bad
        return tuple(float(x) for x in v) if kind == "floats" else v
    if kind == "tensor":
        if isinstance(v, Tensor):
            return v
        raise bad
    if kind == "graph":
        if isinstance(v, Function):
            return v
        raise bad
    return v
