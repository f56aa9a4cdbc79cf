"""fuse_ops: group calls into `anvil.Fused` kernels, in the manner of FuseOps.

Each op declares a fusion kind (`compiler.ops.base.Kind`). Walking the bindings in order, a
producer joins its consumer's group when the producer's value has exactly one use (that
consumer) and the pair is one of:

- injective into injective: chains of elementwise, broadcast and injective ops;
- elementwise/broadcast after a reduction or a complex-out-fusable op (conv, matmul): the
  output fusion `conv -> add bias -> relu`;
- injective producers into a reduction: `exp -> reduce_sum`, `pad -> pool`.

A group holds at most one reduction or complex op (its anchor), and since only single-use
values are absorbed every group has one output and the grouping cannot create a cycle.
Only calls with a compute definition, not run on the host, with static types, and whose
shape inputs are constants are fused. A group of one call is left alone.

Each group becomes one `anvil.Fused` call whose `body` is the group as a function with
canonical names (`p0..`, `t0..`), so identical groups share one compiled kernel. Constants
the group needs as values (shape inputs) and scalars are copied into the body; other
constants (weights) are passed in like any input.
"""

from __future__ import annotations

from compiler.graph.ir import Binding, Call, Const, Function, Module, Var, make_attrs
from compiler.ops.base import Kind, get_op
from compiler.ops.internal import FUSED
from compiler.passes.base import Arg, graph_pass
from compiler.passes.graph_util import map_functions, use_counts


def _fusable(b: Binding, consts: dict[Var, Binding]) -> Kind | None:
    e = b.expr
    if not isinstance(e, Call) or e.op == FUSED:
        return None
    op = get_op(e.op)
    if op is None or op.compute is None or op.host or op.nondeterministic:
        return None
    if any(isinstance(v, Function) for _, v in e.attrs):
        return None
    vals = [a for a in e.args if a is not None] + list(b.outs)
    if not all(v.type.is_static for v in vals):
        return None
    for k in op.shape_inputs:
        if k < len(e.args) and e.args[k] is not None and e.args[k] not in consts:
            return None
    return op.kind


def _can_join(producer: Kind, consumer: Kind) -> bool:
    """Whether a group anchored at kind `producer` may absorb a consumer of kind `consumer`
    (or, symmetrically, be absorbed)."""
    injective = Kind.INJECTIVE
    if producer <= injective and consumer <= injective:
        return True
    if producer in (Kind.REDUCTION, Kind.COMPLEX_OUT_FUSABLE) and consumer <= Kind.BROADCAST:
        return True
    return producer <= injective and consumer == Kind.REDUCTION


def _groups(fn: Function, max_size: int) -> list[list[int]]:
    consts = {b.outs[0]: b for b in fn.body if isinstance(b.expr, Const)}
    uses = use_counts(fn)
    index = {o: i for i, b in enumerate(fn.body) for o in b.outs}
    kinds = [_fusable(b, consts) for b in fn.body]
    group = list(range(len(fn.body)))  # binding -> group id (the id of its last member)
    members: dict[int, list[int]] = {i: [i] for i in range(len(fn.body))}
    anchor: dict[int, Kind | None] = {i: k for i, k in enumerate(kinds)}
    for i, b in enumerate(fn.body):
        kind = kinds[i]
        if kind is None or len(b.outs) != 1:
            continue
        for a in dict.fromkeys(x for x in b.expr.args if x is not None):  # type: ignore[union-attr]
            j = index.get(a)
            if j is None or kinds[j] is None or uses[a] != 1 or len(fn.body[j].outs) != 1:
                continue
            if a in consts:
                continue
            g, h = group[j], group[i]
            if g == h:
                continue
            ga, ha = anchor[g], anchor[h]
            assert ga is not None and ha is not None
            if len(members[g]) + len(members[h]) > max_size:
                continue
            heavy = {Kind.REDUCTION, Kind.COMPLEX_OUT_FUSABLE}
            if ga in heavy and ha in heavy:
                continue
            # the consumer side is `kind` alone when its group is still just itself
            if not _can_join(ga, ha if len(members[h]) > 1 else kind):
                continue
            merged = sorted(members[g] + members[h])
            new_anchor = ga if ga in heavy else ha if ha in heavy else max(ga, ha)
            for m in members.pop(g):
                group[m] = h
            members[h] = merged
            anchor[h] = new_anchor
    return [m for m in members.values() if len(m) > 1]


def _fuse_function(fn: Function, max_size: int, counter: list[int]) -> Function:
    groups = _groups(fn, max_size)
    if not groups:
        return fn
    consts = {b.outs[0]: b for b in fn.body if isinstance(b.expr, Const)}
    at_last: dict[int, list[int]] = {g[-1]: g for g in groups}
    dropped = {i for g in groups for i in g[:-1]}
    body: list[Binding] = []
    for i, b in enumerate(fn.body):
        if i in dropped:
            continue
        g = at_last.get(i)
        if g is None:
            body.append(b)
            continue
        body.append(_make_group(fn, [fn.body[k] for k in g], consts, counter))
    return Function(fn.name, fn.params, tuple(body), fn.results)


def _make_group(fn: Function, group: list[Binding], consts: dict[Var, Binding],
                counter: list[int]) -> Binding:
    defined = {o for b in group for o in b.outs}
    out = group[-1].outs[0]
    inputs: list[Var] = []
    inline: list[Var] = []
    for b in group:
        op = get_op(b.expr.op)  # type: ignore[union-attr]
        for k, a in enumerate(b.expr.args):  # type: ignore[union-attr]
            if a is None or a in defined or a in inputs or a in inline:
                continue
            c = consts.get(a)
            # shape inputs must be known when the group is lowered; scalars become immediates
            if c is not None and (k in op.shape_inputs or c.expr.value.array.size == 1):  # type: ignore[union-attr]
                inline.append(a)
            else:
                inputs.append(a)
    rename: dict[Var, Var] = {}
    params = []
    for k, a in enumerate(inputs):
        rename[a] = Var(f"p{k}", a.type)
        params.append(rename[a])
    inner: list[Binding] = []
    n = 0
    for a in inline:
        rename[a] = Var(f"t{n}", a.type)
        n += 1
        inner.append(Binding((rename[a],), consts[a].expr))
    for b in group:
        e = b.expr
        assert isinstance(e, Call)
        outs = []
        for o in b.outs:
            rename[o] = Var(f"t{n}", o.type)
            n += 1
            outs.append(rename[o])
        args = tuple(rename[a] if a is not None else None for a in e.args)
        inner.append(Binding(tuple(outs), Call(e.op, args, e.attrs), b.origin))
    counter[0] += 1
    body = Function("fused", tuple(params), tuple(inner), (rename[out],))
    origin = "+".join(b.expr.op for b in group)  # type: ignore[union-attr]
    return Binding((out,), Call(FUSED, tuple(inputs), make_attrs({"body": body})), origin)


@graph_pass("Fuse injective chains and reduction/conv/matmul epilogues into anvil.Fused kernels.",
            Arg("max_size", int, 64, "most calls in one group", low=2))
def fuse_ops(module: Module, max_size: int) -> Module:
    counter = [0]

    def rewrite(fn: Function) -> Function:
        return _fuse_function(fn, max_size, counter)

    return map_functions(module, rewrite)
