"""Reusable tensor-expression building blocks for ops' compute definitions.

Shapes here are concrete tuples of ints; index expressions are int64 loop-IR expressions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from compiler.dtypes import DType
from compiler.loop import build as B
from compiler.loop.ir import BufferLoad, Cast, Expr, FloatImm, IntImm, Let, Var
from compiler.loop.traverse import substitute, walk
from compiler.lower import te
from compiler.lower.te import INDEX, Tensor, compute, idx, reduce, rvar

# ---------------------------------------------------------------------------------------
# index helpers


def broadcast_index(t: Tensor, out_shape: Sequence[int], axes: Sequence[Expr]) -> tuple:
    """Indices into `t` for the element at `axes` of a numpy-broadcast result."""
    off = len(out_shape) - t.ndim
    return tuple(idx(0) if t.shape[k] == 1 and out_shape[off + k] != 1 else axes[off + k]
                 for k in range(t.ndim))


def flat_index(shape: Sequence[int], axes: Sequence[Expr]) -> Expr:
    """Row-major flat offset of `axes` in `shape`."""
    if not shape:
        return idx(0)
    e: Expr = axes[0]
    for k in range(1, len(shape)):
        e = e * idx(shape[k]) + axes[k]
    return e


def unflatten(shape: Sequence[int], flat: Expr) -> tuple[Expr, ...]:
    """Row-major multi-index of `flat` in `shape`."""
    out: list[Expr] = []
    stride = 1
    strides = []
    for d in reversed(shape):
        strides.append(stride)
        stride *= d
    strides.reverse()
    for k, d in enumerate(shape):
        e = B.floordiv(flat, idx(strides[k])) if strides[k] != 1 else flat
        if k > 0:
            e = B.floormod(e, idx(d))
        out.append(e)
    return tuple(out)


def load_bcast(t: Tensor, out_shape: Sequence[int], axes: Sequence[Expr]) -> Expr:
    return t[broadcast_index(t, out_shape, axes)]


# ---------------------------------------------------------------------------------------
# elementwise


def elementwise(name: str, inputs: Sequence[Tensor], out_shape: Sequence[int],
                fn: Callable[..., Expr], dtype: DType | None = None) -> Tensor:
    """out[i] = fn(in0[bcast(i)], in1[bcast(i)], ...)."""
    return compute(name, out_shape,
                   lambda *i: fn(*(load_bcast(t, out_shape, i) for t in inputs)), dtype)


def cast(name: str, t: Tensor, dtype: DType) -> Tensor:
    return compute(name, t.shape, lambda *i: B.cast(dtype, t[i]), dtype)


def scalar(value: float | int | bool, dtype: DType) -> Expr:
    from compiler.loop.ir import const, is_storage

    if is_storage(dtype):  # no literals of storage-only dtypes: a cast of a wider one
        return B.cast(dtype, scalar(value, DType.float32 if dtype.is_float else DType.int32))
    if dtype.is_float:
        return const(float(value), dtype)
    return const(int(value) if dtype is not DType.bool else bool(value), dtype)


# ---------------------------------------------------------------------------------------
# layout


def reshape(name: str, t: Tensor, shape: Sequence[int]) -> Tensor:
    if tuple(shape) == t.shape:
        return t
    return compute(name, shape, lambda *i: t[unflatten(t.shape, flat_index(shape, i))])


def transpose(name: str, t: Tensor, perm: Sequence[int]) -> Tensor:
    shape = [t.shape[p] for p in perm]

    def body(*i):
        src: list[Expr] = [idx(0)] * t.ndim
        for k, p in enumerate(perm):
            src[p] = i[k]
        return t[tuple(src)]

    return compute(name, shape, body)


def concat(name: str, ts: Sequence[Tensor], axis: int) -> Tensor:
    shape = list(ts[0].shape)
    shape[axis] = sum(t.shape[axis] for t in ts)

    def body(*i):
        offs = []
        o = 0
        for t in ts:
            offs.append(o)
            o += t.shape[axis]
        e: Expr | None = None
        for t, off in zip(ts, offs, strict=True):
            if t.shape[axis] == 0:
                continue
            src = tuple(i[k] - idx(off) if k == axis else i[k] for k in range(len(i)))
            # clamp the index so the unselected arm never reads out of bounds
            src = tuple(B.max_(B.min_(s, idx(t.shape[axis] - 1)), idx(0)) if k == axis else s
                        for k, s in enumerate(src))
            v = t[src]
            e = v if e is None else B.select(i[axis] >= idx(off), v, e)
        return e

    return compute(name, shape, body)


# ---------------------------------------------------------------------------------------
# reductions


def reduce_axes(name: str, t: Tensor, axes: Sequence[int], keepdims: bool, kind: str,
                value: Callable[[Expr], Expr] | None = None, dtype: DType | None = None,
                init: Expr | None = None) -> Tensor:
    """Reduce `t` over `axes` with `kind` (sum/prod/max/min) of `value(t[...])`."""
    axes = sorted(a % t.ndim for a in axes) if t.ndim else []
    out_shape = [1 if k in axes else d for k, d in enumerate(t.shape)] if keepdims else \
        [d for k, d in enumerate(t.shape) if k not in axes]
    value = value or (lambda x: x)

    def body(*i):
        rv = {a: rvar(f"r{a}", t.shape[a]) for a in axes}
        src: list[Expr] = []
        j = 0
        for k in range(t.ndim):
            if k in rv:
                src.append(rv[k].var)
                if keepdims:
                    j += 1
            else:
                src.append(i[j])
                j += 1
        v = value(t[tuple(src)])
        if dtype is not None and v.dtype != dtype:
            v = B.cast(dtype, v)
        return reduce(kind, v, [rv[a] for a in axes], init=init)

    return compute(name, out_shape, body, dtype)


# ---------------------------------------------------------------------------------------
# linear algebra and windows


def matmul(name: str, a: Tensor, b: Tensor, out_shape: Sequence[int],
           acc: DType | None = None) -> Tensor:
    """numpy.matmul semantics; 1-D operands are promoted and the result squeezed by shape."""
    a2 = a if a.ndim >= 2 else reshape(f"{name}_a", a, (1, a.shape[0]))
    b2 = b if b.ndim >= 2 else reshape(f"{name}_b", b, (b.shape[0], 1))
    kdim = a2.shape[-1]
    batch = list(out_shape[:-2]) if a.ndim >= 2 and b.ndim >= 2 else list(
        out_shape[:-1] if a.ndim >= 2 else out_shape[:-1] if b.ndim >= 2 else [])
    full = batch + [a2.shape[-2], b2.shape[-1]]
    acc = acc or a.dtype

    def body(*i):
        r = rvar("k", kdim)
        ai = broadcast_index(a2, full[:-2] + [a2.shape[-2], kdim],
                             list(i[:-2]) + [i[-2], r.var])
        bi = broadcast_index(b2, full[:-2] + [kdim, b2.shape[-1]],
                             list(i[:-2]) + [r.var, i[-1]])
        x, y = a2[ai], b2[bi]
        if x.dtype != acc:
            x, y = B.cast(acc, x), B.cast(acc, y)
        return reduce("sum", x * y, [r])

    res = compute(name, full, body, acc)
    return reshape(f"{name}_r", res, out_shape)


def window_index(i: Expr, r: Expr, stride: int, dilation: int, pad: int) -> Expr:
    e = i * idx(stride) if stride != 1 else i
    rr = r * idx(dilation) if dilation != 1 else r
    e = e + rr
    return e - idx(pad) if pad else e


def in_bounds(exprs: Sequence[Expr], extents: Sequence[int]) -> Expr | None:
    conds: list[Expr] = []
    for e, n in zip(exprs, extents, strict=True):
        conds.append(e >= idx(0))
        conds.append(e < idx(n))
    out: Expr | None = None
    for c in conds:
        out = c if out is None else B.and_(out, c)
    return out


def safe_index(e: Expr, n: int) -> Expr:
    """Clamp into [0, n) so a masked-off load stays in bounds."""
    return B.max_(B.min_(e, idx(n - 1)), idx(0))


__all__ = [
    "INDEX", "Tensor", "Var", "broadcast_index", "cast", "compute", "concat", "elementwise",
    "flat_index", "in_bounds", "load_bcast", "matmul", "reduce", "reduce_axes", "reshape",
    "rvar", "safe_index", "scalar", "te", "transpose", "unflatten", "window_index",
]


def conv(name: str, x: Tensor, w: Tensor, bias: Tensor | None, out_shape: Sequence[int],
         strides: Sequence[int], dilations: Sequence[int], pads_begin: Sequence[int],
         group: int, acc: DType | None = None, dtype: DType | None = None,
         x_value: Callable[[Expr, Expr, Expr], Expr] | None = None,
         w_value: Callable[[Expr, Expr], Expr] | None = None) -> Tensor:
    """N-D grouped convolution of x (N, C, *s) with w (M, C/group, *k), NC[spatial] layout.

    Padding is a reduction predicate (padded taps contribute nothing), never a copy; only the
    bounds a window can actually cross are tested. Products accumulate in `acc` (x's dtype
    by default); the bias, cast to `acc`, is added after the sum and the result is cast to
    `dtype` (`acc` by default). `x_value(v, n, c)` and `w_value(v, m)` map a loaded element
    to `acc` (default: a cast), e.g. to subtract zero points.
    """
    k = len(out_shape) - 2
    kernel = w.shape[2:]
    cin_g = w.shape[1]
    m_per_g = out_shape[1] // group
    acc = acc or x.dtype
    dtype = dtype or acc
    xval = x_value or (lambda v, n, c: to_dtype(acc, v))
    wval = w_value or (lambda v, m: to_dtype(acc, v))

    def body(*i):
        n, m, sp = i[0], i[1], i[2:]
        rc = rvar("rc", cin_g)
        rs = [rvar(f"rk{j}", kernel[j]) for j in range(k)]
        pos = window_positions(sp, [r.var for r in rs], strides, dilations, pads_begin)
        c = rc.var if group == 1 else B.floordiv(m, idx(m_per_g)) * idx(cin_g) + rc.var
        cond = window_guard(pos, x.shape[2:], out_shape[2:], kernel, strides, dilations,
                            pads_begin)
        prod = xval(x[(n, c, *pos)], n, c) * wval(w[(m, rc.var, *(r.var for r in rs))], m)
        return reduce("sum", prod, [rc, *rs], where=cond)

    out = stage(name, out_shape, body, acc)
    if bias is None and dtype == acc:
        return out

    def finish(*i):
        v = out[i]
        if bias is not None:
            v = v + to_dtype(acc, bias[(i[1],)])
        return to_dtype(dtype, v)

    return stage(f"{name}_out", out_shape, finish, dtype)


def to_dtype(dtype: DType, e: Expr) -> Expr:
    """`e` cast to `dtype`, or `e` itself when it already has it."""
    return e if e.dtype == dtype else B.cast(dtype, e)


def window_positions(sp: Sequence[Expr], taps: Sequence[Expr], strides: Sequence[int],
                     dilations: Sequence[int], pads_begin: Sequence[int]) -> list[Expr]:
    """Input coordinates `o * stride + k * dilation - pad_begin` of window taps."""
    return [window_index(o, r, s, d, p)
            for o, r, s, d, p in zip(sp, taps, strides, dilations, pads_begin, strict=True)]


def window_guard(pos: Sequence[Expr], extents: Sequence[int], out: Sequence[int],
                 kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int],
                 pads_begin: Sequence[int]) -> Expr | None:
    """`0 <= pos < extent` for the bounds some window of the `out` grid can cross (None when
    every tap of every window is inside)."""
    conds: list[Expr] = []
    for j, p in enumerate(pos):
        if pads_begin[j] > 0:
            conds.append(p >= idx(0))
        last = (out[j] - 1) * strides[j] + (kernel[j] - 1) * dilations[j] - pads_begin[j]
        if last >= extents[j]:
            conds.append(p < idx(extents[j]))
    out_cond: Expr | None = None
    for c in conds:
        out_cond = c if out_cond is None else B.and_(out_cond, c)
    return out_cond


def window_count(o: Expr, kernel: int, stride: int, dilation: int, pad_begin: int, lo: int,
                 hi: int) -> Expr:
    """How many taps k in [0, kernel) of the window at output `o` have `lo <= o * stride +
    k * dilation - pad_begin < hi` (closed form, no loop)."""
    base = o * idx(stride) if stride != 1 else o
    base = base - idx(pad_begin) if pad_begin else base

    def fdiv(e: Expr) -> Expr:
        return e if dilation == 1 else B.floordiv(e, idx(dilation))

    kmin = B.max_(idx(0), idx(0) - fdiv(base - idx(lo)))  # ceil((lo - base) / dilation)
    kmax = B.min_(idx(kernel - 1), fdiv(idx(hi - 1) - base))
    return B.max_(idx(0), kmax - kmin + idx(1))


def pool(name: str, x: Tensor, out_shape: Sequence[int], kernel: Sequence[int],
         strides: Sequence[int], dilations: Sequence[int], pads_begin: Sequence[int],
         kind: str, count_include_pad: bool = False, pads_end: Sequence[int] | None = None,
         acc: DType | None = None, dtype: DType | None = None,
         value: Callable[[Expr], Expr] | None = None) -> Tensor:
    """Pooling over the trailing spatial dims of an NC[spatial] tensor: `kind` is "max",
    "sum" or "avg" of `value(x)` (x cast to `acc`, x's dtype by default) over the taps inside
    the input, the result cast to `dtype` (`acc` by default). The average divides by the
    number of taps inside the input, or with `count_include_pad` inside the input and its
    explicit pads (`pads_end`, `pads_begin` when not given), never the extra room ceil_mode
    adds."""
    k = len(kernel)
    spatial = x.shape[2:]
    acc = acc or x.dtype
    dtype = dtype or acc

    def total(*i):
        rs = [rvar(f"rk{j}", kernel[j]) for j in range(k)]
        pos = window_positions(i[2:], [r.var for r in rs], strides, dilations, pads_begin)
        v = to_dtype(acc, x[(i[0], i[1], *pos)])
        if value is not None:
            v = value(v)
        cond = window_guard(pos, spatial, out_shape[2:], kernel, strides, dilations,
                            pads_begin)
        return reduce("max" if kind == "max" else "sum", v, rs, where=cond)

    red = stage(name, out_shape, total, acc)
    if kind != "avg":
        return red if dtype == acc else stage(f"{name}_out", out_shape,
                                              lambda *i: B.cast(dtype, red[i]), dtype)
    ends = pads_end if pads_end is not None else pads_begin

    def avg(*i):
        cnt: Expr | None = None
        for j in range(k):
            lo, hi = (-pads_begin[j], spatial[j] + ends[j]) if count_include_pad else \
                (0, spatial[j])
            c = window_count(i[2 + j], kernel[j], strides[j], dilations[j], pads_begin[j],
                             lo, hi)
            cnt = c if cnt is None else cnt * c
        n = B.cast(acc, cnt) if cnt is not None else scalar(1, acc)
        return to_dtype(dtype, red[i] / n)

    return stage(f"{name}_avg", out_shape, avg, dtype)


# ---------------------------------------------------------------------------------------
# shared subexpressions


def let(value: Expr, body: Callable[[Expr], Expr], name: str = "v") -> Expr:
    """`body(value)`, evaluating `value` once: when the body uses it more than once and it
    is more than a load, literal or variable (or a cast of one), it is bound to a fresh
    variable by a loop-IR `Let`."""
    if _cheap(value):
        return body(value)
    v = Var(te._unique(name), value.dtype, value.lanes)
    out = body(v)
    uses = sum(1 for n in walk(out, binders=False) if isinstance(n, Var) and n.name == v.name)
    if uses <= 1:
        return substitute(out, {v: value}) if uses else out
    return Let(v, value, out)


def _cheap(e: Expr) -> bool:
    if isinstance(e, Cast):
        e = e.value
    return isinstance(e, (Var, IntImm, FloatImm, BufferLoad))


# ---------------------------------------------------------------------------------------
# stages


def stage(name: str, shape: Sequence[int], fn: Callable[..., Expr | te.Reduction],
          dtype: DType | None = None, inline: bool = True) -> Tensor:
    """`te.compute` (which now records the stages a body reads in `Tensor.deps`, keeping
    them alive for lowering); kept for the computes that call it."""
    return compute(name, shape, fn, dtype, inline)
