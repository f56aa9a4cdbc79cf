"""A small tensor-expression layer: ops declare *what* to compute, lowering decides *how*.

A `Tensor` is a placeholder (a kernel parameter) or a compute stage: a shape, and a body
expression over index variables that reads other tensors with `t[i, j]` (a loop-IR
`BufferLoad` of the tensor's buffer). A stage may reduce over reduction variables.

`lower_stages` turns the stages reachable from some outputs into one PrimFunc: injective
stages are inlined into their consumers, reductions (and outputs) are materialised, each
in its own loop nest.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from compiler.dtypes import DType
from compiler.loop import build as B
from compiler.loop.ir import (
    Allocate,
    BinKind,
    BinOp,
    Buffer,
    BufferLoad,
    BufferStore,
    Expr,
    ExprLike,
    For,
    ForKind,
    IfThenElse,
    PrimFunc,
    SeqStmt,
    Stmt,
    Var,
    as_expr,
    const,
)
from compiler.loop.traverse import substitute, transform, walk

INDEX = DType.int64
_ids = itertools.count()
_BY_BUFFER: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # Buffer -> Tensor


@dataclass(frozen=True)
class RVar:
    """A reduction variable ranging over [0, extent)."""

    var: Var
    extent: int


@dataclass(frozen=True)
class Reduction:
    """`kind` over `rvars` of `value` (only where `where` holds), starting from `init`."""

    kind: str  # sum | prod | max | min
    value: Expr
    rvars: tuple[RVar, ...]
    init: Expr
    where: Expr | None = None


@dataclass(eq=False)
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: DType
    buffer: Buffer
    axes: tuple[Var, ...] = ()
    body: Expr | Reduction | None = None  # None: a placeholder
    inline: bool = True  # injective stages are inlined unless this is False
    extra: dict = field(default_factory=dict)
    deps: tuple[Tensor, ...] = ()  # the tensors the body reads (kept alive for lowering)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_placeholder(self) -> bool:
        return self.body is None

    def __getitem__(self, index: ExprLike | tuple[ExprLike, ...]) -> BufferLoad:
        idx = index if isinstance(index, tuple) else (index,)
        if len(idx) != len(self.shape):
            raise ValueError(f"{self.name} has rank {len(self.shape)}, indexed with {len(idx)}")
        return BufferLoad(self.buffer, tuple(as_expr(i, _IDX) for i in idx))

    def __repr__(self) -> str:
        return f"Tensor({self.name}, {self.shape}, {self.dtype})"


_IDX = Var("_", INDEX)


def idx(value: int) -> Expr:
    return const(value, INDEX)


def _unique(name: str) -> str:
    return f"{name}_{next(_ids)}"


def placeholder(name: str, shape: Sequence[int], dtype: DType) -> Tensor:
    shape = tuple(int(d) for d in shape)
    t = Tensor(name, shape, dtype, B.buffer(name, dtype, [idx(d) for d in shape]))
    _BY_BUFFER[t.buffer] = t
    return t


def rvar(name: str, extent: int) -> RVar:
    return RVar(Var(_unique(name), INDEX), int(extent))


def reduce(kind: str, value: Expr, rvars: Sequence[RVar], where: Expr | None = None,
           init: Expr | None = None) -> Reduction:
    if init is None:
        init = identity(kind, value.dtype)
    return Reduction(kind, value, tuple(rvars), init, where)


def identity(kind: str, dtype: DType) -> Expr:
    import numpy as np

    if kind == "sum":
        return const(0, dtype) if not dtype.is_float else const(0.0, dtype)
    if kind == "prod":
        return const(1, dtype) if not dtype.is_float else const(1.0, dtype)
    if dtype.is_float:
        return const(float("-inf") if kind == "max" else float("inf"), dtype)
    if dtype is DType.bool:
        return const(kind == "min", dtype)
    info = np.iinfo(dtype.np)
    return const(int(info.min) if kind == "max" else int(info.max), dtype)


def compute(name: str, shape: Sequence[int], fn: Callable[..., Expr | Reduction],
            dtype: DType | None = None, inline: bool = True) -> Tensor:
    """A stage whose element at `axes` is `fn(*axes)`."""
    shape = tuple(int(d) for d in shape)
    uname = _unique(name)
    axes = tuple(Var(f"{uname}_i{k}", INDEX) for k in range(len(shape)))
    body = fn(*axes)
    if not isinstance(body, Reduction):
        body = as_expr(body)
    dt = dtype or (body.value.dtype if isinstance(body, Reduction) else body.dtype)
    if isinstance(body, Expr) and body.dtype != dt:
        body = B.cast(dt, body)
    buf = B.buffer(uname, dt, [idx(d) for d in shape])
    deps = tuple(dict.fromkeys(d for b in _loads(body) if (d := _BY_BUFFER.get(b)) is not None))
    t = Tensor(uname, shape, dt, buf, axes, body, inline, deps=deps)
    _BY_BUFFER[buf] = t
    return t


# ---------------------------------------------------------------------------------------
# lowering


def _loads(e: Expr | Reduction) -> list[Buffer]:
    roots = [e.value, e.init] + ([e.where] if e.where is not None else []) \
        if isinstance(e, Reduction) else [e]
    return [n.buffer for r in roots for n in walk(r) if isinstance(n, BufferLoad)]


def _reachable(outputs: Sequence[Tensor]) -> list[Tensor]:
    out, stack, seen = [], list(outputs), set()
    while stack:
        t = stack.pop()
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
            stack.extend(t.deps)
    return out


def _combine(kind: str, acc: Expr, v: Expr) -> Expr:
    if kind == "sum":
        return acc + v
    if kind == "prod":
        return acc * v
    if kind == "max":
        return BinOp(BinKind.max, acc, v)
    if kind == "min":
        return BinOp(BinKind.min, acc, v)
    raise ValueError(f"unknown reduction {kind}")


def lower_stages(name: str, inputs: Sequence[Tensor], outputs: Sequence[Tensor],
                 parallel: bool = True) -> PrimFunc:
    """One PrimFunc computing `outputs` from `inputs` (params: inputs, then outputs)."""
    by_buf: dict[Buffer, Tensor] = {}
    order: list[Tensor] = []
    seen: set[int] = set()

    def visit(t: Tensor) -> None:
        if id(t) in seen:
            return
        seen.add(id(t))
        by_buf[t.buffer] = t
        if t.body is not None:
            for b in _loads(t.body):
                producer = _known.get(b)
                if producer is not None:
                    visit(producer)
        order.append(t)

    _known = {t.buffer: t for t in _reachable(outputs)}
    for t in outputs:
        visit(t)
    out_ids = {id(t) for t in outputs}
    in_ids = {id(t) for t in inputs}
    for t in order:
        if t.is_placeholder and id(t) not in in_ids:
            raise ValueError(f"placeholder {t.name} is not a kernel input")

    def materialised(t: Tensor) -> bool:
        return (t.is_placeholder or id(t) in out_ids or isinstance(t.body, Reduction)
                or not t.inline)

    def inline(e: Expr) -> Expr:
        def fn(n):
            if isinstance(n, BufferLoad):
                t = by_buf.get(n.buffer)
                if t is not None and not materialised(t):
                    body = inline(t.body)
                    return substitute(body, dict(zip(t.axes, n.indices, strict=True)))
            return None

        return transform(e, fn)

    stmts: list[Stmt] = []
    allocs: list[Buffer] = []
    for t in order:
        if t.is_placeholder:
            continue
        if not materialised(t):
            continue
        stmts.append(_nest(t, inline, parallel))
        if id(t) not in out_ids:
            allocs.append(t.buffer)
    body: Stmt = stmts[0] if len(stmts) == 1 else SeqStmt(tuple(stmts))
    for b in reversed(allocs):
        body = Allocate(b, body)
    params = tuple(t.buffer for t in inputs) + tuple(t.buffer for t in outputs)
    return PrimFunc(name, params, body)


def _nest(t: Tensor, inline: Callable[[Expr], Expr], parallel: bool) -> Stmt:
    body = t.body
    axes = t.axes
    if isinstance(body, Reduction):
        acc = B.buffer(f"{t.name}_acc", t.dtype, [idx(1)], scope="local")
        zero = idx(0)
        val = inline(body.value)
        upd: Stmt = BufferStore(acc, _combine(body.kind, BufferLoad(acc, (zero,)), val), (zero,))
        if body.where is not None:
            upd = IfThenElse(inline(body.where), upd)
        for r in reversed(body.rvars):
            upd = For(r.var, idx(0), idx(r.extent), ForKind.serial, upd)
        inner: Stmt = Allocate(acc, SeqStmt((
            BufferStore(acc, inline(body.init), (zero,)),
            upd,
            BufferStore(t.buffer, BufferLoad(acc, (zero,)), axes),
        )))
    else:
        inner = BufferStore(t.buffer, inline(body), axes)
    total = 1
    for d in t.shape:
        total *= d
    for k in reversed(range(len(axes))):
        kind = ForKind.serial
        if parallel and k == 0 and t.shape[0] > 1 and total >= 4096:
            kind = ForKind.parallel
        inner = For(axes[k], idx(0), idx(t.shape[k]), kind, inner)
    return inner
