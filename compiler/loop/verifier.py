"""Well-formedness of loop-IR functions: `verify(func)` raises a one-line `VerifyError`.

Checked:
- every field holds the kind of value its node declares (an Expr where an Expr belongs, ...);
- dtypes are supported, literals fit their dtype, operand dtypes and lanes agree, and each
  operator, comparison and intrinsic gets operand dtypes it accepts (none accepts a
  storage-only dtype: those are loaded, stored, selected and cast only);
- a reinterpret keeps the bit width (8 bits or more, no bool);
- indices are integers, index count equals buffer rank, vector lanes agree;
- conditions (if, assert, select) are bool;
- a call of a void intrinsic (`barrier()`) is the whole value of an `eval`, nowhere else;
- names: every variable and buffer is used in scope and matches its definition, and no
  binder reuses a name already in scope (no shadowing; sibling scopes may reuse names);
- loops: the variable is a scalar integer of the bounds' dtype, vectorized loops have a
  constant extent, thread-bound loops have a valid tag that no enclosing loop binds and
  start at 0; only thread-bound loops carry a tag;
- memory: scopes are global/shared/local, parameters are global, local and shared
  allocations have constant shapes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields

from compiler.dtypes import DType
from compiler.errors import VerifyError
from compiler.loop.ir import (
    BIN_OPERANDS,
    INTRINSICS,
    SCOPES,
    SUPPORTED_DTYPES,
    THREAD_TAGS,
    UN_OPERANDS,
    VOID_DTYPE,
    Allocate,
    Assert,
    BinKind,
    BinOp,
    Broadcast,
    Buffer,
    BufferLoad,
    BufferStore,
    Call,
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
    Stmt,
    UnKind,
    UnOp,
    Var,
    can_reinterpret,
    int_range,
    is_float,
    is_int,
    is_storage,
    is_void_call,
)
from compiler.loop.numeric import round_float
from compiler.loop.traverse import children

_KINDS: dict[str, type | tuple[type, ...]] = {
    "Expr": Expr, "Stmt": Stmt, "Var": Var, "Buffer": Buffer, "DType": DType, "int": int,
    "str": str, "float": float, "BinKind": BinKind, "CmpKind": CmpKind, "UnKind": UnKind,
    "ForKind": ForKind,
}


def _conforms(value: object, ann: str) -> bool:
    """Whether `value` matches a field annotation such as `tuple[Expr, ...]` or `Stmt | None`."""
    if ann.startswith("tuple[") and ann.endswith(", ...]"):
        inner = ann[len("tuple["):-len(", ...]")]
        return isinstance(value, tuple) and all(_conforms(v, inner) for v in value)
    if " | " in ann:
        return any(_conforms(value, part) for part in ann.split(" | "))
    if ann == "None":
        return value is None
    kind = _KINDS.get(ann)
    return kind is None or isinstance(value, kind)


@functools.cache
def _annotations(cls: type) -> tuple[tuple[str, str], ...]:
    return tuple((f.name, str(f.type)) for f in fields(cls) if f.init)


def _operand_ok(dtype: DType, rule: str) -> bool:
    if rule == "num":
        return is_int(dtype) or is_float(dtype)
    if rule == "float":
        return is_float(dtype)
    if rule == "int":
        return is_int(dtype)
    return dtype is DType.bool


def _storage_hint(dtype: DType) -> str:
    return " (a storage-only dtype: cast it first)" if is_storage(dtype) else ""


def _short(node: Node) -> str:
    text = str(node).split("\n")[0].strip()
    return text if len(text) <= 72 else text[:69] + "..."


def _typ(e: Expr) -> str:
    return e.dtype.value if e.lanes == 1 else f"{e.dtype.value}x{e.lanes}"


class _Verifier:
    def __init__(self, func: PrimFunc) -> None:
        self.func = func
        self.names: dict[str, Var | Buffer] = {}
        self.threads: set[str] = set()

    def fail(self, node: Node, message: str) -> VerifyError:
        return VerifyError(f"{message}: `{_short(node)}`", where=f"@{self.func.name}")

    @contextmanager
    def bound(self, node: Node, item: Var | Buffer) -> Iterator[None]:
        if item.name in self.names:
            raise self.fail(node, f"'{item.name}' is already defined in this scope")
        self.names[item.name] = item
        try:
            yield
        finally:
            del self.names[item.name]

    # -- entry ---------------------------------------------------------------------------

    def run(self) -> None:
        f = self.func
        self.fields(f)
        for p in f.params:
            if p.name in self.names:
                raise self.fail(p, f"duplicate parameter name '{p.name}'")
            self.names[p.name] = p
        for p in f.params:
            if isinstance(p, Var):
                self.scalar_var(p)
                continue
            if p.scope != "global":
                raise self.fail(p, f"parameter buffer '{p.name}' must be global, not {p.scope}")
            self.buffer_def(p, p)
        self.visit(f.body)

    def fields(self, node: Node) -> None:
        for name, ann in _annotations(type(node)):
            if not _conforms(getattr(node, name), ann):
                got = type(getattr(node, name)).__name__
                raise self.fail(node, f"{type(node).__name__}.{name} must be {ann}, not {got}")

    def scalar_var(self, v: Var) -> None:
        self.dtype(v, v.dtype)
        if v.lanes < 1:
            raise self.fail(v, f"lanes must be positive, got {v.lanes}")

    def dtype(self, node: Node, dtype: DType) -> None:
        if dtype not in SUPPORTED_DTYPES:
            raise self.fail(node, f"dtype {dtype.value} is not supported by the loop IR")

    def buffer_def(self, node: Node, buf: Buffer) -> None:
        self.fields(buf)
        self.dtype(node, buf.dtype)
        if buf.scope not in SCOPES:
            raise self.fail(node, f"unknown memory scope '{buf.scope}' of '{buf.name}'")
        for d in buf.shape:
            self.visit(d)
            self.index_like(node, d, "dimension")
            if isinstance(d, IntImm) and d.value < 0:
                raise self.fail(node, f"negative dimension {d.value} of '{buf.name}'")
            if buf.scope != "global" and not isinstance(d, IntImm):
                raise self.fail(node, f"{buf.scope} buffer '{buf.name}' needs a constant shape")

    def index_like(self, node: Node, e: Expr, what: str, lanes_ok: bool = False) -> None:
        if not is_int(e.dtype):
            raise self.fail(node, f"{what} must be an integer, not {_typ(e)}")
        if e.lanes != 1 and not lanes_ok:
            raise self.fail(node, f"{what} must be a scalar, not {_typ(e)}")

    def bool_cond(self, node: Node, cond: Expr, what: str, lanes: int = 1) -> None:
        if cond.dtype is not DType.bool or cond.lanes not in (1, lanes):
            raise self.fail(node, f"{what} must be bool, not {_typ(cond)}")

    def same_type(self, node: Node, a: Expr, b: Expr, what: str) -> None:
        if a.dtype != b.dtype or a.lanes != b.lanes:
            raise self.fail(node, f"{what} have different types ({_typ(a)} vs {_typ(b)})")

    def buffer_ref(self, node: Node, buf: Buffer, indices: tuple[Expr, ...]) -> int:
        """Checks a load/store target; returns the access's lanes."""
        bound = self.names.get(buf.name)
        if isinstance(bound, Var):
            raise self.fail(node, f"'{buf.name}' is a variable, not a buffer")
        if bound is None:
            raise self.fail(node, f"undefined buffer '{buf.name}'")
        if bound is not buf and bound != buf:
            raise self.fail(node, f"buffer '{buf.name}' does not match its definition")
        if len(indices) != buf.rank:
            raise self.fail(node, f"'{buf.name}' has rank {buf.rank} but is indexed with "
                                  f"{len(indices)} indices")
        lanes = max((i.lanes for i in indices), default=1)
        for i in indices:
            self.visit(i)
            self.index_like(node, i, "index", lanes_ok=True)
            if i.lanes not in (1, lanes):
                raise self.fail(node, f"index lanes differ ({i.lanes} vs {lanes})")
        return lanes

    # -- the walk ------------------------------------------------------------------------

    def visit(self, n: Node) -> None:
        self.fields(n)
        if isinstance(n, Expr):
            self.dtype(n, n.dtype)
            if n.lanes < 1:
                raise self.fail(n, f"lanes must be positive, got {n.lanes}")
        if isinstance(n, For):
            self.loop(n)
        elif isinstance(n, (LetStmt, Let)):
            self.visit(n.value)
            self.scalar_var(n.var)
            self.same_type(n, n.var, n.value, "variable and value")
            with self.bound(n, n.var):
                self.visit(n.body)
        elif isinstance(n, Allocate):
            self.buffer_def(n, n.buffer)
            with self.bound(n, n.buffer):
                self.visit(n.body)
        elif isinstance(n, BufferLoad):
            self.buffer_ref(n, n.buffer, n.indices)
        elif isinstance(n, BufferStore):
            lanes = self.buffer_ref(n, n.buffer, n.indices)
            self.visit(n.value)
            if n.value.dtype != n.buffer.dtype or n.value.lanes != lanes:
                raise self.fail(n, f"stored value is {_typ(n.value)} but the target is "
                                   f"{n.buffer.dtype.value}{'x' + str(lanes) if lanes > 1 else ''}")
        elif isinstance(n, Evaluate) and is_void_call(n.value):
            assert isinstance(n.value, Call)
            self.fields(n.value)
            self.call(n.value, alone=True)
        elif isinstance(n, Var):
            bound = self.names.get(n.name)
            if bound is None:
                raise self.fail(n, f"variable '{n.name}' is used out of scope")
            if bound != n:
                raise self.fail(n, f"'{n.name}' is used as {_typ(n)} but defined as "
                                   f"{_typ(bound) if isinstance(bound, Var) else 'a buffer'}")
        else:
            for c in children(n):
                self.visit(c)
            self.local(n)

    def loop(self, n: For) -> None:
        self.visit(n.min)
        self.visit(n.extent)
        self.scalar_var(n.var)
        if not is_int(n.var.dtype) or n.var.lanes != 1:
            raise self.fail(n, f"loop variable must be a scalar integer, not {_typ(n.var)}")
        for bound in (n.min, n.extent):
            if bound.dtype != n.var.dtype or bound.lanes != 1:
                raise self.fail(n, f"loop bound is {_typ(bound)} but the variable is "
                                   f"{_typ(n.var)}")
        if n.kind is ForKind.vectorized and not (isinstance(n.extent, IntImm)
                                                 and n.extent.value > 0):
            raise self.fail(n, "vectorized loop needs a positive constant extent")
        tag = n.thread
        if n.kind is not ForKind.thread_binding:
            if tag is not None:
                raise self.fail(n, f"{n.kind.value} loop must not carry thread tag '{tag}'")
            with self.bound(n, n.var):
                self.visit(n.body)
            return
        if tag not in THREAD_TAGS:
            raise self.fail(n, f"invalid thread tag {tag!r} (expected one of "
                               f"{', '.join(THREAD_TAGS)})")
        if tag in self.threads:
            raise self.fail(n, f"thread tag '{tag}' is already bound by an enclosing loop")
        if not (isinstance(n.min, IntImm) and n.min.value == 0):
            raise self.fail(n, "thread-bound loop must start at 0")
        self.threads.add(tag)
        try:
            with self.bound(n, n.var):
                self.visit(n.body)
        finally:
            self.threads.discard(tag)

    def local(self, n: Node) -> None:
        """Checks of one node whose children are already checked."""
        if isinstance(n, (IntImm, FloatImm)) and is_storage(n.dtype):
            raise self.fail(n, f"no literals of the storage-only dtype {n.dtype.value} (cast a "
                               f"wider literal)")
        if isinstance(n, IntImm):
            lo, hi = int_range(n.dtype)
            if not (is_int(n.dtype) or n.dtype is DType.bool) or not lo <= n.value <= hi:
                raise self.fail(n, f"{n.value} is not a value of {n.dtype.value}")
        elif isinstance(n, FloatImm):
            if not is_float(n.dtype):
                raise self.fail(n, f"float literal of non-float dtype {n.dtype.value}")
            rounded = round_float(n.value, n.dtype)
            if rounded != n.value and not math.isnan(n.value):
                raise self.fail(n, f"{n.value!r} is not exactly a {n.dtype.value} value")
        elif isinstance(n, BinOp):
            self.same_type(n, n.a, n.b, f"operands of {n.op.label}")
            if not _operand_ok(n.a.dtype, BIN_OPERANDS[n.op]):
                raise self.fail(n, f"{n.op.label} does not accept {n.a.dtype.value} operands"
                                   f"{_storage_hint(n.a.dtype)}")
        elif isinstance(n, CmpOp):
            self.same_type(n, n.a, n.b, f"operands of {n.op.name}")
            if is_storage(n.a.dtype):
                raise self.fail(n, f"{n.op.name} does not accept {n.a.dtype.value} operands"
                                   f"{_storage_hint(n.a.dtype)}")
            ok = n.op in (CmpKind.eq, CmpKind.ne) or n.a.dtype is not DType.bool
            if not ok:
                raise self.fail(n, f"{n.op.name} does not accept bool operands")
        elif isinstance(n, Reinterpret):
            src = n.value.dtype
            if not can_reinterpret(src, n.dtype):
                raise self.fail(n, f"cannot reinterpret {src.value} ({src.bits} bits) as "
                                   f"{n.dtype.value} ({n.dtype.bits} bits): reinterpret needs "
                                   f"one width of at least 8 bits, and no bool")
        elif isinstance(n, UnOp):
            if not _operand_ok(n.a.dtype, UN_OPERANDS[n.op]):
                raise self.fail(n, f"{n.op.label} does not accept a {n.a.dtype.value} operand"
                                   f"{_storage_hint(n.a.dtype)}")
        elif isinstance(n, Select):
            self.bool_cond(n, n.cond, "select condition", n.t.lanes)
            self.same_type(n, n.t, n.f, "select arms")
        elif isinstance(n, Call):
            self.call(n)
        elif isinstance(n, (Ramp, Broadcast)):
            if n.lanes < 2:
                raise self.fail(n, f"{type(n).__name__.lower()} needs at least 2 lanes")
            if isinstance(n, Ramp):
                self.index_like(n, n.base, "ramp base")
                self.same_type(n, n.base, n.stride, "ramp base and stride")
            elif n.value.lanes != 1:
                raise self.fail(n, "broadcast value must be a scalar")
        elif isinstance(n, IfThenElse):
            self.bool_cond(n, n.cond, "if condition")
        elif isinstance(n, Assert):
            self.bool_cond(n, n.cond, "assert condition")

    def call(self, n: Call, alone: bool = False) -> None:
        """`alone`: the call is the whole value of an `eval` (where a void call must be)."""
        intr = INTRINSICS.get(n.op)
        if intr is None:
            raise self.fail(n, f"unknown intrinsic '{n.op}'")
        if len(n.args) != intr.arity:
            raise self.fail(n, f"{n.op} takes {intr.arity} arguments, got {len(n.args)}")
        if intr.result == "void":
            if not alone:
                raise self.fail(n, f"{n.op}() has no value: it stands alone as `eval {n.op}()`")
            if n.dtype != VOID_DTYPE:
                raise self.fail(n, f"{n.op} is typed {VOID_DTYPE.value}, not {n.dtype.value}")
            return
        for a in n.args[1:]:
            self.same_type(n, n.args[0], a, f"arguments of {n.op}")
        arg = n.args[0].dtype
        if not _operand_ok(arg, intr.operand):
            raise self.fail(n, f"{n.op} does not accept {arg.value} arguments"
                               f"{_storage_hint(arg)}")
        want = intr.result_dtype(n.args)
        if n.dtype != want:
            raise self.fail(n, f"{n.op} returns {want.value}, not {n.dtype.value}")


def verify(func: PrimFunc) -> None:
    """Raise `VerifyError` (one line, naming the function and node) if `func` is ill-formed."""
    if not isinstance(func, PrimFunc):
        raise VerifyError(f"expected a PrimFunc, got {type(func).__name__}")
    _Verifier(func).run()


def is_valid(func: PrimFunc) -> bool:
    try:
        verify(func)
    except VerifyError:
        return False
    return True
