"""The loop-IR interpreter: the executable definition of the IR's meaning.

`run(func, args)` executes a verified function on numpy arrays (mutated in place) and
scalars. Every function is compiled once into a tree of Python closures (cached), so the
hot loop does no isinstance dispatch.

Values: scalar integers are Python ints (wrapped to their dtype after each operation),
bools are Python bools, float scalars and scalars of the storage-only dtypes are numpy
(ml_dtypes) scalars of their exact dtype (so float32 arithmetic rounds to float32 at every
operation), and vectors are 1-D numpy arrays.
float16/bfloat16 operations compute in float32 and round once, which is exact for + - * /
and sqrt. Transcendental intrinsics use numpy's implementations (not correctly rounded).

Undefined behaviour raises `UndefinedBehavior`: out-of-bounds loads and stores, reads of
uninitialised elements of an `Allocate`d buffer (parameters count as initialised), integer
division or modulo by zero or `MIN / -1`, shift amounts outside `[0, bits)`, float->int casts
(minifloats included) of NaN, infinities or out-of-range values, negative allocation extents,
loop variables that overflow their dtype, and failed `Assert`s (as `AssertFailure`). All four
loop kinds and thread-bound loops run serially, in order (so `barrier()` does nothing). A
vector store whose lanes hit the same element writes the lanes in order (the highest lane
wins).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from compiler.dtypes import DType
from compiler.errors import AnvilError, ExecutionError
from compiler.loop.ir import (
    Allocate,
    Assert,
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
    UnKind,
    UnOp,
    Var,
    int_range,
    is_float,
    is_int,
    is_storage,
    is_void_call,
)
from compiler.loop.numeric import float_from_f64, wrap_int
from compiler.loop.semantics import (
    FLOAT_INTRINSICS,
    cast_value,
    ieee_minmax,
    int_intrinsic,
    reinterpret_value,
)
from compiler.loop.verifier import verify


class UndefinedBehavior(AnvilError):
    """The program did something the loop IR leaves undefined."""

    kind = "undefined behavior"


class AssertFailure(UndefinedBehavior):
    kind = "assertion failure"


Env = list[Any]
Fn = Callable[[Env], Any]
Exec = Callable[[Env], None]


def _short(node: Node) -> str:
    text = str(node).split("\n")[0].strip()
    return text if len(text) <= 72 else text[:69] + "..."


def _show_index(idx: tuple) -> str:
    return ", ".join(str(np.asarray(i).tolist()) for i in idx)


class _Mem:
    """A buffer at run time. `init` is None when every element counts as initialised."""

    __slots__ = ("name", "array", "init", "shape")

    def __init__(self, name: str, array: np.ndarray, init: np.ndarray | None) -> None:
        self.name = name
        self.array = array
        self.init = init
        self.shape = array.shape


# ----------------------------------------------------------------------------- compiler


class _Compiler:
    def __init__(self, func: PrimFunc) -> None:
        self.where = f"@{func.name}"
        self.scope: dict[str, int] = {}
        self.nslots = 0

    def ub(self, node: Node, message: str, cls: type[UndefinedBehavior] = UndefinedBehavior
           ) -> UndefinedBehavior:
        return cls(f"{message} in `{_short(node)}`", where=self.where)

    def new_slot(self, name: str) -> int:
        self.scope[name] = self.nslots
        self.nslots += 1
        return self.nslots - 1

    def scoped(self, name: str, build: Callable[[int], Any]) -> Any:
        old = self.scope.get(name)
        slot = self.new_slot(name)
        try:
            return build(slot)
        finally:
            if old is None:
                del self.scope[name]
            else:
                self.scope[name] = old

    # -- expressions ---------------------------------------------------------------------

    def expr(self, e: Expr) -> Fn:
        if isinstance(e, IntImm):
            v: Any = bool(e.value) if e.dtype is DType.bool else e.value
            return lambda env: v
        if isinstance(e, FloatImm):
            fv = float_from_f64(e.value, e.dtype)[()]
            return lambda env: fv
        if isinstance(e, Var):
            return operator.itemgetter(self.scope[e.name])
        if isinstance(e, BinOp):
            return self.binop(e)
        if isinstance(e, CmpOp):
            return self.cmpop(e)
        if isinstance(e, UnOp):
            return self.unop(e)
        if isinstance(e, Select):
            return self.select(e)
        if isinstance(e, Cast):
            return self.cast(e)
        if isinstance(e, Reinterpret):
            fv, src, dst, lanes = self.expr(e.value), e.value.dtype, e.dtype, e.lanes
            return lambda env: reinterpret_value(fv(env), src, dst, lanes)
        if isinstance(e, Call):
            return self.call(e)
        if isinstance(e, Ramp):
            return self.ramp(e)
        if isinstance(e, Broadcast):
            fval, lanes, np_dt = self.expr(e.value), e.lanes, e.dtype.np
            return lambda env: np.full(lanes, fval(env), np_dt)
        if isinstance(e, BufferLoad):
            return self.load(e)
        if isinstance(e, Let):
            fval = self.expr(e.value)
            return self.scoped(e.var.name, lambda slot: self._let(slot, fval, self.expr(e.body)))
        raise AssertionError(f"cannot interpret {type(e).__name__}")

    @staticmethod
    def _let(slot: int, fval: Fn, fbody: Fn) -> Fn:
        def run(env: Env) -> Any:
            env[slot] = fval(env)
            return fbody(env)

        return run

    def binop(self, e: BinOp) -> Fn:
        fa, fb, dt, op, vector = self.expr(e.a), self.expr(e.b), e.a.dtype, e.op, e.lanes != 1
        if op in (BinKind.floordiv, BinKind.floormod, BinKind.truncdiv, BinKind.truncmod):
            return self.division(e, fa, fb)
        if op in (BinKind.shl, BinKind.shr):
            return self.shift(e, fa, fb)
        if op in (BinKind.min, BinKind.max) and is_float(dt):
            mm = ieee_minmax(op is BinKind.min, vector)
            return lambda env: mm(fa(env), fb(env))
        fn = {
            BinKind.add: operator.add, BinKind.sub: operator.sub, BinKind.mul: operator.mul,
            BinKind.div: operator.truediv, BinKind.bitand: operator.and_,
            BinKind.bitor: operator.or_, BinKind.bitxor: operator.xor,
            BinKind.and_: operator.and_, BinKind.or_: operator.or_,
            BinKind.min: np.minimum if vector else min, BinKind.max: np.maximum if vector else max,
        }[op]
        if is_int(dt) and not vector and op in (BinKind.add, BinKind.sub, BinKind.mul):
            lo, hi = int_range(dt)

            def wrapped(env: Env) -> int:
                r = fn(fa(env), fb(env))
                return r if lo <= r <= hi else wrap_int(r, dt)

            return wrapped
        return lambda env: fn(fa(env), fb(env))

    def division(self, e: BinOp, fa: Fn, fb: Fn) -> Fn:
        dt, op, vector = e.a.dtype, e.op, e.lanes != 1
        lo = int_range(dt)[0] if dt.is_signed else None

        def checked(a: Any, b: Any) -> None:
            if np.any(b == 0):
                raise self.ub(e, f"integer {op.label} by zero")
            if lo is not None and np.any((b == -1) & (a == lo)):
                raise self.ub(e, f"{op.label} of {lo} by -1 overflows {dt.value}")

        def trunc_q(a: Any, b: Any) -> Any:
            q = a // b
            adjust = (a % b != 0) & ((a < 0) != (b < 0))
            return q + adjust.astype(q.dtype) if vector else q + int(adjust)

        impl = {
            BinKind.floordiv: operator.floordiv, BinKind.floormod: operator.mod,
            BinKind.truncdiv: trunc_q, BinKind.truncmod: lambda a, b: a - b * trunc_q(a, b),
        }[op]

        def run(env: Env) -> Any:
            a, b = fa(env), fb(env)
            checked(a, b)
            return impl(a, b)

        return run

    def shift(self, e: BinOp, fa: Fn, fb: Fn) -> Fn:
        dt, bits = e.a.dtype, e.a.dtype.bits
        left = e.op is BinKind.shl
        vector = e.lanes != 1

        def run(env: Env) -> Any:
            a, b = fa(env), fb(env)
            if np.any(b < 0) or np.any(b >= bits):
                bad = b if not vector else b[(b < 0) | (b >= bits)][0]
                raise self.ub(e, f"shift amount {bad} is outside [0, {bits})")
            if vector:
                return np.left_shift(a, b) if left else np.right_shift(a, b)
            return wrap_int(a << b, dt) if left else a >> b

        return run

    def cmpop(self, e: CmpOp) -> Fn:
        fa, fb = self.expr(e.a), self.expr(e.b)
        fn = {CmpKind.eq: operator.eq, CmpKind.ne: operator.ne, CmpKind.lt: operator.lt,
              CmpKind.le: operator.le, CmpKind.gt: operator.gt, CmpKind.ge: operator.ge}[e.op]
        if e.lanes != 1:
            return lambda env: np.asarray(fn(fa(env), fb(env)), bool)
        return lambda env: bool(fn(fa(env), fb(env)))

    def unop(self, e: UnOp) -> Fn:
        fa, dt, vector = self.expr(e.a), e.dtype, e.lanes != 1
        if e.op is UnKind.not_:
            return (lambda env: np.logical_not(fa(env))) if vector else \
                (lambda env: not fa(env))
        if vector or is_float(dt):
            fn = np.negative if e.op is UnKind.neg else np.invert
            return lambda env: fn(fa(env))
        if e.op is UnKind.neg:
            return lambda env: wrap_int(-fa(env), dt)
        return lambda env: wrap_int(~fa(env), dt)

    def select(self, e: Select) -> Fn:
        fc, ft, ff = self.expr(e.cond), self.expr(e.t), self.expr(e.f)
        if e.lanes != 1:
            return lambda env: np.where(fc(env), ft(env), ff(env))

        def run(env: Env) -> Any:
            c, t, f = fc(env), ft(env), ff(env)
            return t if c else f

        return run

    def cast(self, e: Cast) -> Fn:
        fv, src, dst, lanes = self.expr(e.value), e.value.dtype, e.dtype, e.lanes

        def fail(message: str) -> None:
            raise self.ub(e, message)

        return lambda env: cast_value(fv(env), src, dst, lanes, fail)

    def call(self, e: Call) -> Fn:
        if is_void_call(e):  # barrier(): threads run one after another here, so a no-op
            return lambda env: 0
        fargs = [self.expr(a) for a in e.args]
        dt, vector = e.args[0].dtype, e.lanes != 1
        if is_int(dt):
            fn = int_intrinsic(e.op, dt, vector)
            (fa,) = fargs
            return lambda env: fn(fa(env))
        ffn = FLOAT_INTRINSICS[e.op]
        to_bool = e.dtype is DType.bool and not vector
        if len(fargs) == 1:
            (fa,) = fargs
            if to_bool:
                return lambda env: bool(ffn(dt, fa(env)))
            return lambda env: ffn(dt, fa(env))
        fa, fb = fargs
        return lambda env: ffn(dt, fa(env), fb(env))

    def ramp(self, e: Ramp) -> Fn:
        fbase, fstride, lanes, dt = self.expr(e.base), self.expr(e.stride), e.lanes, e.dtype

        def run(env: Env) -> np.ndarray:
            base, stride = fbase(env), fstride(env)
            return np.array([wrap_int(base + k * stride, dt) for k in range(lanes)], dt.np)

        return run

    # -- memory --------------------------------------------------------------------------

    def access(self, node: BufferLoad | BufferStore) -> tuple[int, Callable[[Env], tuple]]:
        """The buffer's slot and a function computing a bounds-checked index tuple."""
        slot = self.scope[node.buffer.name]
        fidx = [self.expr(i) for i in node.indices]
        lanes = max((i.lanes for i in node.indices), default=1)
        what = "load" if isinstance(node, BufferLoad) else "store"

        def oob(mem: _Mem, idx: tuple) -> UndefinedBehavior:
            return self.ub(node, f"out-of-bounds {what} {mem.name}[{_show_index(idx)}] (shape "
                                 f"{list(mem.shape)})")

        if lanes == 1 and len(fidx) == 1:
            (f0,) = fidx

            def index(env: Env) -> tuple:
                i = f0(env)
                mem = env[slot]
                if 0 <= i < mem.shape[0]:
                    return (i,)
                raise oob(mem, (i,))
        elif lanes == 1 and len(fidx) == 2:
            f0, f1 = fidx

            def index(env: Env) -> tuple:
                i, j = f0(env), f1(env)
                mem = env[slot]
                n0, n1 = mem.shape
                if 0 <= i < n0 and 0 <= j < n1:
                    return (i, j)
                raise oob(mem, (i, j))
        elif lanes == 1:
            def index(env: Env) -> tuple:
                mem = env[slot]
                idx = tuple(f(env) for f in fidx)
                for i, n in zip(idx, mem.shape, strict=True):
                    if not 0 <= i < n:
                        raise oob(mem, idx)
                return idx
        else:
            def index(env: Env) -> tuple:
                mem = env[slot]
                idx = tuple(np.broadcast_to(np.asarray(f(env), np.int64), (lanes,))
                            for f in fidx)
                for i, n in zip(idx, mem.shape, strict=True):
                    if np.any(i < 0) or np.any(i >= n):
                        raise oob(mem, idx)
                return idx

        return slot, index

    def load(self, e: BufferLoad) -> Fn:
        slot, index = self.access(e)

        def uninit(mem: _Mem, idx: tuple) -> UndefinedBehavior:
            return self.ub(e, f"read of uninitialised memory {mem.name}[{_show_index(idx)}]")

        if e.lanes != 1:
            def load_vector(env: Env) -> np.ndarray:
                idx = index(env)
                mem = env[slot]
                if mem.init is not None and not mem.init[idx].all():
                    raise uninit(mem, idx)
                return mem.array[idx]

            return load_vector
        as_python = not (is_float(e.dtype) or is_storage(e.dtype))

        def load(env: Env) -> Any:
            idx = index(env)
            mem = env[slot]
            if mem.init is not None and not mem.init[idx]:
                raise uninit(mem, idx)
            return mem.array.item(idx) if as_python else mem.array[idx]

        return load

    # -- statements ----------------------------------------------------------------------

    def stmt(self, s: Stmt) -> Exec:
        if isinstance(s, SeqStmt):
            parts = [self.stmt(x) for x in s.stmts]

            def run_seq(env: Env) -> None:
                for part in parts:
                    part(env)

            return run_seq
        if isinstance(s, For):
            return self.loop(s)
        if isinstance(s, BufferStore):
            return self.store(s)
        if isinstance(s, IfThenElse):
            fc, then = self.expr(s.cond), self.stmt(s.then)
            other = self.stmt(s.else_) if s.else_ is not None else None

            def run_if(env: Env) -> None:
                if fc(env):
                    then(env)
                elif other is not None:
                    other(env)

            return run_if
        if isinstance(s, LetStmt):
            fval = self.expr(s.value)
            return self.scoped(s.var.name, lambda slot: self._let(slot, fval, self.stmt(s.body)))
        if isinstance(s, Allocate):
            return self.allocate(s)
        if isinstance(s, Evaluate):
            fv = self.expr(s.value)

            def run_eval(env: Env) -> None:
                fv(env)

            return run_eval
        if isinstance(s, Assert):
            fc = self.expr(s.cond)

            def run_assert(env: Env) -> None:
                if not fc(env):
                    raise self.ub(s, f"assertion failed: {s.message}", AssertFailure)

            return run_assert
        raise AssertionError(f"cannot interpret {type(s).__name__}")

    def loop(self, s: For) -> Exec:
        fmin, fext = self.expr(s.min), self.expr(s.extent)
        hi = int_range(s.var.dtype)[1]
        name = s.var.name

        def build(slot: int) -> Exec:
            body = self.stmt(s.body)

            def run_for(env: Env) -> None:
                lo, n = fmin(env), fext(env)
                if n > 0 and lo + n - 1 > hi:
                    raise self.ub(s, f"loop variable {name} overflows {s.var.dtype.value}")
                for v in range(lo, lo + n):
                    env[slot] = v
                    body(env)

            return run_for

        return self.scoped(name, build)

    def store(self, s: BufferStore) -> Exec:
        slot, index = self.access(s)
        fv = self.expr(s.value)
        vector = any(i.lanes != 1 for i in s.indices)

        def run_store(env: Env) -> None:
            idx = index(env)
            value = fv(env)
            mem = env[slot]
            if vector and len(set(np.ravel_multi_index(idx, mem.shape))) < len(idx[0]):
                for lane in range(len(idx[0])):
                    mem.array[tuple(i[lane] for i in idx)] = value[lane]
            else:
                mem.array[idx] = value
            if mem.init is not None:
                mem.init[idx] = True

        return run_store

    def allocate(self, s: Allocate) -> Exec:
        buf = s.buffer
        fshape = [self.expr(d) for d in buf.shape]

        def build(slot: int) -> Exec:
            body = self.stmt(s.body)

            def run_alloc(env: Env) -> None:
                shape = tuple(f(env) for f in fshape)
                if any(d < 0 for d in shape):
                    raise self.ub(s, f"allocation of {buf.name} with negative shape {shape}")
                env[slot] = _Mem(buf.name, np.zeros(shape, buf.dtype.np), np.zeros(shape, bool))
                body(env)
                env[slot] = None

            return run_alloc

        return self.scoped(buf.name, build)


