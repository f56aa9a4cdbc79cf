"""loop_fusion: fuse adjacent loops with the same bounds into one.

```
for i in serial(0, n) {A}  for j in serial(0, n) {B}  ->  for i in serial(0, n) {A; B[j := i]}
```

The loops must be neighbours in a sequence, with structurally equal min and extent that load
nothing the first loop writes, the same kind (serial or unrolled) and variable dtype. Fusion
interleaves iterations, so every buffer that one body writes and the other accesses must be
accessed by both only at one index tuple that moves with the loop variable: then iteration
`i` of the second loop touches only what iteration `i` of the first did.
"""

from __future__ import annotations

from compiler.loop.ir import For, ForKind, Node, PrimFunc, SeqStmt
from compiler.loop.traverse import rewrite, substitute
from compiler.passes.base import loop_pass
from compiler.passes.loop_util import (
    accesses,
    allocated,
    bound_vars,
    loaded,
    names_in,
    seq_of,
    stored,
    unit_component,
)

_FUSABLE = (ForKind.serial, ForKind.unrolled)


def fusable(a: For, b: For) -> bool:
    if a.kind is not b.kind or a.kind not in _FUSABLE or a.var.dtype != b.var.dtype:
        return False
    if a.min != b.min or a.extent != b.extent:
        return False
    written_a = stored(a.body)
    if (loaded(b.min) | loaded(b.extent)) & written_a:
        return False
    if a.var.name != b.var.name and a.var.name in names_in(b.body):
        return False
    body_b = substitute(b.body, {b.var: a.var})
    local = allocated(a.body) | allocated(body_b)
    written = (written_a | stored(body_b)) - local
    shared = written & ((loaded(a.body) | written_a) & (loaded(body_b) | stored(body_b)))
    inner = (bound_vars(a.body) | bound_vars(body_b)) | {a.var}
    acc = accesses(a.body) + accesses(body_b)
    for name in shared:
        tuples = {x.indices for x in acc if x.buffer == name}
        if len(tuples) != 1:
            return False
        (idx,) = tuples
        if any(i.lanes != 1 or loaded(i) & written for i in idx):
            return False
        if not any(unit_component(i, a.var, inner) for i in idx):
            return False
    return True


def fuse_adjacent(n: Node) -> Node | None:
    if not isinstance(n, SeqStmt):
        return None
    stmts = list(n.stmts)
    for k in range(len(stmts) - 1):
        a, b = stmts[k], stmts[k + 1]
        if isinstance(a, For) and isinstance(b, For) and fusable(a, b):
            body = seq_of([a.body, substitute(b.body, {b.var: a.var})])
            fused = For(a.var, a.min, a.extent, a.kind, body, a.thread)
            return seq_of([*stmts[:k], fused, *stmts[k + 2:]])
    return None


@loop_pass("Fuse neighbouring loops with equal bounds when no dependence is violated.")
def loop_fusion(func: PrimFunc) -> PrimFunc:
    out = rewrite(func, [fuse_adjacent])
    assert isinstance(out, PrimFunc)
    return out
