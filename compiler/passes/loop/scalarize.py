"""scalarize: split vector stores into one scalar store per lane.

```
A[ramp(b, 1, 4)] = v   ->   let A_lane0 = v[0] ... let A_lane3 = v[3] { A[b] = A_lane0 ... }
```

Every lane of the value is computed (in lets) before any lane is stored, as the vector store
does, and lanes are stored in order, so a repeated element ends with the highest lane, as
before. A lane of an expression is taken structurally (`ramp(b, s, n)[k] = b + k * s`,
`broadcast(x, n)[k] = x`, operations lane-wise); vector variables have no lanes to take, so
stores that use them, or whose indices load the stored buffer, stay vector stores.
"""

from __future__ import annotations

from compiler.loop.ir import (
    BinKind,
    BinOp,
    Broadcast,
    BufferStore,
    Expr,
    IntImm,
    Let,
    LetStmt,
    Node,
    PrimFunc,
    Ramp,
    Stmt,
    Var,
)
from compiler.loop.traverse import transform, walk
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import NameSupply, loaded, seq_of


def lane(e: Expr, k: int) -> Expr:
    """Lane `k` of `e` as a scalar expression: ramps and broadcasts give up their lane `k`,
    and every other node is rebuilt from its (now scalar) children."""

    def pick(n: Node) -> Node | None:
        if isinstance(n, Broadcast):
            return n.value
        if isinstance(n, Ramp):
            if k == 0:
                return n.base
            return BinOp(BinKind.add, n.base, BinOp(BinKind.mul, IntImm(k, n.dtype), n.stride))
        return None

    out = transform(e, pick)
    assert isinstance(out, Expr)
    return out


def scalarizable(s: BufferStore) -> bool:
    if max((i.lanes for i in s.indices), default=1) == 1:
        return False
    for n in walk(s, binders=False):
        if isinstance(n, Var) and n.lanes != 1:
            return False
        if isinstance(n, Let) and n.value.lanes != 1:
            return False
    return not any(s.buffer.name in loaded(i) for i in s.indices)


def scalarize_store(s: BufferStore, names: NameSupply) -> Stmt:
    lanes = s.value.lanes
    vars_ = [Var(names.fresh(f"{s.buffer.name}_lane{k}"), s.value.dtype) for k in range(lanes)]
    stores = [BufferStore(s.buffer, v, tuple(lane(i, k) for i in s.indices))
              for k, v in enumerate(vars_)]
    out: Stmt = seq_of(stores)
    for k in reversed(range(lanes)):
        out = LetStmt(vars_[k], lane(s.value, k), out)
    return out


@loop_pass("Split vector stores into per-lane scalar stores (the inverse of vectorize).")
def scalarize(func: PrimFunc) -> PrimFunc:
    names = NameSupply(func)

    def visit(n: Node) -> Node | None:
        if isinstance(n, BufferStore) and scalarizable(n):
            return scalarize_store(n, names)
        return None

    out = transform(func, visit)
    assert isinstance(out, PrimFunc)
    return out
