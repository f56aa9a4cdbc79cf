"""dead_store_elim: remove stores whose value is never observed.

- In a sequence, a store `B[idx] = x` is dead when a later statement of the same sequence
  stores `B[idx]` at the very same index expressions, nothing in between touches `B` or
  writes a buffer the indices load, and the overwriting store's value does not load `B`.
- At the end of an allocation's scope, trailing stores to the allocated buffer are dead.
- A store of the value just loaded from the same element (`B[i] = B[i]`) is dead.
"""

from __future__ import annotations

from compiler.loop.ir import Allocate, BufferLoad, BufferStore, Node, PrimFunc, SeqStmt, Stmt
from compiler.loop.traverse import rewrite
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import empty, loaded, seq_of, stored


def _touches(s: Stmt, name: str) -> bool:
    return name in loaded(s) or name in stored(s)


def _overwritten(stmts: list[Stmt], k: int) -> bool:
    s = stmts[k]
    assert isinstance(s, BufferStore)
    name = s.buffer.name
    idx_loads = set().union(*(loaded(i) for i in s.indices)) if s.indices else set()
    if name in idx_loads:
        return False
    for later in stmts[k + 1:]:
        if isinstance(later, BufferStore) and later.buffer.name == name \
                and later.indices == s.indices:
            return name not in loaded(later.value)
        if _touches(later, name) or stored(later) & idx_loads:
            return False
    return False


def overwritten_store(n: Node) -> Node | None:
    if not isinstance(n, SeqStmt):
        return None
    stmts = list(n.stmts)
    for k, s in enumerate(stmts):
        if isinstance(s, BufferStore) and _overwritten(stmts, k):
            return seq_of([*stmts[:k], *stmts[k + 1:]])
    return None


def trailing_store(n: Node) -> Node | None:
    if not isinstance(n, Allocate):
        return None
    body = n.body
    stmts = list(body.stmts) if isinstance(body, SeqStmt) else [body]
    if stmts and isinstance(stmts[-1], BufferStore) and stmts[-1].buffer.name == n.buffer.name:
        return Allocate(n.buffer, seq_of(stmts[:-1]))
    return None


def self_store(n: Node) -> Node | None:
    if isinstance(n, BufferStore) and isinstance(n.value, BufferLoad) \
            and n.value.buffer == n.buffer and n.value.indices == n.indices:
        return empty()
    return None


@loop_pass("Remove overwritten stores, stores at the end of an allocation, and self-copies.")
def dead_store_elim(func: PrimFunc) -> PrimFunc:
    out = rewrite(func, [overwritten_store, trailing_store, self_store])
    assert isinstance(out, PrimFunc)
    return out
