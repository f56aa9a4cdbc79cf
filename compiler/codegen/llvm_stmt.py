"""Lowering of loop-IR statements and whole PrimFuncs to LLVM IR text.

- Loops count `c` from 0 to the extent in the loop variable's own type and bind
  `var = min + c`, so no iteration of a well-defined program overflows.
- Parallel loops (outside another parallel loop) are outlined into an internal function
  `void body(closure*)`. The closure is a stack struct holding a status word, the loop's min
  and trip count, and every value the body uses. The caller hands it to libgomp's
  `GOMP_parallel`; each thread of the team runs its static chunk of iterations (computed
  from `omp_get_thread_num`/`omp_get_num_threads`). Parallel loops nested inside run
  serially, and thread-bound loops (a GPU construct) always run serially, so `barrier()`
  emits nothing. libgomp's pool does not survive fork(): in a child of a process that used
  it, the body runs as a team of one in the calling thread (see `OMP_STATE`).
- A failed `Assert` frees the function's live heap allocations and returns its 1-based
  index in `walk` pre-order; inside a parallel body it stores the index into the closure's
  status word (first failure wins), and the caller returns it after the team joins.
- `Allocate`: constant-size buffers up to `STACK_BYTES` (and `STACK_BUDGET` per function)
  live in the function's stack frame; others are `malloc`ed and freed at the end of scope.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from compiler.codegen.llvm_expr import LIBM_ATTRIBUTES, BufInfo, Declarations, ExprGen
from compiler.codegen.llvm_ir import ELEM_BYTES, IRFunction, V, memory_type, value_type
from compiler.errors import UnsupportedError
from compiler.loop.ir import (
    Allocate,
    Assert,
    Buffer,
    BufferStore,
    Evaluate,
    For,
    ForKind,
    IfThenElse,
    IntImm,
    LetStmt,
    PrimFunc,
    SeqStmt,
    Stmt,
    Var,
    is_barrier,
)
from compiler.loop.traverse import walk

STACK_BYTES = 16 * 1024
STACK_BUDGET = 128 * 1024
UNROLL_EXTENT = 8  # unrolled loops up to this constant extent are unrolled in codegen,
UNROLL_COPIES = 64  # as long as nested unrolling makes at most this many body copies
THREADS_GLOBAL = "anvil.threads"  # i64 bit mask of OpenMP thread numbers that ran iterations
# Process-wide {i32 gomp_used, i32 serial_only}, defined by the Python side (llvm.py): libgomp's
# thread pool does not survive fork(), so a child of a process that used it runs parallel
# loops in the calling thread.
OMP_STATE = "anvil_omp_state"


def _reg(v: V) -> bool:
    """Whether `v` is a register (which a parallel body must receive through its closure)."""
    return v.ref.startswith("%")


class ModuleBuilder:
    """Declarations and functions of one LLVM module under construction."""

    def __init__(self, fast_math: bool = False, num_threads: int = 0) -> None:
        self.decls = Declarations()
        self.functions: list[str] = []
        self.fast_math = fast_math
        self.num_threads = num_threads

    def text(self, triple: str = "", datalayout: str = "") -> str:
        head = [f'target datalayout = "{datalayout}"'] if datalayout else []
        head += [f'target triple = "{triple}"'] if triple else []
        return "\n".join([
            *head, f"@{THREADS_GLOBAL} = global i64 0",
            f"@{OMP_STATE} = external global [2 x i32]", "",
            *self.decls.lines.values(), "", *self.functions,
            "attributes #0 = { nounwind }", LIBM_ATTRIBUTES, "",
        ])


class FuncContext:
    """State shared by a kernel and the parallel bodies outlined from it."""

    def __init__(self, module: ModuleBuilder, symbol: str) -> None:
        self.module = module
        self.symbol = symbol
        self.asserts = 0
        self.outlined = 0


class FuncGen(ExprGen):
    """Emits statements into one function: the kernel (`status` None) or a parallel body
    (`status` points at the closure's status word)."""

    def __init__(self, ctx: FuncContext, f: IRFunction, status: V | None = None) -> None:
        super().__init__(f, ctx.module.decls, ctx.module.fast_math)
        self.ctx = ctx
        self.status = status
        self.heaps: list[V] = []
        self.stack_bytes = 0
        self.unrolled = 1

    def label(self, hint: str) -> str:
        return self.f.fresh(hint)

    def stmt(self, s: Stmt) -> None:
        if isinstance(s, SeqStmt):
            for part in s.stmts:
                self.stmt(part)
        elif isinstance(s, For):
            self.loop(s)
        elif isinstance(s, BufferStore):
            self.store(s)
        elif isinstance(s, IfThenElse):
            self.branch(s)
        elif isinstance(s, LetStmt):
            self.vars[s.var.name] = self.expr(s.value)
            self.stmt(s.body)
            del self.vars[s.var.name]
        elif isinstance(s, Allocate):
            self.allocate(s)
        elif isinstance(s, Evaluate):
            if not is_barrier(s):  # threads run one after another: a barrier does nothing
                self.expr(s.value)
        elif isinstance(s, Assert):
            self.ctx.asserts += 1
            code = V("i32", str(self.ctx.asserts))
            ok, bad = self.label("ok"), self.label("fail")
            self.f.cbr(self.expr(s.cond), ok, bad)
            self.f.start(bad)
            self.fail(code)
            self.f.start(ok)
        else:
            raise UnsupportedError(f"the LLVM backend cannot lower {type(s).__name__}")

    def fail(self, code: V) -> None:
        """Leave the function with status `code`, freeing its live heap buffers."""
        for ptr in reversed(self.heaps):
            self.f.emit(f"call void @{self.decls.need('free', 'void', 'ptr')}({ptr})")
        if self.status is None:
            self.f.emit(f"ret {code}")
            return
        self.f.emit(f"cmpxchg {self.status}, i32 0, {code} seq_cst seq_cst")
        self.f.emit("ret void")

    def branch(self, s: IfThenElse) -> None:
        f = self.f
        then, other, end = self.label("then"), self.label("else"), self.label("endif")
        f.cbr(self.expr(s.cond), then, other if s.else_ is not None else end)
        f.start(then)
        self.stmt(s.then)
        f.br(end)
        if s.else_ is not None:
            f.start(other)
            self.stmt(s.else_)
            f.br(end)
        f.start(end)

    def store(self, s: BufferStore) -> None:
        f = self.f
        buf = self.bufs[s.buffer.name]
        mty, align = memory_type(buf.dtype), ELEM_BYTES[buf.dtype]
        lanes = max((i.lanes for i in s.indices), default=1)
        if lanes == 1 or self.contiguous(s.indices):
            idx = s.indices if lanes == 1 else self.ramp_base(s.indices)
            ptr = self.address(buf, self.flat_index(buf, idx))
            value = self.to_memory(self.expr(s.value), buf.dtype)
            f.emit(f"store {value}, {ptr}, align {align}")
            return
        offsets = self.flat_index(buf, s.indices)
        value = self.to_memory(self.expr(s.value), buf.dtype)
        for k in range(lanes):  # in lane order: the highest lane wins on a collision
            ptr = self.address(buf, f.extract(offsets, k))
            f.emit(f"store {mty} {f.extract(value, k).ref}, {ptr}, align {align}")

    # -- loops -----------------------------------------------------------------------------

    def counted(self, count: V, signed: bool, body: Callable[[V], None]) -> None:
        """`for (k = 0; k < count; k++) body(k)` in count's type."""
        f = self.f
        head, loop, done = self.label("head"), self.label("loop"), self.label("done")
        pre = f.block
        f.br(head)
        f.start(head)
        slot = len(f.lines)
        f.emit("")
        k = V(count.ty, "%" + f.fresh("k"))
        f.cbr(f.cmp("icmp", "slt" if signed else "ult", k, count), loop, done)
        f.start(loop)
        body(k)
        step = f.binop("add", k, "1")
        f.lines[slot] = f"  {k.ref} = phi {k.ty} [0, %{pre}], [{step.ref}, %{f.block}]"
        f.br(head)
        f.start(done)

    def loop(self, s: For) -> None:
        lo, n = self.expr(s.min), self.expr(s.extent)
        if s.kind is ForKind.parallel and self.status is None:
            self.parallel(s, lo, n)
            return

        def body(k: V) -> None:
            self.vars[s.var.name] = self.f.binop("add", lo, k)
            self.stmt(s.body)
            del self.vars[s.var.name]

        extent = s.extent.value if isinstance(s.extent, IntImm) else 0
        if s.kind is ForKind.unrolled and 0 < extent <= UNROLL_EXTENT \
                and self.unrolled * extent <= UNROLL_COPIES:
            self.unrolled *= extent  # unroll here: one copy of the body per iteration
            first = self.ctx.asserts
            for k in range(extent):
                self.ctx.asserts = first  # every copy's asserts keep their walk-order codes
                body(V(lo.ty, str(k)))
            self.unrolled //= extent
            return
        self.counted(n, s.var.dtype.is_signed, body)

    def captures(self, body: Stmt) -> tuple[list[str], list[str]]:
        """The variables and buffers in scope that `body` uses."""
        used = {n.name for n in walk(body) if isinstance(n, (Var, Buffer))}
        return [v for v in self.vars if v in used], [b for b in self.bufs if b in used]

    def parallel(self, s: For, lo: V, n: V) -> None:
        f, mod, decls = self.f, self.ctx.module, self.decls
        run, done = self.label("par"), self.label("pardone")
        f.cbr(f.cmp("icmp", "sgt" if s.var.dtype.is_signed else "ne", n, "0"), run, done)
        f.start(run)
        n64 = n if n.ty == "i64" else f.conv("zext", n, "i64")
        names, bufs = self.captures(s.body)
        fields = [V("i32", "0"), lo, n64, *(self.vars[v] for v in names if _reg(self.vars[v]))]
        for b in bufs:
            fields += [self.bufs[b].ptr, *filter(_reg, self.bufs[b].dims)]
        struct = "{" + ", ".join(v.ty for v in fields) + "}"
        closure = f.alloca(struct, 64)
        slots = []
        for k, v in enumerate(fields):
            slots.append(f.val("ptr", f"getelementptr {struct}, {closure}, i32 0, i32 {k}"))
            f.emit(f"store {v}, {slots[-1]}")
        body = self.outline(s, struct, fields, names, bufs)
        if mod.num_threads > 0:
            team = V("i64", str(mod.num_threads))
        else:
            team = f.conv("zext", f.call("i32", decls.need("omp_get_max_threads", "i32")), "i64")
        team = f.call("i64", decls.intrinsic("umin", "i64", 2), team, n64)
        gomp = decls.need("GOMP_parallel", "void", "ptr", "ptr", "i32", "i32")
        state = f.val("i32", f"load atomic i32, ptr getelementptr ([2 x i32], ptr @{OMP_STATE}, "
                             f"i32 0, i32 1) monotonic, align 4")
        team_label, direct, joined = self.label("team"), self.label("direct"), self.label("join")
        f.cbr(f.cmp("icmp", "ne", state, "0"), direct, team_label)
        f.start(team_label)
        f.emit(f"store atomic i32 1, ptr @{OMP_STATE} monotonic, align 4")
        f.emit(f"call void @{gomp}(ptr @{body}, {closure}, {f.conv('trunc', team, 'i32')}, "
               f"i32 0)")
        f.br(joined)
        f.start(direct)  # a forked child: run the body as a team of one, in this thread
        f.emit(f"call void @{body}({closure})")
        f.br(joined)
        f.start(joined)
        status = f.val("i32", f"load i32, {slots[0]}")
        bad = self.label("parfail")
        f.cbr(f.cmp("icmp", "ne", status, "0"), bad, done)
        f.start(bad)
        self.fail(status)
        f.start(done)

    def outline(self, s: For, struct: str, fields: list[V], names: list[str],
                bufs: list[str]) -> str:
        """Emit the body function of parallel loop `s`; returns its name."""
        self.ctx.outlined += 1
        name = f"{self.ctx.symbol}.par{self.ctx.outlined}"
        f = IRFunction(f"define internal void @{name}(ptr %closure) #0")
        loaded = []
        for k, v in enumerate(fields):
            ptr = f.val("ptr", f"getelementptr {struct}, ptr %closure, i32 0, i32 {k}")
            loaded.append(ptr if k == 0 else f.val(v.ty, f"load {v.ty}, {ptr}"))
        g = FuncGen(self.ctx, f, status=loaded[0])
        lo, n64 = loaded[1], loaded[2]
        rest = iter(loaded[3:])
        for v in names:
            g.vars[v] = next(rest) if _reg(self.vars[v]) else self.vars[v]
        for b in bufs:
            info = self.bufs[b]
            ptr = next(rest)
            g.bufs[b] = BufInfo(ptr, [next(rest) if _reg(d) else d for d in info.dims],
                                info.dtype)
        decls = self.decls
        tid = f.conv("zext", f.call("i32", decls.need("omp_get_thread_num", "i32")), "i64")
        team = f.conv("zext", f.call("i32", decls.need("omp_get_num_threads", "i32")), "i64")
        quot, rem = f.binop("udiv", n64, team), f.binop("urem", n64, team)
        umin = decls.intrinsic("umin", "i64", 2)
        begin = f.binop("add", f.binop("mul", tid, quot), f.call("i64", umin, tid, rem))
        count = f.binop("add", quot, f.conv("zext", f.cmp("icmp", "ult", tid, rem), "i64"))
        record, go = g.label("rec"), g.label("go")
        f.cbr(f.cmp("icmp", "ne", count, "0"), record, go)
        f.start(record)
        bit = f.binop("shl", V("i64", "1"), f.call("i64", umin, tid, V("i64", "63")))
        f.emit(f"atomicrmw or ptr @{THREADS_GLOBAL}, {bit} monotonic")
        f.br(go)
        f.start(go)

        def body(k: V) -> None:
            c = f.binop("add", begin, k)
            c = c if lo.ty == "i64" else f.conv("trunc", c, lo.ty)
            g.vars[s.var.name] = f.binop("add", lo, c)
            g.stmt(s.body)
            del g.vars[s.var.name]

        g.counted(count, False, body)
        f.emit("ret void")
        self.ctx.module.functions.append(f.text())
        return name

    # -- memory ----------------------------------------------------------------------------

    def allocate(self, s: Allocate) -> None:
        f, buf = self.f, s.buffer
        dims = [self.to_i64(self.expr(d), d.dtype) for d in buf.shape]
        esize = ELEM_BYTES[buf.dtype]
        heap = True
        if all(isinstance(d, IntImm) for d in buf.shape):
            nbytes = math.prod(d.value for d in buf.shape if isinstance(d, IntImm)) * esize
            if nbytes <= STACK_BYTES and self.stack_bytes + nbytes <= STACK_BUDGET:
                self.stack_bytes += nbytes
                ptr, heap = f.alloca(f"[{max(nbytes, 1)} x i8]", 64), False
        if heap:
            size = V("i64", str(esize))
            for d in dims:
                size = f.binop("mul", size, d)
            ptr = f.call("ptr", self.decls.need("malloc", "ptr", "i64"), size)
            self.heaps.append(ptr)
        self.bufs[buf.name] = BufInfo(ptr, dims, buf.dtype)
        self.stmt(s.body)
        del self.bufs[buf.name]
        if heap:
            f.emit(f"call void @{self.decls.need('free', 'void', 'ptr')}({ptr})")
            self.heaps.pop()


def lower_func(module: ModuleBuilder, func: PrimFunc, symbol: str) -> None:
    """Append `int32_t symbol(params...)` (the ABI of `compiler.codegen.abi`) to `module`."""
    params = []
    for k, p in enumerate(func.params):
        if isinstance(p, Var) and p.lanes != 1:
            raise UnsupportedError(f"the LLVM backend cannot pass vector parameter {p.name} "
                                   f"({p.dtype.value}x{p.lanes})", where=f"@{func.name}")
        params.append(f"ptr %p{k}" if isinstance(p, Buffer) else f"{memory_type(p.dtype)} %p{k}")
    f = IRFunction(f"define i32 @{symbol}({', '.join(params)}) #0")
    g = FuncGen(FuncContext(module, symbol), f)
    for k, p in enumerate(func.params):
        if isinstance(p, Var):
            raw = V(memory_type(p.dtype), f"%p{k}")
            g.vars[p.name] = raw if raw.ty == value_type(p.dtype) else \
                g.from_memory(raw, p.dtype)
    for k, p in enumerate(func.params):
        if isinstance(p, Buffer):
            dims = [g.to_i64(g.expr(d), d.dtype) for d in p.shape]
            g.bufs[p.name] = BufInfo(V("ptr", f"%p{k}"), dims, p.dtype)
    g.stmt(func.body)
    f.emit("ret i32 0")
    module.functions.append(f.text())
