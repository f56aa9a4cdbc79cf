"""Random loop-IR programs that are well-formed and free of undefined behaviour.

`random_primfunc(rng)` builds a verifier-clean function exercising every statement and
expression kind; `random_args(func, rng)` builds arguments for it. Together they never
trigger undefined behaviour in the interpreter, by construction:

- every index is in bounds: `floormod(e, dim)`, or a contiguous `ramp` whose base is
  `floormod(e, dim - lanes + 1)`, or a loop variable whose range fits the dimension;
- divisors are positive constants or `max(e, 1)`, so no division by zero nor `MIN / -1`;
- shift amounts are `floormod(e, bits)` or constants below `bits`;
- float->int casts go through `select(lo < x && x < hi, x, 0)` with a safe range;
- float->int reinterprets see no NaN (`select(isnan(x), 0, x)`): NaN payloads are not part
  of the IR's meaning, so the bits of a NaN would differ between equally right backends;
- round trips through the storage-only dtypes (`GenConfig.storage`) are float -> minifloat
  -> float and int -> int4/int2 -> int, both defined for every value;
- scratch buffers are filled by a loop nest before anything reads them;
- asserts check facts that always hold; loop extents are small constants or
  `floormod(n, k) + 1`, which also bounds the total work.

The fuzzer and the pass property tests reuse this generator; `GenConfig` tunes it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from compiler.dtypes import DType
from compiler.loop.build import and_, floormod, max_
from compiler.loop.ir import (
    INTRINSICS,
    MINIFLOAT_DTYPES,
    NARROW_INT_DTYPES,
    THREAD_TAGS,
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
    For,
    ForKind,
    IfThenElse,
    IntImm,
    Let,
    LetStmt,
    PrimFunc,
    Ramp,
    Reinterpret,
    Select,
    SeqStmt,
    Stmt,
    UnKind,
    UnOp,
    Var,
    const,
    int_range,
    is_float,
    is_int,
)

D = DType
_EXOTIC_NAMES = ("x y", "for", "exp", "inf", "1st", "a.b", "é", "float32", 'q"uote')
_INT_OPS = (
    BinKind.add, BinKind.sub, BinKind.mul, BinKind.min, BinKind.max, BinKind.floordiv,
    BinKind.floormod, BinKind.truncdiv, BinKind.truncmod, BinKind.bitand, BinKind.bitor,
    BinKind.bitxor, BinKind.shl, BinKind.shr,
)
_SPECIAL_FLOATS = (0.0, -0.0, 1.0, -1.0, 0.5, float("inf"), float("-inf"), float("nan"),
                   1e30, -1e-30, 65504.0, 3.0e38)


@dataclass(frozen=True)
class GenConfig:
    """Knobs of the generator; the defaults keep a program's run under ~50 ms."""

    max_depth: int = 3  # statement nesting
    max_expr_depth: int = 3
    max_stmts: int = 3  # statements per block
    max_extent: int = 5
    max_work: int = 2000  # bound on the product of enclosing loop extents
    dtypes: tuple[DType, ...] = (D.float32, D.float64, D.float16, D.bfloat16, D.int32,
                                 D.int64, D.int8, D.uint8, D.uint32, D.bool)
    lanes: tuple[int, ...] = (2, 4)
    exotic_names: bool = False
    thread_loops: bool = True
    reinterpret: bool = True  # reinterpret between the same-width dtypes above
    storage: bool = False  # round trips through minifloats and narrow integers


@dataclass
class _Loop:
    var: Var
    lo: int | None  # constant range [lo, hi) when known
    hi: int | None


