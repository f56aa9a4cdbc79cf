"""Indexing ops: Gather, GatherElements, GatherND, Scatter (deprecated), ScatterElements,
ScatterND, TensorScatter, Compress, NonZero, Unique, OneHot, Trilu, ReverseSequence.

Negative indices count from the back as the spec allows; an index outside the valid range is
a clean `ExecutionError` at run time, never a numpy IndexError.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
from compiler.lower.te import INDEX, Tensor, idx
from compiler.ops.base import (
    Attr,
    EvalCtx,
    InferCtx,
    Kind,
    OpDef,
    dim_eq,
    norm_axis,
    numel,
    register,
    unknown_shape,
)
from compiler.ops.shape import (
    INDEX_TYPES,
    all_of,
    as_index,
    as_ints,
    check_int_input,
    const_ints,
    guarded_load,
    nonempty,
    req,
    rt_axes,
    rt_fail,
    wrap_index,
    zero_of,
)

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

REDUCTIONS = ("none", "add", "mul", "max", "min")


def check_indices(op: str, idx: np.ndarray, dim: int, what: str = "index") -> np.ndarray:
    """int64 copy of `idx` with negative entries wrapped; out-of-range entries raise."""
    idx = np.asarray(idx).astype(np.int64)
    bad = (idx < -dim) | (idx >= dim)
    if bad.any():
        v = int(idx[bad].reshape(-1)[0])
        raise rt_fail(op, f"{what} {v} is out of range for a dim of size {dim}")
    return np.where(idx < 0, idx + dim, idx)


def _index_input(ctx: InferCtx, i: int, what: str = "indices") -> TensorType:
    t = req(ctx, i, what)
    if t.dtype not in INDEX_TYPES:
        raise ctx.fail(f"{what} must be int32 or int64, got {t.dtype}")
    return t


def _check_same_dims(ctx: InferCtx, a, b, what: str, skip: int | None = None) -> None:
    if a is None or b is None:
        return
    if len(a) != len(b):
        raise ctx.fail(f"{what}: ranks {len(a)} and {len(b)} differ")
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if i != skip and dim_eq(x, y) is False:
            raise ctx.fail(f"{what}: dim {i} is {x} and {y}")


# ---------------------------------------------------------------------------------------
# Gather family


def _gather_infer(ctx: InferCtx) -> list[TensorType]:
    t, it = req(ctx, 0, "data"), _index_input(ctx, 1)
    if t.shape is None or it.shape is None:
        return [TensorType(None, t.dtype)]
    if not t.shape:
        raise ctx.fail("data must have rank >= 1")
    axis = norm_axis(ctx, ctx.attrs["axis"], len(t.shape))
    return [TensorType(t.shape[:axis] + it.shape + t.shape[axis + 1:], t.dtype)]


def _gather_ref(ctx: EvalCtx, inputs):
    x, idx = inputs
    (axis,) = rt_axes(ctx.op, [ctx.attrs["axis"]], x.ndim)
    idx = check_indices("Gather", idx, x.shape[axis])
    return [np.take(x, idx, axis=axis)]


@nonempty
def _gather_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    x, ind = ins
    axis, q = ctx.attrs["axis"] % x.ndim, ind.ndim

    def body(*i):
        at = wrap_index(ind[tuple(i[axis:axis + q])], x.shape[axis])
        return guarded_load(x, (*i[:axis], at, *i[axis + q:]), None, topi.scalar(0, x.dtype))

    return [te.compute("Gather", ctx.out_types[0].shape, body)]


register(OpDef("Gather", _gather_infer, _gather_ref, attrs={"axis": Attr("int", 0)},
               kind=Kind.INJECTIVE, inputs=(2, 2), compute=_gather_compute))


def _gather_elements_infer(ctx: InferCtx) -> list[TensorType]:
    t, it = req(ctx, 0, "data"), _index_input(ctx, 1)
    if t.rank is not None and it.rank is not None:
        if t.rank != it.rank:
            raise ctx.fail(f"data rank {t.rank} and indices rank {it.rank} differ")
        if t.rank == 0:
            raise ctx.fail("data must have rank >= 1")
    rank = t.rank if t.rank is not None else it.rank
    if rank is not None:
        norm_axis(ctx, ctx.attrs["axis"], rank)
    return [TensorType(it.shape if it.shape is not None else unknown_shape(rank), t.dtype)]


def _gather_elements_ref(ctx: EvalCtx, inputs):
    x, idx = inputs
    (axis,) = rt_axes(ctx.op, [ctx.attrs["axis"]], x.ndim)
    idx = check_indices("GatherElements", idx, x.shape[axis])
    if any(i > d for k, (i, d) in enumerate(zip(idx.shape, x.shape, strict=True))
           if k != axis):
        raise rt_fail("GatherElements", f"indices {list(idx.shape)} exceed data "
                                        f"{list(x.shape)} outside axis {axis}")
    grid = list(np.indices(idx.shape, sparse=True))
    grid[axis] = idx
    return [x[tuple(grid)]]


@nonempty
def _gather_elements_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    x, ind = ins
    axis = ctx.attrs["axis"] % x.ndim

    def body(*i):
        src = list(i)
        src[axis] = wrap_index(ind[i], x.shape[axis])
        return guarded_load(x, src, None, topi.scalar(0, x.dtype))

    return [te.compute("GatherElements", ind.shape, body)]


register(OpDef("GatherElements", _gather_elements_infer, _gather_elements_ref,
               attrs={"axis": Attr("int", 0)}, kind=Kind.INJECTIVE, inputs=(2, 2),
               compute=_gather_elements_compute))


def _gather_nd_infer(ctx: InferCtx) -> list[TensorType]:
    t, it = req(ctx, 0, "data"), _index_input(ctx, 1)
    b = ctx.attrs["batch_dims"]
    if b < 0:
        raise ctx.fail(f"batch_dims must be >= 0, got {b}")
    if t.shape is None or it.shape is None:
        return [TensorType(None, t.dtype)]
    r, q = len(t.shape), len(it.shape)
    if r < 1 or q < 1:
        raise ctx.fail("data and indices must have rank >= 1")
    if b >= min(r, q):
        raise ctx.fail(f"batch_dims {b} must be less than both ranks ({r}, {q})")
    _check_same_dims(ctx, t.shape[:b], it.shape[:b], "batch dims of data and indices")
    m = it.shape[-1]
    if not isinstance(m, int):
        return [TensorType(None, t.dtype)]
    if not 1 <= m <= r - b:
        raise ctx.fail(f"indices.shape[-1] = {m} must be in [1, {r - b}]")
    return [TensorType(it.shape[:-1] + t.shape[b + m:], t.dtype)]


def _gather_nd_ref(ctx: EvalCtx, inputs):
    x, idx = inputs
    b = ctx.attrs["batch_dims"]
    m = idx.shape[-1]
    batch = int(np.prod(x.shape[:b], dtype=np.int64))
    rows = int(np.prod(idx.shape[b:-1], dtype=np.int64))
    xr = x.reshape((batch,) + x.shape[b:])
    ir = idx.reshape(batch, rows, m)
    ix = tuple(check_indices("GatherND", ir[..., k], x.shape[b + k]) for k in range(m))
    out = xr[(np.arange(batch)[:, None],) + ix]
    return [out.reshape(idx.shape[:-1] + x.shape[b + m:])]


@nonempty
def _gather_nd_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    """out[batch, rows, rest] = x[batch, ind[batch, rows, 0..m), rest]."""
    x, ind = ins
    b, q, m = ctx.attrs["batch_dims"], ind.ndim, ind.shape[-1]

    def body(*i):
        row = i[:q - 1]
        at = [wrap_index(ind[(*row, idx(k))], x.shape[b + k]) for k in range(m)]
        return guarded_load(x, (*i[:b], *at, *i[q - 1:]), None, topi.scalar(0, x.dtype))

    return [te.compute("GatherND", ctx.out_types[0].shape, body)]


register(OpDef("GatherND", _gather_nd_infer, _gather_nd_ref,
               attrs={"batch_dims": Attr("int", 0)}, kind=Kind.INJECTIVE, inputs=(2, 2),
               compute=_gather_nd_compute))


# ---------------------------------------------------------------------------------------
# Scatter family


def _reduction(ctx: InferCtx) -> None:
    if ctx.attrs.get("reduction", "none") not in REDUCTIONS:
        raise ctx.fail(f"reduction must be one of {', '.join(REDUCTIONS)}, "
                       f"got {ctx.attrs['reduction']!r}")


def _scatter_elements_infer(ctx: InferCtx) -> list[TensorType]:
    t, it, ut = req(ctx, 0, "data"), _index_input(ctx, 1), req(ctx, 2, "updates")
    _reduction(ctx)
    if ut.dtype != t.dtype:
        raise ctx.fail(f"updates dtype {ut.dtype} differs from data dtype {t.dtype}")
    _check_same_dims(ctx, it.shape, ut.shape, "indices and updates")
    if t.rank is not None:
        if t.rank == 0:
            raise ctx.fail("data must have rank >= 1")
        norm_axis(ctx, ctx.attrs["axis"], t.rank)
        for s in (it.shape, ut.shape):
            if s is not None and len(s) != t.rank:
                raise ctx.fail(f"indices/updates rank {len(s)} differs from data rank {t.rank}")
    return [TensorType(t.shape, t.dtype)]


def scatter_into(out: np.ndarray, index: tuple, updates: np.ndarray, reduction: str) -> None:
    if reduction == "none":
        out[index] = updates
        return
    ufunc = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}
    if out.dtype == np.bool_ and reduction in ("add", "mul"):
        ufunc = {"add": np.logical_or, "mul": np.logical_and}
    ufunc[reduction].at(out, index, updates)


def _scatter_elements_ref(ctx: EvalCtx, inputs):
    x, idx, upd = inputs
    (axis,) = rt_axes(ctx.op, [ctx.attrs["axis"]], x.ndim)
    idx = check_indices(ctx.op, idx, x.shape[axis])
    if idx.shape != upd.shape or any(
            i > d for k, (i, d) in enumerate(zip(idx.shape, x.shape, strict=True)) if k != axis):
        raise rt_fail(ctx.op, f"indices {list(idx.shape)} / updates {list(upd.shape)} do not "
                              f"fit data {list(x.shape)}")
    grid = list(np.indices(idx.shape, sparse=True))
    grid[axis] = idx
    out = x.copy()
    scatter_into(out, tuple(grid), upd, ctx.attrs.get("reduction", "none"))
    return [out]


def scatter_stage(name: str, x: Tensor, reduction: str, extents: Sequence[int],
                  hits: Callable[[Sequence[Expr], Sequence[Expr]], Expr],
                  update: Callable[[Sequence[Expr], Sequence[Expr]], Expr]) -> Tensor:
    """A scatter as a gather over the updates (O(outputs x updates), fine at test sizes).

    The updates are numbered by `extents` (row-major); `hits(p, r)` says whether update `r`
    lands on output position `p`, and `update(p, r)` is its value. `none` keeps the last
    update that lands (numpy assignment order); the other reductions fold every landing
    update into the data in update order, as numpy's `ufunc.at` does.
    """
    shape = x.shape
    if 0 in extents:
        return te.compute(name, shape, lambda *p: x[p])
    if reduction == "none":
        def last(*p):
            rv = [te.rvar("u", n) for n in extents]
            r = [v.var for v in rv]
            return te.reduce("max", topi.flat_index(extents, r), rv, where=hits(p, r),
                             init=idx(-1))

        found = te.compute(f"{name}_last", shape, last, INDEX)

        def pick(*p):
            k = found[p]
            r = topi.unflatten(extents, B.max_(k, idx(0)))
            return B.select(k >= idx(0), update(p, r), x[p])

        out = te.compute(name, shape, pick)
        out.extra["keep"] = found  # te finds producers through weak references
        return out
    kind = {"add": "sum", "mul": "prod", "max": "max", "min": "min"}[reduction]
    work = x.dtype
    if x.dtype is DType.bool:  # logical or / and, as numpy's bool add and multiply
        kind, work = {"sum": "max", "prod": "min"}.get(kind, kind), DType.uint8

    def fold(*p):
        rv = [te.rvar("u", n) for n in extents]
        r = [v.var for v in rv]
        v, init = update(p, r), x[p]
        if work is not x.dtype:
            v, init = B.cast(work, v), B.cast(work, init)
        return te.reduce(kind, v, rv, where=hits(p, r), init=init)

    out = te.compute(name, shape, fold, work)
    if work is x.dtype:
        return out
    res = topi.cast(f"{name}_b", out, x.dtype)
    res.extra["keep"] = out  # te finds producers through weak references
    return res


@nonempty
def _scatter_elements_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    """Output p takes the updates at u = p (with u[axis] running over indices' axis) where
    indices[u] (wrapped) == p[axis]; positions beyond indices' extent take none."""
    x, ind, upd = ins
    axis = ctx.attrs["axis"] % x.ndim

    def at(p: Sequence[Expr], r: Sequence[Expr]) -> tuple[Expr, ...]:
        return tuple(r[0] if k == axis else topi.safe_index(e, ind.shape[k])
                     for k, e in enumerate(p))

    def hits(p, r):
        inside = [p[k] < idx(ind.shape[k]) for k in range(x.ndim)
                  if k != axis and ind.shape[k] < x.shape[k]]
        return all_of([*inside, B.eq(wrap_index(ind[at(p, r)], x.shape[axis]), p[axis])])

    return [scatter_stage(ctx.op, x, ctx.attrs.get("reduction", "none"), [ind.shape[axis]],
                          hits, lambda p, r: upd[at(p, r)])]


_SE_ATTRS = {"axis": Attr("int", 0), "reduction": Attr("string", "none")}
register(OpDef("ScatterElements", _scatter_elements_infer, _scatter_elements_ref,
               attrs=_SE_ATTRS, inputs=(3, 3), compute=_scatter_elements_compute))


def _scatter_upgrade(ictx) -> None:
    ictx.op = "ScatterElements"


register(OpDef("Scatter", _scatter_elements_infer, _scatter_elements_ref,
               attrs={"axis": Attr("int", 0)}, inputs=(3, 3), upgrade=_scatter_upgrade,
               compute=_scatter_elements_compute, doc="deprecated; imported as ScatterElements"))


def _scatter_nd_infer(ctx: InferCtx) -> list[TensorType]:
    t, it, ut = req(ctx, 0, "data"), _index_input(ctx, 1), req(ctx, 2, "updates")
    _reduction(ctx)
    if ut.dtype != t.dtype:
        raise ctx.fail(f"updates dtype {ut.dtype} differs from data dtype {t.dtype}")
    if t.shape is not None and it.shape is not None:
        if not t.shape or not it.shape:
            raise ctx.fail("data and indices must have rank >= 1")
        k = it.shape[-1]
        if isinstance(k, int):
            if k > len(t.shape):
                raise ctx.fail(f"indices.shape[-1] = {k} exceeds data rank {len(t.shape)}")
            _check_same_dims(ctx, it.shape[:-1] + t.shape[k:], ut.shape,
                             "updates shape must be indices.shape[:-1] + data.shape[k:]")
    return [TensorType(t.shape, t.dtype)]


def _scatter_nd_ref(ctx: EvalCtx, inputs):
    x, idx, upd = inputs
    k = idx.shape[-1]
    rows = idx.reshape(-1, k)
    want = idx.shape[:-1] + x.shape[k:]
    if upd.shape != want:
        raise rt_fail("ScatterND", f"updates shape {list(upd.shape)} should be {list(want)}")
    index = tuple(check_indices("ScatterND", rows[:, j], x.shape[j]) for j in range(k))
    out = x.copy()
    scatter_into(out, index, upd.reshape((rows.shape[0],) + x.shape[k:]),
                 ctx.attrs["reduction"])
    return [out]


@nonempty
def _scatter_nd_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    """Row r of indices (wrapped) addresses x[ind[r, :k]]; output p takes the rows whose
    address equals p[:k], each contributing updates[r, p[k:]]."""
    x, ind, upd = ins
    k = ind.shape[-1]
    rows = list(ind.shape[:-1])

    def hits(p, r):
        return all_of([B.eq(wrap_index(ind[(*r, idx(j))], x.shape[j]), p[j]) for j in range(k)])

    return [scatter_stage("ScatterND", x, ctx.attrs["reduction"], rows, hits,
                          lambda p, r: upd[(*r, *p[k:])])]


register(OpDef("ScatterND", _scatter_nd_infer, _scatter_nd_ref,
               attrs={"reduction": Attr("string", "none")}, inputs=(3, 3),
               compute=_scatter_nd_compute))


def _tensor_scatter_infer(ctx: InferCtx) -> list[TensorType]:
    t, ut = req(ctx, 0, "past_cache"), req(ctx, 1, "update")
    wt = check_int_input(ctx, 2, "write_indices")
    if ut.dtype != t.dtype:
        raise ctx.fail(f"update dtype {ut.dtype} differs from past_cache dtype {t.dtype}")
    if ctx.attrs["mode"] not in ("linear", "circular"):
        raise ctx.fail(f"mode must be linear or circular, got {ctx.attrs['mode']!r}")
    rank = t.rank if t.rank is not None else ut.rank
    if rank is None:
        return [TensorType(t.shape, t.dtype)]
    if rank < 2:
        raise ctx.fail("past_cache must have rank >= 2")
    axis = norm_axis(ctx, ctx.attrs["axis"], rank)
    if axis == 0:
        raise ctx.fail("axis cannot be 0 (the batch axis)")
    _check_same_dims(ctx, t.shape, ut.shape, "past_cache and update", skip=axis)
    if t.shape is not None and ut.shape is not None:
        m, s = t.shape[axis], ut.shape[axis]
        if isinstance(m, int) and isinstance(s, int) and s > m:
            raise ctx.fail(f"update sequence length {s} exceeds the cache's {m}")
    if wt is not None and wt.shape is not None and t.shape is not None:
        _check_same_dims(ctx, wt.shape, t.shape[:1], "write_indices and batch size")
    return [TensorType(t.shape, t.dtype)]


def _tensor_scatter_ref(ctx: EvalCtx, inputs):
    past, upd, wi = (list(inputs) + [None])[:3]
    (axis,) = rt_axes(ctx.op, [ctx.attrs["axis"]], past.ndim)
    maxlen, seq = past.shape[axis], upd.shape[axis]
    out = past.copy()
    lead = (slice(None),) * (axis - 1)
    for b in range(past.shape[0]):
        start = 0 if wi is None else int(wi[b])
        pos = start + np.arange(seq)
        if ctx.attrs["mode"] == "circular":
            pos = pos % maxlen if maxlen else pos
        elif start < 0 or start + seq > maxlen:
            raise rt_fail("TensorScatter", f"write index {start} + {seq} updates exceed the "
                                           f"cache length {maxlen}")
        out[b][lead + (pos,)] = upd[b]
    return [out]


@nonempty
def _tensor_scatter_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    """Cache position t of batch b takes update[b, .., t - start, ..] when that lies in
    [0, seq) (modulo the cache length in circular mode), start = write_indices[b] or 0."""
    past, upd, wi = (list(ins) + [None])[:3]
    axis = ctx.attrs["axis"] % past.ndim
    maxlen, seq = past.shape[axis], upd.shape[axis]
    circular = ctx.attrs["mode"] == "circular"

    def body(*p):
        start = idx(0) if wi is None else as_index(wi[p[0]])
        j = p[axis] - start
        if circular:
            j = B.floormod(j, idx(maxlen))
        ok = j < idx(seq) if circular else B.and_(j >= idx(0), j < idx(seq))
        src = [j if a == axis else e for a, e in enumerate(p)]
        return guarded_load(upd, src, ok, past[p])

    return [te.compute("TensorScatter", past.shape, body)]


register(OpDef("TensorScatter", _tensor_scatter_infer, _tensor_scatter_ref,
               attrs={"mode": Attr("string", "linear"), "axis": Attr("int", -2)},
               inputs=(2, 3), compute=_tensor_scatter_compute))


# ---------------------------------------------------------------------------------------
# Compress, NonZero, Unique


def _compress_infer(ctx: InferCtx) -> list[TensorType]:
    t, ct = req(ctx, 0), req(ctx, 1, "condition")
    if ct.dtype != DType.bool:
        raise ctx.fail(f"condition must be bool, got {ct.dtype}")
    if ct.rank is not None and ct.rank != 1:
        raise ctx.fail(f"condition must be 1-D, got rank {ct.rank}")
    cond = ctx.const(1)
    axis = ctx.attrs.get("axis")
    if axis is None:
        n = numel(t.shape)
        count = UNKNOWN if cond is None or n is None else int(np.count_nonzero(cond[:n]))
        return [TensorType((count,), t.dtype)]
    if t.shape is None:
        return [TensorType(None, t.dtype)]
    if not t.shape:
        raise ctx.fail("input must have rank >= 1")
    axis = norm_axis(ctx, axis, len(t.shape))
    d = t.shape[axis]
    count: Dim = UNKNOWN
    if cond is not None and isinstance(d, int):
        count = int(np.count_nonzero(cond[:d]))
    out = t.shape[:axis] + (count,) + t.shape[axis + 1:]
    return [TensorType(out, t.dtype)]


def _compress_ref(ctx: EvalCtx, inputs):
    x, cond = inputs
    axis = ctx.attrs.get("axis")
    if axis is None:
        x, axis = x.reshape(-1), 0
    (axis,) = rt_axes("Compress", [axis], x.ndim)
    n = x.shape[axis]
    if cond[n:].any():
        raise rt_fail("Compress", f"condition selects index >= {n} on an axis of size {n}")
    keep = np.flatnonzero(cond[:n])
    return [np.take(x, keep, axis=axis)]


register(OpDef("Compress", _compress_infer, _compress_ref, attrs={"axis": Attr("int", None)},
               inputs=(2, 2), host=True))


def _nonzero_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    return [TensorType((UNKNOWN if t.rank is None else max(t.rank, 1), UNKNOWN), DType.int64)]


def _nonzero_ref(ctx: EvalCtx, inputs):
    x = inputs[0]
    x = x.reshape(1) if x.ndim == 0 else x
    nz = x != zero_of(x.dtype) if x.dtype.kind == "O" else x.astype(bool)
    return [np.array(np.nonzero(nz), dtype=np.int64).reshape(x.ndim, -1)]


register(OpDef("NonZero", _nonzero_infer, _nonzero_ref, host=True))


def _unique_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    if ctx.attrs["sorted"] not in (0, 1):
        raise ctx.fail(f"sorted must be 0 or 1, got {ctx.attrs['sorted']}")
    axis = ctx.attrs.get("axis")
    vec = TensorType((UNKNOWN,), DType.int64)
    if axis is None:
        y = TensorType((UNKNOWN,), t.dtype)
        n = numel(t.shape)
        inverse = TensorType((UNKNOWN if n is None else n,), DType.int64)
    elif t.shape is None:
        y, inverse = TensorType(None, t.dtype), vec
    else:
        if not t.shape:
            raise ctx.fail("input must have rank >= 1 when axis is given")
        a = norm_axis(ctx, axis, len(t.shape))
        y = TensorType(t.shape[:a] + (UNKNOWN,) + t.shape[a + 1:], t.dtype)
        inverse = TensorType((t.shape[a],), DType.int64)
    return [y, vec, inverse, vec][:ctx.num_outputs]


def _rows_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    eq = a == b
    if a.dtype.kind in "fc":
        eq |= np.isnan(a) & np.isnan(b)
    return eq.all(axis=-1)


def _unique_ref(ctx: EvalCtx, inputs):
    x = inputs[0]
    axis = ctx.attrs.get("axis")
    if axis is None:
        rows, axis_x = x.reshape(-1, 1), None
    else:
        (axis_x,) = rt_axes(ctx.op, [axis], x.ndim)
        rows = np.moveaxis(x, axis_x, 0).reshape(x.shape[axis_x], -1)
    n = rows.shape[0]
    if rows.dtype.kind == "O":
        order = np.array(sorted(range(n), key=lambda i: tuple(rows[i])), dtype=np.int64)
        keys = rows
    else:
        keys = rows if rows.dtype.kind in "biufc" else rows.astype(np.float64)
        order = np.lexsort(keys.T[::-1]) if rows.shape[1] else np.arange(n)
    srt = keys[order]
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = ~_rows_equal(srt[1:], srt[:-1])
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    first = order[starts]
    counts = np.diff(np.append(starts, n))
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = group
    if not ctx.attrs["sorted"]:
        perm = np.argsort(first, kind="stable")
        rank = np.empty_like(perm)
        rank[perm] = np.arange(len(perm))
        first, counts, inverse = first[perm], counts[perm], rank[inverse]
    first = first.astype(np.int64)
    y = x.reshape(-1)[first] if axis_x is None else np.take(x, first, axis=axis_x)
    outs = [y, first, inverse.astype(np.int64), counts.astype(np.int64)]
    return outs[:ctx.num_outputs]


register(OpDef("Unique", _unique_infer, _unique_ref,
               attrs={"axis": Attr("int", None), "sorted": Attr("int", 1)}, outputs=(1, 4),
               host=True))


# ---------------------------------------------------------------------------------------
# OneHot, Trilu, ReverseSequence


def _numeric(ctx: InferCtx, t: TensorType, what: str) -> None:
    if not (t.dtype.is_int or t.dtype.is_float):
        raise ctx.fail(f"{what} must be numeric, got {t.dtype}")


def _onehot_infer(ctx: InferCtx) -> list[TensorType]:
    it, dt, vt = req(ctx, 0, "indices"), req(ctx, 1, "depth"), req(ctx, 2, "values")
    _numeric(ctx, it, "indices")
    _numeric(ctx, dt, "depth")
    if numel(dt.shape) not in (1, None) or (dt.rank or 0) > 1:
        raise ctx.fail("depth must be a scalar or a one-element 1-D tensor")
    if vt.shape is not None and (len(vt.shape) != 1 or dim_eq(vt.shape[0], 2) is False):
        raise ctx.fail(f"values must be a 2-element 1-D tensor, got shape {list(vt.shape)}")
    dv = ctx.const(1)
    depth: Dim = UNKNOWN
    if dv is not None:
        depth = int(np.asarray(dv).reshape(-1)[0])
        if depth < 1:
            raise ctx.fail(f"depth must be positive, got {depth}")
    if it.shape is None:
        return [TensorType(None, vt.dtype)]
    axis = norm_axis(ctx, ctx.attrs["axis"], len(it.shape), inclusive=True)
    return [TensorType(it.shape[:axis] + (depth,) + it.shape[axis:], vt.dtype)]


def _onehot_ref(ctx: EvalCtx, inputs):
    idx, depth, values = inputs
    depth = int(np.asarray(depth).reshape(-1)[0])
    if depth < 1:
        raise rt_fail("OneHot", f"depth must be positive, got {depth}")
    idx = np.asarray(idx).astype(np.int64)
    idx = np.where(idx < 0, idx + depth, idx)
    hot = idx[..., None] == np.arange(depth)
    out = np.where(hot, values[1], values[0]).astype(values.dtype)
    (axis,) = rt_axes("OneHot", [ctx.attrs["axis"]], out.ndim)
    return [np.moveaxis(out, -1, axis)]


@nonempty
def _onehot_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    """out[.., j, ..] = values[index == j], index = indices[..] truncated to an integer and
    wrapped once when negative; NaN, infinite and huge float indices match nothing."""
    ind, _, values = ins
    out = ctx.out_types[0]
    axis = ctx.attrs["axis"] % len(out.shape)
    depth = out.shape[axis]

    def body(*p):
        v = ind[p[:axis] + p[axis + 1:]]
        ok = None
        if v.dtype.is_float:
            ok = B.call("abs", v) < topi.scalar(2.0**62, v.dtype)
            v = B.select(ok, v, topi.scalar(0, v.dtype))
        v = as_index(v)
        v = B.select(v < idx(0), v + idx(depth), v)
        hot = all_of([ok, B.eq(v, p[axis])])
        return B.select(hot, values[idx(1)], values[idx(0)])

    return [te.compute("OneHot", out.shape, body)]


register(OpDef("OneHot", _onehot_infer, _onehot_ref, attrs={"axis": Attr("int", -1)},
               kind=Kind.INJECTIVE, inputs=(3, 3), compute=_onehot_compute,
               shape_inputs=(1,)))


def _trilu_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    kt = ctx.input(1)
    if kt is not None:
        if kt.dtype != DType.int64:
            raise ctx.fail(f"k must be int64, got {kt.dtype}")
        if numel(kt.shape) not in (1, None):
            raise ctx.fail("k must be a scalar")
    if t.rank is not None and t.rank < 2:
        raise ctx.fail(f"input must have rank >= 2, got {t.rank}")
    return [TensorType(t.shape, t.dtype)]


def _trilu_ref(ctx: EvalCtx, inputs):
    x = inputs[0]
    k = 0 if len(inputs) < 2 or inputs[1] is None else int(np.asarray(inputs[1]).reshape(-1)[0])
    rows, cols = x.shape[-2:]
    diff = np.arange(cols)[None, :] - np.arange(rows)[:, None]
    keep = diff >= k if ctx.attrs["upper"] else diff <= k
    return [np.where(keep, x, zero_of(x.dtype)).astype(x.dtype)]


@nonempty
def _trilu_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    x = ins[0]
    kv = ctx.value(1)
    k = 0 if kv is None else int(np.asarray(kv).reshape(-1)[0])
    # |k| beyond the matrix keeps all or nothing; clamping keeps the constant in int64
    k = max(min(k, x.shape[-1] + 1), -x.shape[-2] - 1)

    def body(*i):
        diff = i[-1] - i[-2]
        keep = diff >= idx(k) if ctx.attrs["upper"] else diff <= idx(k)
        return B.select(keep, x[i], topi.scalar(0, x.dtype))

    return [te.compute("Trilu", x.shape, body)]


register(OpDef("Trilu", _trilu_infer, _trilu_ref, attrs={"upper": Attr("int", 1)},
               kind=Kind.INJECTIVE, inputs=(1, 2), compute=_trilu_compute,
               shape_inputs=(1,)))


def _revseq_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    lt = check_int_input(ctx, 1, "sequence_lens")
    b, tm = ctx.attrs["batch_axis"], ctx.attrs["time_axis"]
    if {b, tm} != {0, 1}:
        raise ctx.fail(f"batch_axis ({b}) and time_axis ({tm}) must be 0 and 1 in some order")
    if t.rank is not None and t.rank < 2:
        raise ctx.fail(f"input must have rank >= 2, got {t.rank}")
    if t.shape is not None and lt is not None and lt.shape is not None:
        _check_same_dims(ctx, lt.shape, t.shape[b:b + 1], "sequence_lens and batch size")
    lens = const_ints(ctx, 1)
    if lens is not None and t.shape is not None and isinstance(t.shape[tm], int):
        if any(not 0 <= v <= t.shape[tm] for v in lens):
            raise ctx.fail(f"sequence_lens {list(lens)} outside [0, {t.shape[tm]}]")
    return [TensorType(t.shape, t.dtype)]


def _revseq_ref(ctx: EvalCtx, inputs):
    x, lens = inputs[0], as_ints(inputs[1])
    b, tm = ctx.attrs["batch_axis"], ctx.attrs["time_axis"]
    xb = np.moveaxis(x, (b, tm), (0, 1))
    out = xb.copy()
    if len(lens) != xb.shape[0]:
        raise rt_fail("ReverseSequence", f"{len(lens)} sequence_lens for a batch of "
                                         f"{xb.shape[0]}")
    for i, n in enumerate(lens):
        if not 0 <= n <= xb.shape[1]:
            raise rt_fail("ReverseSequence", f"sequence length {n} outside [0, {xb.shape[1]}]")
        out[i, :n] = xb[i, :n][::-1]
    return [np.ascontiguousarray(np.moveaxis(out, (0, 1), (b, tm)))]


@nonempty
def _revseq_compute(ctx: LowerCtx, ins: list[Tensor | None]) -> list[Tensor]:
    """Time step t of batch b reads step n - 1 - t when t < n = sequence_lens[b]."""
    x, lens = ins
    b, tm = ctx.attrs["batch_axis"], ctx.attrs["time_axis"]

    def body(*i):
        n = as_index(lens[i[b]])
        t = i[tm]
        src = list(i)
        src[tm] = topi.safe_index(B.select(t < n, n - idx(1) - t, t), x.shape[tm])
        return x[tuple(src)]

    return [te.compute("ReverseSequence", x.shape, body)]


register(OpDef("ReverseSequence", _revseq_infer, _revseq_ref,
               attrs={"batch_axis": Attr("int", 1), "time_axis": Attr("int", 0)},
               kind=Kind.INJECTIVE, inputs=(2, 2), compute=_revseq_compute))
