"""Small constructors that keep hand-built loop IR readable.

Python numbers are coerced to immediates of the other operand's dtype (see `ir.as_expr`);
`Expr` operators (`+ - * / // % & | ^ << >> < <= > >= ~` and unary `-`) build nodes too.
"""

from __future__ import annotations

from compiler.dtypes import DType
from compiler.loop.ir import (
    INTRINSICS,
    BinKind,
    BinOp,
    Buffer,
    BufferStore,
    Call,
    Cast,
    CmpKind,
    CmpOp,
    Expr,
    ExprLike,
    For,
    ForKind,
    Reinterpret,
    Select,
    SeqStmt,
    Stmt,
    UnKind,
    UnOp,
    Var,
    as_expr,
)


def cast(dtype: DType, value: ExprLike) -> Expr:
    return Cast(dtype, as_expr(value))


def reinterpret(dtype: DType, value: Expr) -> Expr:
    """The bits of `value` read as `dtype` (of the same width)."""
    return Reinterpret(dtype, value)


def select(cond: Expr, t: ExprLike, f: ExprLike) -> Expr:
    t = as_expr(t, f if isinstance(f, Expr) else None)
    return Select(cond, t, as_expr(f, t))


def call(op: str, *args: ExprLike) -> Call:
    """An intrinsic call, with its result dtype taken from the intrinsic table."""
    first = next((a for a in args if isinstance(a, Expr)), None)
    exprs = tuple(as_expr(a, first) for a in args)
    intr = INTRINSICS.get(op)
    dtype = intr.result_dtype(exprs) if intr is not None else exprs[0].dtype
    return Call(op, exprs, dtype)


def _bin(kind: BinKind, a: ExprLike, b: ExprLike) -> Expr:
    a = as_expr(a, b if isinstance(b, Expr) else None)
    return BinOp(kind, a, as_expr(b, a))


def _cmp(kind: CmpKind, a: ExprLike, b: ExprLike) -> Expr:
    a = as_expr(a, b if isinstance(b, Expr) else None)
    return CmpOp(kind, a, as_expr(b, a))


def floordiv(a: ExprLike, b: ExprLike) -> Expr:
    return _bin(BinKind.floordiv, a, b)


def floormod(a: ExprLike, b: ExprLike) -> Expr:
    return _bin(BinKind.floormod, a, b)


def truncdiv(a: ExprLike, b: ExprLike) -> Expr:
    return _bin(BinKind.truncdiv, a, b)


def truncmod(a: ExprLike, b: ExprLike) -> Expr:
    return _bin(BinKind.truncmod, a, b)


def min_(a: ExprLike, b: ExprLike) -> Expr:
    return _bin(BinKind.min, a, b)


def max_(a: ExprLike, b: ExprLike) -> Expr:
    return _bin(BinKind.max, a, b)


def and_(a: Expr, b: Expr) -> Expr:
    return BinOp(BinKind.and_, a, b)


def or_(a: Expr, b: Expr) -> Expr:
    return BinOp(BinKind.or_, a, b)


def not_(a: Expr) -> Expr:
    return UnOp(UnKind.not_, a)


def eq(a: ExprLike, b: ExprLike) -> Expr:
    return _cmp(CmpKind.eq, a, b)


def ne(a: ExprLike, b: ExprLike) -> Expr:
    return _cmp(CmpKind.ne, a, b)


def buffer(name: str, dtype: DType, shape: tuple[ExprLike, ...] | list[ExprLike],
           scope: str = "global") -> Buffer:
    return Buffer(name, dtype, tuple(as_expr(d) for d in shape), scope)


def store(buf: Buffer, value: ExprLike, *indices: ExprLike) -> BufferStore:
    idx = tuple(as_expr(i) for i in indices)
    return BufferStore(buf, as_expr(value, _like(buf, idx)), idx)


def _like(buf: Buffer, idx: tuple[Expr, ...]) -> Expr:
    return Var("_", buf.dtype, max((i.lanes for i in idx), default=1))


def for_(var: Var | str, extent: ExprLike, body: Stmt, kind: ForKind = ForKind.serial,
         min: ExprLike = 0, thread: str | None = None) -> For:
    v = Var(var) if isinstance(var, str) else var
    lo = as_expr(min, v)
    return For(v, lo, as_expr(extent, v), kind, body, thread)


def seq(*stmts: Stmt) -> Stmt:
    """A SeqStmt, or the single statement itself."""
    return stmts[0] if len(stmts) == 1 else SeqStmt(stmts)