class _Gen:
    def __init__(self, rng: random.Random, config: GenConfig) -> None:
        self.rng = rng
        self.cfg = config
        self.counter = 0
        self.vars: list[Var] = []
        self.loops: list[_Loop] = []
        self.readable: list[Buffer] = []
        self.writable: list[Buffer] = []
        self.threads: set[str] = set()
        self.work = 1
        self.index_nesting = 0  # loads inside indices inside loads... stop at 2

    # -- small choices -----------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        if self.cfg.exotic_names and self.chance(0.15):
            return f"{self.rng.choice(_EXOTIC_NAMES)}{self.counter}"
        return f"{prefix}{self.counter}"

    def dtype(self) -> DType:
        return self.rng.choice(self.cfg.dtypes)

    def index_dtype(self) -> DType:
        return D.int64 if self.chance(0.2) else D.int32

    def literal(self, dtype: DType) -> Expr:
        rng = self.rng
        if dtype is D.bool:
            return IntImm(rng.randint(0, 1), D.bool)
        if is_int(dtype):
            lo, hi = int_range(dtype)
            value = rng.choice((lo, hi, 0, 1)) if self.chance(0.15) else \
                rng.randint(max(lo, -20), min(hi, 20))
            return IntImm(value, dtype)
        value = rng.choice(_SPECIAL_FLOATS) if self.chance(0.2) else \
            round(rng.gauss(0, 4), rng.randint(0, 6))
        return const(value, dtype)

    # -- expressions -------------------------------------------------------------------

    def expr(self, dtype: DType, lanes: int = 1, depth: int | None = None) -> Expr:
        depth = self.cfg.max_expr_depth if depth is None else depth
        if depth <= 0 or self.chance(0.25):
            return self.leaf(dtype, lanes)
        makers = [self.binop, self.select, self.cast, self.let]
        if dtype is D.bool:
            makers += [self.cmpop, self.cmpop, self.unop, self.float_predicate]
        elif is_int(dtype) or is_float(dtype):
            makers += [self.unop, self.call, self.binop]
            if self.cfg.reinterpret and self.same_width(dtype):
                makers.append(self.reinterpret)
            if self.cfg.storage:
                makers.append(self.storage_round_trip)
        if lanes > 1:
            makers.append(self.broadcast)
        return self.rng.choice(makers)(dtype, lanes, depth - 1)

    def leaf(self, dtype: DType, lanes: int) -> Expr:
        options = [lambda: self.literal(dtype)]
        vars_ = [v for v in self.vars if v.dtype == dtype and v.lanes == lanes]
        if vars_:
            options += [lambda: self.rng.choice(vars_)] * 2
        bufs = [b for b in self.readable if b.dtype == dtype]
        if bufs and self.index_nesting < 2:
            options += [lambda: self.load(self.rng.choice(bufs), lanes)] * 3
        if lanes > 1 and is_int(dtype) and self.chance(0.5):
            return Ramp(self.leaf(dtype, 1), self.literal(dtype), lanes)
        choice = self.rng.choice(options)()
        return choice if choice.lanes == lanes else Broadcast(choice, lanes)

    def index(self, dim: Expr, lanes: int = 1) -> Expr:
        """An index in [0, dim), or a vector of them."""
        if lanes == 1:
            fits = [lp for lp in self.loops if lp.lo is not None and lp.var.dtype == dim.dtype
                    and isinstance(dim, IntImm) and 0 <= lp.lo and lp.hi <= dim.value]
            if fits and self.chance(0.5):
                return self.rng.choice(fits).var
            if isinstance(dim, IntImm) and dim.value == 1 and self.chance(0.5):
                return IntImm(0, dim.dtype)
            return floormod(self.expr(dim.dtype, 1, 1), dim)
        if isinstance(dim, IntImm) and dim.value >= lanes and self.chance(0.6):
            base = floormod(self.expr(dim.dtype, 1, 1), IntImm(dim.value - lanes + 1, dim.dtype))
            return Ramp(base, IntImm(1, dim.dtype), lanes)
        raw = Ramp(self.expr(dim.dtype, 1, 1), self.literal(dim.dtype), lanes)
        return floormod(raw, Broadcast(dim, lanes))

    def indices(self, buf: Buffer, lanes: int) -> tuple[Expr, ...]:
        if not buf.shape:
            return ()
        vec_dim = self.rng.randrange(len(buf.shape)) if lanes > 1 else -1
        self.index_nesting += 1
        out = tuple(self.index(d, lanes if k == vec_dim else 1) for k, d in enumerate(buf.shape))
        self.index_nesting -= 1
        return out

    def load(self, buf: Buffer, lanes: int) -> Expr:
        if not buf.shape and lanes > 1:
            return Broadcast(BufferLoad(buf, ()), lanes)
        return BufferLoad(buf, self.indices(buf, lanes))

    def binop(self, dtype: DType, lanes: int, depth: int) -> Expr:
        if dtype is D.bool:
            op = self.rng.choice((BinKind.and_, BinKind.or_))
        elif is_float(dtype):
            op = self.rng.choice((BinKind.add, BinKind.sub, BinKind.mul, BinKind.div,
                                  BinKind.min, BinKind.max))
        else:
            op = self.rng.choice(_INT_OPS)
        a = self.expr(dtype, lanes, depth)
        if op in (BinKind.floordiv, BinKind.floormod, BinKind.truncdiv, BinKind.truncmod):
            b = self.divisor(dtype, lanes, depth)
        elif op in (BinKind.shl, BinKind.shr):
            bits = IntImm(dtype.bits, dtype)
            b = self.literal_below(dtype, dtype.bits) if self.chance(0.5) else \
                floormod(self.expr(dtype, 1, depth), bits)
            b = b if lanes == 1 else Broadcast(b, lanes)
        else:
            b = self.expr(dtype, lanes, depth)
        return BinOp(op, a, b)

    def literal_below(self, dtype: DType, bound: int) -> Expr:
        return IntImm(self.rng.randrange(min(bound, int_range(dtype)[1])), dtype)

    def divisor(self, dtype: DType, lanes: int, depth: int) -> Expr:
        if self.chance(0.5):
            d = IntImm(self.rng.randint(1, 7), dtype)
        else:
            d = max_(self.expr(dtype, 1, depth), IntImm(1, dtype))
        return d if lanes == 1 else Broadcast(d, lanes)

    def cmpop(self, dtype: DType, lanes: int, depth: int) -> Expr:
        src = self.dtype()
        ops = [CmpKind.eq, CmpKind.ne] if src is D.bool else list(CmpKind)
        return CmpOp(self.rng.choice(ops), self.expr(src, lanes, depth),
                     self.expr(src, lanes, depth))

    def unop(self, dtype: DType, lanes: int, depth: int) -> Expr:
        op = UnKind.not_ if dtype is D.bool else (
            self.rng.choice((UnKind.neg, UnKind.bitnot)) if is_int(dtype) else UnKind.neg)
        return UnOp(op, self.expr(dtype, lanes, depth))

    def select(self, dtype: DType, lanes: int, depth: int) -> Expr:
        cond_lanes = lanes if lanes > 1 and self.chance(0.5) else 1
        return Select(self.expr(D.bool, cond_lanes, depth), self.expr(dtype, lanes, depth),
                      self.expr(dtype, lanes, depth))

    def cast(self, dtype: DType, lanes: int, depth: int) -> Expr:
        src = self.dtype()
        x = self.expr(src, lanes, depth)
        if is_float(src) and is_int(dtype):
            lo = const(-1.0 if not dtype.is_signed else -100.0, src, lanes)
            hi = const(100.0, src, lanes)
            inside = and_(CmpOp(CmpKind.lt, lo, x), CmpOp(CmpKind.lt, x, hi))
            x = Select(inside, x, const(0.0, src, lanes))
        return Cast(dtype, x)

    def same_width(self, dtype: DType) -> list[DType]:
        return [d for d in self.cfg.dtypes if d.bits == dtype.bits and d not in (dtype, D.bool)]

    def reinterpret(self, dtype: DType, lanes: int, depth: int) -> Expr:
        src = self.rng.choice(self.same_width(dtype))
        x = self.expr(src, lanes, depth)
        if is_float(src):
            x = Select(Call("isnan", (x,), D.bool), const(0.0, src, lanes), x)
        return Reinterpret(dtype, x)

    def storage_round_trip(self, dtype: DType, lanes: int, depth: int) -> Expr:
        kinds = MINIFLOAT_DTYPES if is_float(dtype) else NARROW_INT_DTYPES
        src = self.rng.choice([d for d in self.cfg.dtypes if is_float(d) == is_float(dtype)
                               and d is not D.bool] or [dtype])
        return Cast(dtype, Cast(self.rng.choice(kinds), self.expr(src, lanes, depth)))

    def call(self, dtype: DType, lanes: int, depth: int) -> Expr:
        if is_int(dtype):
            names = [n for n, i in INTRINSICS.items() if i.operand in ("int", "num")]
        else:
            names = [n for n, i in INTRINSICS.items() if i.operand in ("float", "num")
                     and i.result == "same"]
        intr = INTRINSICS[self.rng.choice(names)]
        args = tuple(self.expr(dtype, lanes, depth) for _ in range(intr.arity))
        return Call(intr.name, args, dtype)

    def broadcast(self, dtype: DType, lanes: int, depth: int) -> Expr:
        return Broadcast(self.expr(dtype, 1, depth), lanes)

    def let(self, dtype: DType, lanes: int, depth: int) -> Expr:
        src = self.dtype()
        value = self.expr(src, 1, depth)
        var = Var(self.fresh("v"), src)
        self.vars.append(var)
        body = self.expr(dtype, lanes, depth)
        self.vars.pop()
        return Let(var, value, body)

    def float_predicate(self, dtype: DType, lanes: int, depth: int) -> Expr:
        src = self.rng.choice([d for d in self.cfg.dtypes if is_float(d)] or [D.float32])
        name = self.rng.choice(("isnan", "isinf", "isfinite"))
        return Call(name, (self.expr(src, lanes, depth),), D.bool)

    # -- statements --------------------------------------------------------------------

    def block(self, depth: int) -> Stmt:
        n = self.rng.randint(1, self.cfg.max_stmts)
        stmts = [self.stmt(depth) for _ in range(n)]
        return stmts[0] if len(stmts) == 1 else SeqStmt(tuple(stmts))

    def stmt(self, depth: int) -> Stmt:
        makers = [self.store, self.store, self.vector_store, self.evaluate, self.assertion]
        if depth > 0:
            makers += [self.loop, self.loop, self.loop, self.branch, self.let_stmt,
                       self.allocate, self.nested_seq]
        return self.rng.choice(makers)(depth)

    def store(self, depth: int) -> Stmt:
        buf = self.rng.choice(self.writable)
        return BufferStore(buf, self.expr(buf.dtype), self.indices(buf, 1))

    def vector_store(self, depth: int) -> Stmt:
        lanes = self.rng.choice(self.cfg.lanes)
        bufs = [b for b in self.writable if b.shape and isinstance(b.shape[-1], IntImm)
                and b.shape[-1].value >= lanes]
        if not bufs:
            return self.store(depth)
        buf = self.rng.choice(bufs)
        lead = tuple(self.index(d) for d in buf.shape[:-1])
        last = buf.shape[-1]
        base = floormod(self.expr(last.dtype, 1, 1), IntImm(last.value - lanes + 1, last.dtype))
        idx = (*lead, Ramp(base, IntImm(1, last.dtype), lanes))
        return BufferStore(buf, self.expr(buf.dtype, lanes), idx)

    def evaluate(self, depth: int) -> Stmt:
        return Evaluate(self.expr(self.dtype(), self.rng.choice((1, *self.cfg.lanes))))

    def assertion(self, depth: int) -> Stmt:
        known = [lp for lp in self.loops if lp.lo is not None]
        if known and self.chance(0.5):
            lp = self.rng.choice(known)
            cond = CmpOp(CmpKind.lt, lp.var, IntImm(lp.hi, lp.var.dtype))
        elif self.chance(0.5):
            dt = self.index_dtype()
            k = IntImm(self.rng.randint(1, 9), dt)
            cond = CmpOp(CmpKind.lt, floormod(self.expr(dt, 1, 1), k), k)
        else:
            p = self.float_predicate(D.bool, 1, 1)
            cond = BinOp(BinKind.or_, p, UnOp(UnKind.not_, p))
        return Assert(cond, self.rng.choice(("always true", "in range", 'quoted "msg"\n')))

    def loop(self, depth: int) -> Stmt:
        kinds = [ForKind.serial, ForKind.parallel, ForKind.unrolled, ForKind.vectorized]
        free_tags = [t for t in THREAD_TAGS if t not in self.threads]
        if self.cfg.thread_loops and free_tags:
            kinds.append(ForKind.thread_binding)
        kind = self.rng.choice(kinds)
        dt = D.int32 if kind is ForKind.thread_binding else self.index_dtype()
        cap = max(1, min(self.cfg.max_extent, self.cfg.max_work // self.work))
        extent_n = self.rng.randint(1, cap)
        lo_n = 0 if kind is ForKind.thread_binding or self.chance(0.6) else self.rng.randint(-3, 3)
        dynamic = [v for v in self.vars if v.dtype == dt and v.lanes == 1]
        if kind in (ForKind.serial, ForKind.parallel) and dynamic and self.chance(0.25):
            extent: Expr = floormod(self.rng.choice(dynamic), IntImm(extent_n, dt)) + 1
            lp = _Loop(Var(self.fresh("i"), dt), None, None)
        else:
            extent = IntImm(extent_n, dt)
            lp = _Loop(Var(self.fresh("i"), dt), lo_n, lo_n + extent_n)
        tag = self.rng.choice(free_tags) if kind is ForKind.thread_binding else None
        self.loops.append(lp)
        self.vars.append(lp.var)
        self.work *= extent_n
        if tag:
            self.threads.add(tag)
        body = self.block(depth - 1)
        self.threads.discard(tag or "")
        self.work //= extent_n
        self.vars.pop()
        self.loops.pop()
        return For(lp.var, IntImm(lo_n, dt), extent, kind, body, tag)

    def branch(self, depth: int) -> Stmt:
        cond = self.expr(D.bool)
        else_ = self.block(depth - 1) if self.chance(0.5) else None
        return IfThenElse(cond, self.block(depth - 1), else_)

    def let_stmt(self, depth: int) -> Stmt:
        lanes = self.rng.choice(self.cfg.lanes) if self.chance(0.2) else 1
        value = self.expr(self.dtype(), lanes)
        var = Var(self.fresh("x"), value.dtype, lanes)
        self.vars.append(var)
        body = self.block(depth - 1)
        self.vars.pop()
        return LetStmt(var, value, body)

    def allocate(self, depth: int) -> Stmt:
        dims = [self.rng.randint(1, 4) for _ in range(self.rng.randint(1, 2))]
        scope = self.rng.choice(("local", "shared", "global"))
        buf = Buffer(self.fresh("T"), self.dtype(), tuple(IntImm(d) for d in dims), scope)
        self.writable.append(buf)
        loop_vars = [Var(self.fresh("t")) for _ in dims]
        fill: Stmt = BufferStore(buf, self.expr(buf.dtype), tuple(loop_vars))
        for v, d in reversed(list(zip(loop_vars, dims, strict=True))):
            fill = For(v, IntImm(0), IntImm(d), ForKind.serial, fill)
        self.readable.append(buf)
        rest = self.block(depth - 1)
        self.readable.pop()
        self.writable.pop()
        return Allocate(buf, SeqStmt((fill, rest)))

    def nested_seq(self, depth: int) -> Stmt:
        n = self.rng.randint(0, 2)
        return SeqStmt(tuple(self.stmt(depth - 1) for _ in range(n)))

    # -- functions ---------------------------------------------------------------------

    def func(self, name: str) -> PrimFunc:
        params: list[Buffer | Var] = []
        n = Var(self.fresh("n"), D.int32)
        params.append(n)
        self.vars.append(n)
        if self.chance(0.5):
            s = Var(self.fresh("s"), self.rng.choice([d for d in self.cfg.dtypes if d != D.bool]))
            params.append(s)
            self.vars.append(s)
        for k in range(self.rng.randint(1, 4)):
            rank = self.rng.choice((0, 1, 1, 2, 2, 3))
            shape: tuple[Expr, ...] = tuple(IntImm(self.rng.randint(1, 6)) for _ in range(rank))
            if rank == 1 and self.chance(0.2):
                shape = (n,)
            buf = Buffer(self.fresh("A" if k else "O"), self.dtype(), shape)
            params.append(buf)
            self.readable.append(buf)
            self.writable.append(buf)
        self.rng.shuffle(params)
        body = self.block(self.cfg.max_depth)
        attrs = (("generator", "random_program"),) if self.chance(0.3) else ()
        return PrimFunc(name, tuple(params), body, attrs)


def random_primfunc(rng: random.Random | int, max_depth: int | None = None,
                    config: GenConfig | None = None, name: str = "f") -> PrimFunc:
    """A random verifier-clean function that is UB-free on `random_args` arguments.

    `rng` is a `random.Random` (Hypothesis's `st.randoms()` works and shrinks) or a seed;
    `max_depth` overrides `config.max_depth`, the statement nesting depth.
    """
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    cfg = config or GenConfig()
    if max_depth is not None:
        cfg = replace(cfg, max_depth=max_depth)
    return _Gen(rng, cfg).func(name)


def random_args(func: PrimFunc, rng: random.Random | int) -> dict[str, Any]:
    """Arguments for a `random_primfunc` function (sizes used as shapes are in [1, 6])."""
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    gen = np.random.default_rng(rng.getrandbits(64))
    shape_vars = {d.name for p in func.params if isinstance(p, Buffer) for d in p.shape
                  if isinstance(d, Var)}
    args: dict[str, Any] = {}
    for p in func.params:
        if isinstance(p, Var):
            if p.name in shape_vars:
                args[p.name] = rng.randint(1, 6)
            else:
                args[p.name] = _values(gen, p.dtype, ()).item()
    for p in func.params:
        if isinstance(p, Buffer):
            shape = tuple(d.value if isinstance(d, IntImm) else args[d.name] for d in p.shape)
            args[p.name] = _values(gen, p.dtype, shape)
    return args


def _values(gen: np.random.Generator, dtype: DType, shape: tuple[int, ...]) -> np.ndarray:
    return np.array(_raw_values(gen, dtype, shape), dtype.np)


def _raw_values(gen: np.random.Generator, dtype: DType, shape: tuple[int, ...]) -> Any:
    if dtype is D.bool:
        return gen.integers(0, 2, shape).astype(bool)
    if is_int(dtype):
        lo, hi = int_range(dtype)
        wide = gen.integers(lo, hi, shape, dtype=dtype.np, endpoint=True)
        small = gen.integers(max(lo, -50), min(hi, 50), shape, endpoint=True).astype(dtype.np)
        return np.where(gen.random(shape) < 0.2, wide, small)
    with np.errstate(all="ignore"):
        return (gen.standard_normal(shape) * 8).astype(dtype.np)
