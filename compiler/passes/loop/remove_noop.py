"""remove_noop: delete statements that do nothing.

Loop-IR expressions have no side effects, so `eval e`, `assert true`, `A[i] = A[i]`, empty
loops, branches, allocations and lets, and `if c {} else {}` do nothing in a program without
undefined behaviour. `eval barrier()` is an effect, not an expression's value: it is kept.
"""

from __future__ import annotations

from compiler.loop.ir import (
    Allocate,
    Assert,
    BufferLoad,
    BufferStore,
    Evaluate,
    For,
    ForKind,
    IfThenElse,
    IntImm,
    LetStmt,
    Node,
    PrimFunc,
    is_barrier,
)
from compiler.loop.traverse import rewrite
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import empty, flatten_seq, is_empty


def drop_eval(s: Node) -> Node | None:
    return empty() if isinstance(s, Evaluate) and not is_barrier(s) else None


def drop_true_assert(s: Node) -> Node | None:
    if isinstance(s, Assert) and s.cond == IntImm(1, s.cond.dtype):
        return empty()
    return None


def drop_self_store(s: Node) -> Node | None:
    if isinstance(s, BufferStore) and isinstance(s.value, BufferLoad) \
            and s.value.buffer == s.buffer and s.value.indices == s.indices:
        return empty()
    return None


def drop_empty_block(s: Node) -> Node | None:
    if isinstance(s, For) and s.kind is not ForKind.thread_binding and is_empty(s.body):
        return empty()
    if isinstance(s, (Allocate, LetStmt)) and is_empty(s.body):
        return empty()
    if isinstance(s, IfThenElse) and is_empty(s.then) and is_empty(s.else_):
        return empty()
    if isinstance(s, IfThenElse) and s.else_ is not None and is_empty(s.else_):
        return IfThenElse(s.cond, s.then, None)
    return None


RULES = [drop_eval, drop_true_assert, drop_self_store, drop_empty_block, flatten_seq]


@loop_pass("Remove statements without effect (evals, true asserts, self-copies, empty blocks).")
def remove_noop(func: PrimFunc) -> PrimFunc:
    out = rewrite(func, RULES)
    assert isinstance(out, PrimFunc)
    return out
