"""sync_insert: insert barriers between conflicting shared-memory accesses of GPU threads.

Inside a `threadIdx` loop, the statements of a sequence run on all threads at once. When a
statement reads a shared buffer that an earlier statement (since the last barrier) wrote,
or writes one that an earlier statement read or wrote, a barrier goes in between. A loop
whose body both reads and writes shared memory also gets a barrier at the end of its body,
for the hazard between iterations. Only sequences all threads reach together are touched:
not under an `if` or loop whose condition or bounds depend on a thread index. A single
statement that both reads and writes shared memory another thread touches is not split
(that needs a temporary and two barriers): such code is left as it is.

A barrier is `eval barrier()` (the IR's `barrier` intrinsic: `__syncthreads()` on a GPU, a
no-op where threads run in order, as in the interpreter and the CPU backends).
"""

from __future__ import annotations

from collections.abc import Callable

from compiler.loop.ir import (
    Allocate,
    For,
    ForKind,
    IfThenElse,
    Node,
    PrimFunc,
    SeqStmt,
    Stmt,
    Var,
    barrier,
    is_barrier,
)
from compiler.loop.traverse import walk
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import free_vars, loaded, seq_of, stored, top_down


def _shared(func: PrimFunc) -> set[str]:
    return {n.buffer.name for n in walk(func) if isinstance(n, Allocate)
            and n.buffer.scope == "shared"}


class _Sync:
    def __init__(self, func: PrimFunc) -> None:
        self.shared = _shared(func)
        self.threads: set[Var] = set()

    def sequence(self, stmts: list[Stmt]) -> list[Stmt]:
        out: list[Stmt] = []
        written: set[str] = set()
        read: set[str] = set()
        for s in stmts:
            if is_barrier(s):
                written, read = set(), set()
                out.append(s)
                continue
            r, w = loaded(s) & self.shared, stored(s) & self.shared
            if (r & written) or (w & (read | written)):
                out.append(barrier())
                written, read = set(), set()
            out.append(s)
            written |= w
            read |= r
        return out

    def uniform(self, e: Node) -> bool:
        return not (free_vars(e) & self.threads)

    def visit(self, n: Node, recurse: Callable[[Node], Node]) -> Node | None:
        if isinstance(n, For) and n.kind is ForKind.thread_binding \
                and (n.thread or "").startswith("threadIdx"):
            self.threads.add(n.var)
            body = recurse(n.body)
            self.threads.discard(n.var)
            return For(n.var, n.min, n.extent, n.kind, body, n.thread)  # type: ignore[arg-type]
        if not self.threads:
            return None
        if isinstance(n, IfThenElse) and not self.uniform(n.cond):
            return n
        if isinstance(n, For):
            if not (self.uniform(n.min) and self.uniform(n.extent)):
                return n
            body = recurse(n.body)
            assert isinstance(body, Stmt)
            if loaded(body) & stored(body) & self.shared and not is_barrier(body):
                tail = body.stmts[-1] if isinstance(body, SeqStmt) and body.stmts else None
                if tail is None or not is_barrier(tail):
                    body = seq_of([body, barrier()])
            return For(n.var, n.min, n.extent, n.kind, body, n.thread)
        if isinstance(n, SeqStmt):
            parts = [recurse(s) for s in n.stmts]
            return SeqStmt(tuple(self.sequence(parts)))  # type: ignore[arg-type]
        return None


def _applies(func: PrimFunc) -> bool:
    return bool(_shared(func)) and any(isinstance(n, For) and (n.thread or "").startswith(
        "threadIdx") for n in walk(func))


@loop_pass("Insert barriers between conflicting shared-memory accesses in threadIdx loops.",
           applies=_applies)
def sync_insert(func: PrimFunc) -> PrimFunc:
    if not _applies(func):
        return func
    out = top_down(func, _Sync(func).visit)
    assert isinstance(out, PrimFunc)
    return out
