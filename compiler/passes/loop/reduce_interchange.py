"""reduce_interchange: move the innermost output loop of a reduction inside its reduction loops.

Lowering writes a reduction as one accumulator per output element:

```
for j in [m, m+E):                      alloc acc: local [E]
  alloc acc: local [1]                  for j1: acc[j1 - m] = init(j1)
    acc[0] = init(j)           ==>      for r1: for r2: ...
    for r1: for r2: ...                     for j2: acc[j2 - m] = f(acc[j2 - m], v(j2))
        acc[0] = f(acc[0], v(j))        for j3: out[..., j3] = acc[j3 - m]
    out[..., j] = acc[0]
```

The rewritten form keeps a row of accumulators and sweeps it inside the reduction, so the
innermost loop runs over neighbouring output elements (consecutive inputs for a stride-1 conv
or a matmul's `B[k, j]`), which the backends vectorise. Each output element is still combined
in the same order, so results are bit-identical.

It applies when the `j` loop is serial with a constant extent of at least `min_extent` and at
most `max_extent`, its body is exactly `init; perfect reduction nest; final store` around a
one-element local accumulator used only at index 0, the reduction loops' bounds do not
depend on `j`, iterations are independent (`loop_util.independent`) and nothing in the body
reads the buffer it writes.
"""

from __future__ import annotations

from compiler.dtypes import DType
from compiler.loop.ir import (
    Allocate,
    Buffer,
    BufferLoad,
    BufferStore,
    Expr,
    For,
    ForKind,
    IntImm,
    Node,
    PrimFunc,
    SeqStmt,
    Stmt,
    Var,
)
from compiler.loop.traverse import substitute, transform, walk
from compiler.passes.base import Arg, loop_pass
from compiler.passes.loop_util import (
    NameSupply,
    const_int,
    free_vars,
    independent,
    loaded,
    perfect_nest,
    stored,
    top_down,
)


def _acc_only_at_zero(node: Node, acc: Buffer) -> bool:
    for n in walk(node):
        if isinstance(n, (BufferLoad, BufferStore)) and n.buffer == acc:
            if len(n.indices) != 1 or not (isinstance(n.indices[0], IntImm)
                                           and n.indices[0].value == 0):
                return False
    return True


def _match(loop: For, min_extent: int, max_extent: int) -> tuple | None:
    if loop.kind is not ForKind.serial:
        return None
    extent = const_int(loop.extent)
    if extent is None or not min_extent <= extent <= max_extent:
        return None
    alloc = loop.body
    if not isinstance(alloc, Allocate) or alloc.buffer.scope != "local":
        return None
    acc = alloc.buffer
    if len(acc.shape) != 1 or const_int(acc.shape[0]) != 1:
        return None
    seq = alloc.body
    if not isinstance(seq, SeqStmt) or len(seq.stmts) != 3:
        return None
    init, nest, fin = seq.stmts
    if not (isinstance(init, BufferStore) and init.buffer == acc and isinstance(nest, For)
            and isinstance(fin, BufferStore) and fin.buffer != acc):
        return None
    chain = perfect_nest(nest)
    for r in chain:
        if r.kind is not ForKind.serial or loop.var in free_vars(r.min) | free_vars(r.extent):
            return None
    if isinstance(chain[-1].body, For) or not _acc_only_at_zero(seq, acc):
        return None
    if stored(seq) - {acc.name} != {fin.buffer.name} or fin.buffer.name in loaded(seq):
        return None
    if not independent(alloc, [loop.var]):
        return None
    return acc, init, chain, fin


def _interchange(loop: For, names: NameSupply, min_extent: int, max_extent: int) -> Stmt | None:
    m = _match(loop, min_extent, max_extent)
    if m is None:
        return None
    acc, init, chain, fin = m
    row = Buffer(acc.name, acc.dtype, (loop.extent,), acc.scope)
    index_dtype: DType = loop.var.dtype

    def sweep(stmt: Stmt) -> For:
        j = Var(names.fresh(loop.var.name), index_dtype)
        at: Expr = j if const_int(loop.min) == 0 else j - loop.min

        def fn(n: Node) -> Node | None:
            if isinstance(n, BufferLoad) and n.buffer == acc:
                return BufferLoad(row, (at,))
            if isinstance(n, BufferStore) and n.buffer == acc:
                return BufferStore(row, n.value, (at,))
            return None

        body = transform(substitute(stmt, {loop.var: j}), fn)
        assert isinstance(body, Stmt)
        return For(j, loop.min, loop.extent, ForKind.serial, body)

    inner: Stmt = sweep(chain[-1].body)
    for r in reversed(chain):
        inner = For(r.var, r.min, r.extent, r.kind, inner, r.thread)
    return Allocate(row, SeqStmt((sweep(init), inner, sweep(fin))))


@loop_pass("Move a reduction's innermost output loop inside its reduction loops.",
           Arg("min_extent", int, 4, "smallest output extent worth a row of accumulators",
               low=1),
           Arg("max_extent", int, 4096, "largest row of accumulators", low=1))
def reduce_interchange(func: PrimFunc, min_extent: int, max_extent: int) -> PrimFunc:
    names = NameSupply(func)

    def visit(n: Node, recurse) -> Node | None:
        if isinstance(n, For):
            return _interchange(n, names, min_extent, max_extent)
        return None

    out = top_down(func, visit)
    assert isinstance(out, PrimFunc)
    return out

