"""dce: dead-code elimination.

- `let x = v {body}` / `(let x = v in e)` whose variable is unused become their body;
- an allocation that is never loaded loses its stores, and then itself (its stored values
  are never observed: buffers allocated inside a function are not outputs);
- code after a statement that always fails (`assert false`) is dropped.

Dropping an evaluation can only remove undefined behaviour, never add it.
"""

from __future__ import annotations

from compiler.loop.ir import (
    Allocate,
    Assert,
    BufferStore,
    IntImm,
    Let,
    LetStmt,
    Node,
    PrimFunc,
    SeqStmt,
)
from compiler.loop.traverse import rewrite, transform
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import empty, loaded, seq_of, uses_var


def unused_let(n: Node) -> Node | None:
    if isinstance(n, (Let, LetStmt)) and not uses_var(n.body, n.var):
        return n.body
    return None


def write_only_alloc(n: Node) -> Node | None:
    if not isinstance(n, Allocate) or n.buffer.name in loaded(n.body):
        return None
    name = n.buffer.name

    def drop(s: Node) -> Node | None:
        return empty() if isinstance(s, BufferStore) and s.buffer.name == name else None

    return transform(n.body, drop)


def after_failure(n: Node) -> Node | None:
    if not isinstance(n, SeqStmt):
        return None
    for k, s in enumerate(n.stmts[:-1]):
        if isinstance(s, Assert) and s.cond == IntImm(0, s.cond.dtype):
            return seq_of(n.stmts[:k + 1])
    return None


@loop_pass("Remove unused lets, never-read allocations and code after a certain failure.")
def dce(func: PrimFunc) -> PrimFunc:
    out = rewrite(func, [unused_let, write_only_alloc, after_failure])
    assert isinstance(out, PrimFunc)
    return out
