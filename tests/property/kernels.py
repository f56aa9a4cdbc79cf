"""Random kernel-shaped loop programs for the pass property tests.

`random_primfunc` (compiler/loop/random_program.py) covers every node kind but rarely builds
the shapes that loop transformations look for. This generator builds what lowered kernels
look like: affine loop nests over 2-D buffers, boundary conditions on loop variables,
reductions, sibling and nested scratch allocations, neighbouring loops with equal bounds,
offset and int64 loops, symbolic extents and vectorized loops. Every program is well-formed
and free of undefined behaviour on `random_args` arguments (all indices stay in bounds,
scratch memory is written before it is read).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from compiler.dtypes import DType
from compiler.loop.ir import (
    Allocate,
    BinKind,
    BinOp,
    Buffer,
    BufferLoad,
    BufferStore,
    Call,
    Cast,
    CmpKind,
    CmpOp,
    Expr,
    FloatImm,
    For,
    ForKind,
    IfThenElse,
    IntImm,
    PrimFunc,
    Select,
    SeqStmt,
    Stmt,
    Var,
)


class _Kernel:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.m = rng.randint(1, 6)
        self.n = rng.randint(1, 8)
        self.dtype = rng.choice((DType.float32, DType.float64, DType.int32, DType.float16))
        self.counter = 0
        shape = (IntImm(self.m), IntImm(self.n))
        self.a = Buffer("A", self.dtype, shape)
        self.b = Buffer("B", self.dtype, shape)
        self.c = Buffer("C", self.dtype, shape)
        self.r = Buffer("R", self.dtype, (IntImm(self.m),))
        self.size = Var("n", DType.int32)

    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}{self.counter}"

    def const(self, v: float) -> Expr:
        return FloatImm(v, self.dtype) if self.dtype is not DType.int32 else IntImm(int(v))

    def combine(self, x: Expr, y: Expr) -> Expr:
        op = self.rng.choice((BinKind.add, BinKind.mul, BinKind.max, BinKind.sub))
        out: Expr = BinOp(op, x, y)
        if self.rng.random() < 0.2 and self.dtype is not DType.int32:
            out = Call("exp", (BinOp(BinKind.min, out, self.const(3.0)),), self.dtype)
        return out

    def loop(self, name: str, extent: int, body_fn: Callable[[Var, int], Stmt],
             dtype: DType = DType.int32, kind: ForKind | None = None) -> Stmt:
        rng = self.rng
        var = Var(self.fresh(name), dtype)
        lo = rng.choice((0, 0, 0, 1)) if extent > 1 else 0
        kind = kind or rng.choice((ForKind.serial, ForKind.serial, ForKind.parallel,
                                   ForKind.unrolled))
        ext = IntImm(extent - lo, dtype)
        return For(var, IntImm(lo, dtype), ext, kind, body_fn(var, lo))

    def cast_index(self, v: Var) -> Expr:
        return v if v.dtype is DType.int32 else Cast(DType.int32, v)

    # -- statements --------------------------------------------------------------------

    def elementwise(self) -> Stmt:
        rng = self.rng
        dt = rng.choice((DType.int32, DType.int32, DType.int64))
        src = rng.choice((self.a, self.b))
        dst = rng.choice((self.c, self.b if src is self.a else self.a))

        def inner(i: Var, j: Var, j_lo: int) -> Stmt:
            ii, jj = self.cast_index(i), self.cast_index(j)
            value = self.combine(BufferLoad(src, (ii, jj)),
                                 BufferLoad(self.c if dst is not self.c else src,
                                            (ii, BinOp(BinKind.sub, IntImm(self.n - 1), jj))))
            value = self.combine(value, BufferLoad(dst, (ii, jj))) if rng.random() < 0.3 \
                else value
            if rng.random() < 0.4:
                bound = IntImm(rng.randint(0, self.n))
                cond = CmpOp(rng.choice((CmpKind.lt, CmpKind.ge)), jj, bound)
                if rng.random() < 0.5:
                    return IfThenElse(cond, BufferStore(dst, value, (ii, jj)),
                                      BufferStore(dst, self.const(0.0), (ii, jj))
                                      if rng.random() < 0.5 else None)
                value = Select(cond, value, self.const(1.0))
            return BufferStore(dst, value, (ii, jj))

        vec = rng.random() < 0.2 and self.n in (2, 4, 8)
        return self.loop("i", self.m, lambda i, _lo: self.loop(
            "j", self.n, lambda j, lo: inner(i, j, lo), dt,
            ForKind.vectorized if vec else None), dt)

    def reduction(self) -> Stmt:
        def body(i: Var, _lo: int) -> Stmt:
            ii = self.cast_index(i)
            init = BufferStore(self.r, self.const(0.0), (ii,))
            acc = self.loop("k", self.n, lambda k, lo: BufferStore(
                self.r, self.combine(BufferLoad(self.r, (ii,)),
                                     BufferLoad(self.a, (ii, self.cast_index(k)))), (ii,)),
                kind=ForKind.serial)
            return SeqStmt((init, acc))

        return self.loop("i", self.m, body)

    def scratch(self) -> Stmt:
        rng = self.rng
        name = self.fresh("T")
        scope = rng.choice(("local", "global"))
        size = rng.randint(self.n, self.n + 3)
        tmp = Buffer(name, self.dtype, (IntImm(size),), scope)
        row = rng.randrange(self.m)
        fill = self.loop("t", self.n, lambda t, lo: BufferStore(
            tmp, BufferLoad(self.a, (IntImm(row), t)), (t,)), kind=ForKind.serial)
        if fill.min != IntImm(0):  # type: ignore[attr-defined]
            fill = SeqStmt((BufferStore(tmp, self.const(0.0), (IntImm(0),)), fill))
        use = self.loop("u", self.n, lambda u, lo: BufferStore(
            self.c, self.combine(BufferLoad(tmp, (BinOp(BinKind.sub, IntImm(self.n - 1), u),)),
                                 self.const(2.0)), (IntImm(row), u)), kind=ForKind.serial)
        return Allocate(tmp, SeqStmt((fill, use)))

    def twins(self) -> Stmt:
        """Neighbouring loops with equal bounds."""
        row = self.rng.randrange(self.m)
        p, q = Var(self.fresh("p")), Var(self.fresh("q"))
        first = For(p, IntImm(0), IntImm(self.n), ForKind.serial, BufferStore(
            self.b, BufferLoad(self.a, (IntImm(row), p)), (IntImm(row), p)))
        second = For(q, IntImm(0), IntImm(self.n), ForKind.serial, BufferStore(
            self.c, self.combine(BufferLoad(self.b, (IntImm(row), q)), self.const(1.0)),
            (IntImm(row), q)))
        return SeqStmt((first, second))

    def symbolic(self) -> Stmt:
        extent = BinOp(BinKind.add, BinOp(BinKind.floormod, self.size, IntImm(self.n)),
                       IntImm(1))
        k = Var(self.fresh("s"))
        row = self.rng.randrange(self.m)
        return For(k, IntImm(0), extent, ForKind.serial, BufferStore(
            self.c, self.combine(BufferLoad(self.a, (IntImm(row), k)), self.const(0.5)),
            (IntImm(row), k)))

    def func(self) -> PrimFunc:
        makers = [self.elementwise, self.elementwise, self.reduction, self.scratch,
                  self.twins, self.symbolic]
        stmts = tuple(self.rng.choice(makers)() for _ in range(self.rng.randint(1, 4)))
        body = stmts[0] if len(stmts) == 1 else SeqStmt(stmts)
        return PrimFunc("kernel", (self.a, self.b, self.c, self.r, self.size), body)


def random_kernel(rng: random.Random | int) -> PrimFunc:
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    return _Kernel(rng).func()