class Compiled:
    """A verified function compiled to closures; call `run` on it or use `run(func, ...)`."""

    def __init__(self, func: PrimFunc) -> None:
        verify(func)
        self.func = func
        c = _Compiler(func)
        self.param_slots = [c.new_slot(p.name) for p in func.params]
        self.shapes = {p.name: [c.expr(d) for d in p.shape] for p in func.params
                       if isinstance(p, Buffer)}
        self.body = c.stmt(func.body)
        self.nslots = c.nslots

    def _scalar(self, p: Var, value: Any) -> Any:
        try:
            if p.lanes != 1:
                arr = np.asarray(value)
                if arr.shape != (p.lanes,):
                    raise ValueError(f"expected {p.lanes} lanes, got shape {arr.shape}")
                return arr.astype(p.dtype.np)
            if p.dtype is DType.bool:
                return bool(value)
            if is_int(p.dtype):
                lo, hi = int_range(p.dtype)
                if int(value) != value or not lo <= int(value) <= hi:
                    raise ValueError(f"{value!r} is not a value of {p.dtype.value}")
                return int(value)
            if is_storage(p.dtype):
                return np.asarray(value, p.dtype.np)[()]
            return float_from_f64(float(value), p.dtype)[()]
        except (TypeError, ValueError) as err:
            raise ExecutionError(f"bad value for scalar parameter {p.name}: {err}",
                                 where=f"@{self.func.name}") from None

    def run(self, args: Sequence[Any] | Mapping[str, Any]) -> dict[str, np.ndarray]:
        f, where = self.func, f"@{self.func.name}"
        if isinstance(args, Mapping):
            missing = [p.name for p in f.params if p.name not in args]
            extra = sorted(set(args) - {p.name for p in f.params})
            if missing or extra:
                raise ExecutionError(f"missing arguments {missing}, unexpected {extra}", where)
            values = [args[p.name] for p in f.params]
        else:
            values = list(args)
            if len(values) != len(f.params):
                raise ExecutionError(f"expected {len(f.params)} arguments, got {len(values)}",
                                     where)
        env: Env = [None] * self.nslots
        for p, slot, v in zip(f.params, self.param_slots, values, strict=True):
            if isinstance(p, Var):
                env[slot] = self._scalar(p, v)
        outputs = {}
        for p, slot, v in zip(f.params, self.param_slots, values, strict=True):
            if isinstance(p, Buffer):
                shape = tuple(fn(env) for fn in self.shapes[p.name])
                if not isinstance(v, np.ndarray) or v.dtype != p.dtype.np or v.shape != shape:
                    got = f"{v.dtype}{list(v.shape)}" if isinstance(v, np.ndarray) else \
                        type(v).__name__
                    raise ExecutionError(f"argument {p.name} must be a {p.dtype.value} array "
                                         f"of shape {list(shape)}, got {got}", where)
                if not v.flags.writeable:
                    raise ExecutionError(f"argument {p.name} is read-only", where)
                env[slot] = _Mem(p.name, v, None)
                outputs[p.name] = v
        with np.errstate(all="ignore"):
            self.body(env)
        return outputs


@functools.lru_cache(maxsize=256)
def compile_func(func: PrimFunc) -> Compiled:
    return Compiled(func)


def run(func: PrimFunc, args: Sequence[Any] | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Execute `func`, mutating its buffer arguments in place; returns them by name.

    `args` is a list in parameter order or a dict by name: numpy arrays of exactly the
    buffer's dtype and shape, and Python/numpy scalars for scalar parameters. Raises
    `VerifyError` for an ill-formed function, `ExecutionError` for bad arguments and
    `UndefinedBehavior` when the program's behaviour is undefined.
    """
    return compile_func(func).run(args)
