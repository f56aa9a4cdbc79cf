"""reorder: permute the loops of a perfect loop nest.

With `order` (comma-separated loop variable names, e.g. `"k,i"`), the named loops of a
perfect nest that has them all are put in that order, in the positions they occupy (so
`"k,i"` turns the nest `i, j, k` into `k, j, i`). Without it, loops move so that the
loop whose variable indexes the last (contiguous) dimension of the most accesses is
innermost (a stable sort by that count), which is the classic interchange for locality.

Legal only when the iterations are independent (`loop_util.independent`: every written
buffer is accessed at one index tuple that moves with each permuted variable), the loops'
bounds do not use each other's variables, and no loop is thread-bound or vectorized.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler.loop.ir import BufferLoad, BufferStore, For, ForKind, Node, PrimFunc, Stmt
from compiler.loop.traverse import walk
from compiler.passes.base import Arg, loop_pass
from compiler.passes.loop_util import (
    free_vars,
    independent,
    loops_of,
    perfect_nest,
    top_down,
    unit_component,
)

_MOVABLE = (ForKind.serial, ForKind.parallel, ForKind.unrolled)


def locality_score(body: Stmt, loop: For) -> int:
    """How many accesses in `body` use `loop`'s variable as their last index."""
    return sum(1 for n in walk(body) if isinstance(n, (BufferLoad, BufferStore)) and n.indices
               and unit_component(n.indices[-1], loop.var, {loop.var}))


def can_permute(chain: list[For]) -> bool:
    loop_vars = {lp.var for lp in chain}
    if any(lp.kind not in _MOVABLE for lp in chain):
        return False
    if any(free_vars(lp.min) & loop_vars or free_vars(lp.extent) & loop_vars for lp in chain):
        return False
    return independent(chain[-1].body, [lp.var for lp in chain])


def rebuild(order: list[For], body: Stmt) -> Stmt:
    for lp in reversed(order):
        body = For(lp.var, lp.min, lp.extent, lp.kind, body, lp.thread)
    return body


def _target(chain: list[For], order: str) -> list[For] | None:
    """The permuted chain (same length as `chain`), or None to leave it."""
    if order:
        wanted = [w.strip() for w in order.split(",") if w.strip()]
        by_name = {lp.var.name: lp for lp in chain}
        if len(set(wanted)) != len(wanted) or not set(wanted) <= set(by_name):
            return None
        slots = sorted(k for k, lp in enumerate(chain) if lp.var.name in wanted)
        out = list(chain)
        for slot, name in zip(slots, wanted, strict=True):
            out[slot] = by_name[name]
        return out if out != chain else None
    body = chain[-1].body
    ranked = sorted(chain, key=lambda lp: locality_score(body, lp))
    return ranked if ranked != chain else None


def _reorder(n: Node, recurse: Callable[[Node], Node], order: str) -> Node | None:
    if not isinstance(n, For):
        return None
    chain = perfect_nest(n)
    body = recurse(chain[-1].body)
    assert isinstance(body, Stmt)
    target = _target(chain, order) if len(chain) > 1 and can_permute(chain) else None
    return rebuild(target or chain, body)


def _applies(func: PrimFunc, order: str) -> bool:
    heads = [lp for lp in loops_of(func)]
    return any(len(perfect_nest(h)) > 1 and can_permute(perfect_nest(h))
               and _target(perfect_nest(h), order) is not None for h in heads)


@loop_pass("Permute perfect loop nests (given order, or stride-1 loop innermost) when legal.",
           Arg("order", str, "", "comma-separated loop variables, outermost first"),
           applies=_applies)
def reorder(func: PrimFunc, order: str) -> PrimFunc:
    out = top_down(func, lambda n, rec: _reorder(n, rec, order))
    assert isinstance(out, PrimFunc)
    return out
