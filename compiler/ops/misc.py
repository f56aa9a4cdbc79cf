"""Det, Einsum, and the ai.onnx.ml ops Binarizer and ArrayFeatureExtractor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
from compiler.ops.base import (
    Attr,
    EvalCtx,
    InferCtx,
    Kind,
    OpDef,
    broadcast_shapes,
    check_dtype,
    dim_eq,
    register,
)
from compiler.ops.common import ALL_NUMERIC, FLOATS, compute_dtype, const, need, to, work_dtype

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

D = DType
ML = "ai.onnx.ml"
ELLIPSIS = "..."

# ---------------------------------------------------------------------------------------
# Det


def _det_infer(ctx: InferCtx) -> list[TensorType]:
    x = need(ctx, 0, "X")
    check_dtype(ctx, x, FLOATS)
    if x.shape is None:
        return [TensorType(None, x.dtype)]
    if len(x.shape) < 2 or dim_eq(x.shape[-1], x.shape[-2]) is False:
        raise ctx.fail(f"input must be a (batch of) square matrices [*, M, M], got {x}")
    return [TensorType(x.shape[:-2], x.dtype)]


def _det_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0]
    return [np.asarray(np.linalg.det(x.astype(np.float64))).astype(x.dtype)]


def _det_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """LU factorisation with partial pivoting in float64, as LAPACK's getrf (which numpy
    calls): step k picks the first row r >= k of largest |a[r, k]|, swaps it into row k and
    eliminates below; the determinant is the product of the pivots, negated per swap. Each
    step is three stages (pivot magnitude, pivot row, the updated matrix)."""
    x = ins[0]
    n = x.shape[-1]
    batch = x.shape[:-2]
    f64 = D.float64
    a = te.compute("det_a0", x.shape, lambda *i: to(f64, x[i]), f64)
    factors: list[tuple[te.Tensor, te.Tensor, int]] = []
    for k in range(n):
        a = _lu_step(a, k, n, batch, factors)

    def body(*b: Expr) -> Expr:
        det: Expr = const(1.0, f64)
        for m, p, k in factors:
            piv = m[(*b, p[b], te.idx(k))]
            det = det * B.select(B.eq(p[b], te.idx(k)), piv, -piv)
        return to(x.dtype, det)

    return [te.compute("Det", batch, body, x.dtype)]


def _lu_step(a: te.Tensor, k: int, n: int, batch: tuple[int, ...],
             factors: list[tuple[te.Tensor, te.Tensor, int]]) -> te.Tensor:
    """One elimination step on `a`; records (a, pivot row, k) in `factors`."""
    def col(b: tuple[Expr, ...], r: Expr) -> Expr:
        return B.call("abs", a[(*b, r, te.idx(k))])

    def mag(*b: Expr) -> te.Reduction:
        r = te.rvar("r", n - k)
        return te.reduce("max", col(b, r.var + te.idx(k)), [r])

    big = te.compute(f"det_mag{k}", batch, mag, D.float64)

    def row(*b: Expr) -> te.Reduction:
        r = te.rvar("r", n - k)
        pos = r.var + te.idx(k)
        # no hit only when the column holds a NaN: any row then gives a NaN determinant
        return te.reduce("min", pos, [r], where=B.eq(col(b, pos), big[b]),
                         init=te.idx(n - 1))

    piv_row = te.compute(f"det_piv{k}", batch, row, D.int64)
    factors.append((a, piv_row, k))
    if k == n - 1:
        return a

    def update(*i: Expr) -> Expr:
        b, r, j = i[:-2], i[-2], i[-1]
        p = piv_row[b]
        kk = te.idx(k)
        src = B.select(B.eq(r, kk), p, B.select(B.eq(r, p), kk, r))  # rows k and p swapped
        v = a[(*b, src, j)]
        piv = a[(*b, p, kk)]
        zero = const(0.0, D.float64)
        factor = B.select(B.eq(piv, zero), zero, a[(*b, src, kk)] / piv)
        return B.select(r > kk, v - factor * a[(*b, p, j)], v)

    return te.compute(f"det_a{k + 1}", a.shape, update, D.float64, inline=False)


register(OpDef(
    name="Det", infer=_det_infer, ref=_det_ref, kind=Kind.OPAQUE, compute=_det_compute,
    doc="determinant of each square matrix in the last two axes",
))

# ---------------------------------------------------------------------------------------
# Einsum


@dataclass(frozen=True)
class Einsum:
    """A parsed equation: one tuple of labels per input term and one for the output.

    A label is one letter; "..." stands for the broadcast (ellipsis) dimensions.
    """

    inputs: tuple[tuple[str, ...], ...]
    output: tuple[str, ...]

    def __str__(self) -> str:
        return ",".join("".join(t) for t in self.inputs) + "->" + "".join(self.output)


class EinsumError(ValueError):
    pass


def _term(text: str, where: str) -> tuple[str, ...]:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == " ":
            i += 1
        elif ch == ".":
            if text[i:i + 3] != ELLIPSIS:
                raise EinsumError(f"a '.' in the {where} is not part of an ellipsis '...'")
            if ELLIPSIS in out:
                raise EinsumError(f"the {where} has more than one ellipsis")
            out.append(ELLIPSIS)
            i += 3
        elif ch.isascii() and ch.isalpha():
            out.append(ch)
            i += 1
        else:
            raise EinsumError(f"unexpected character {ch!r} in the {where}")
    return tuple(out)


def parse_einsum(equation: str) -> Einsum:
    """Parse `term1,term2,...[->output]`; the implicit output is the ellipsis followed by
    the labels that occur exactly once, in ASCII order."""
    lhs, arrow, rhs = equation.partition("->")
    if "->" in rhs:
        raise EinsumError("more than one '->'")
    terms = tuple(_term(t, f"term {k}") for k, t in enumerate(lhs.split(",")))
    labels = [c for t in terms for c in t if c != ELLIPSIS]
    has_ellipsis = any(ELLIPSIS in t for t in terms)
    if arrow:
        out = _term(rhs, "output")
        for c in out:
            if c != ELLIPSIS and c not in labels:
                raise EinsumError(f"output label {c!r} does not occur in any input term")
            if out.count(c) > 1:
                raise EinsumError(f"output label {c!r} occurs more than once")
        if ELLIPSIS in out and not has_ellipsis:
            raise EinsumError("the output has an ellipsis but no input term does")
    else:
        once = sorted(c for c in set(labels) if labels.count(c) == 1)
        out = ((ELLIPSIS,) if has_ellipsis else ()) + tuple(once)
    return Einsum(terms, out)


def _merge_label(a: Dim, b: Dim) -> Dim | None:
    """Two occurrences of a label in different inputs: equal or broadcast 1; None: clash."""
    if a == 1:
        return b
    if b == 1:
        return a
    eq = dim_eq(a, b)
    if eq is False:
        return None
    return a if eq else (a if isinstance(a, int) else b if isinstance(b, int) else UNKNOWN)


def _einsum_infer(ctx: InferCtx) -> list[TensorType]:
    if not ctx.inputs or any(t is None for t in ctx.inputs):
        raise ctx.fail("every input is required")
    dt = ctx.inputs[0].dtype
    for t in ctx.inputs:
        check_dtype(ctx, t, ALL_NUMERIC)
        if t.dtype != dt:
            raise ctx.fail(f"inputs mix dtypes {dt} and {t.dtype}")
    try:
        eq = parse_einsum(ctx.attrs["equation"])
    except EinsumError as e:
        raise ctx.fail(f"bad equation {ctx.attrs['equation']!r}: {e}") from None
    if len(eq.inputs) != len(ctx.inputs):
        raise ctx.fail(f"equation has {len(eq.inputs)} terms for {len(ctx.inputs)} inputs")
    dims: dict[str, Dim] = {}
    unknown: set[str] = set()  # labels of inputs of unknown rank (could broadcast a 1)
    ell: list[tuple[Dim, ...] | None] = []
    for k, (term, t) in enumerate(zip(eq.inputs, ctx.inputs, strict=True)):
        n = len(term) - (ELLIPSIS in term)
        if t.shape is None:
            ell.append(None)
            unknown.update(term)
            continue
        if len(t.shape) < n or (ELLIPSIS not in term and len(t.shape) != n):
            raise ctx.fail(f"term {''.join(term)!r} does not fit input {k} {t}")
        e = term.index(ELLIPSIS) if ELLIPSIS in term else len(term)
        r = len(t.shape) - n
        if ELLIPSIS in term:
            ell.append(t.shape[e:e + r])
        own: dict[str, Dim] = {}
        for c, d in zip(term[:e] + term[e + 1:], t.shape[:e] + t.shape[e + r:], strict=True):
            if c in own and dim_eq(own[c], d) is False:
                raise ctx.fail(f"label {c!r} has sizes {own[c]} and {d} in input {k} {t}")
            own.setdefault(c, d)
        for c, d in own.items():
            m = _merge_label(dims[c], d) if c in dims else d
            if m is None:
                raise ctx.fail(f"label {c!r} has sizes {dims[c]} and {d} across the inputs")
            dims[c] = m
    ranks = {len(s) for s in ell if s is not None}
    if len(ranks) > 1:
        raise ctx.fail(f"the ellipses stand for different numbers of dimensions {sorted(ranks)}")
    if ELLIPSIS not in eq.output and ranks and ranks != {0}:
        raise ctx.fail("the inputs have an ellipsis but the output does not")
    shape: list[Dim] = []
    for c in eq.output:
        if c != ELLIPSIS:
            d = dims.get(c, UNKNOWN)
            shape.append(UNKNOWN if d == 1 and c in unknown else d)
        elif any(s is None for s in ell):
            return [TensorType(None, dt)]
        else:
            shape.extend(broadcast_shapes(ctx, *ell) or ())
    return [TensorType(tuple(shape), dt)]


def _einsum_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    eq = parse_einsum(ctx.attrs["equation"])
    dt = inputs[0].dtype
    cd = compute_dtype(dt)
    try:
        r = np.einsum(str(eq), *(x.astype(cd, copy=False) for x in inputs))
    except ValueError as e:
        raise ExecutionError(f"Einsum {ctx.attrs['equation']!r}: {e}") from None
    return [np.asarray(r).astype(dt)]


def _einsum_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """One reduction: the output labels index the output, the other labels are reduction
    variables, and the body is the product of the inputs (in the compute dtype). A label of
    extent 1 in an input broadcasts against the others."""
    eq = parse_einsum(ctx.attrs["equation"])
    out = ctx.out_types[0]
    cd = work_dtype(out.dtype)
    terms = []
    ell = max((t.ndim - len(term) + 1 for term, t in zip(eq.inputs, ins, strict=True)
               if ELLIPSIS in term), default=0)
    for term, t in zip(eq.inputs, ins, strict=True):
        labels: list[str] = []
        for c in term:
            if c == ELLIPSIS:
                r = t.ndim - len(term) + 1
                labels.extend(f"...{ell - r + j}" for j in range(r))
            else:
                labels.append(c)
        terms.append(labels)
    sizes: dict[str, int] = {}
    for labels, t in zip(terms, ins, strict=True):
        for c, d in zip(labels, t.shape, strict=True):
            sizes[c] = d if sizes.get(c, 1) == 1 else sizes[c]
    out_labels: list[str] = []
    for c in eq.output:
        out_labels.extend(f"...{j}" for j in range(ell)) if c == ELLIPSIS else \
            out_labels.append(c)
    summed = [c for c in dict.fromkeys(c for labels in terms for c in labels)
              if c not in out_labels]

    def body(*i: Expr) -> Expr | te.Reduction:
        env: dict[str, Expr] = dict(zip(out_labels, i, strict=True))
        rvars = [te.rvar(f"e{c}" if c.isalpha() else "ell", sizes[c]) for c in summed]
        env.update((c, r.var) for c, r in zip(summed, rvars, strict=True))
        prod: Expr | None = None
        for labels, t in zip(terms, ins, strict=True):
            index = tuple(te.idx(0) if d == 1 else env[c]
                          for c, d in zip(labels, t.shape, strict=True))
            v = to(cd, t[index])
            prod = v if prod is None else prod * v
        return te.reduce("sum", prod, rvars) if rvars else prod

    res = te.compute("einsum", out.shape, body, cd)
    if cd == out.dtype:
        return [res]
    return [te.compute("Einsum", out.shape, lambda *i: to(out.dtype, res[i]), out.dtype)]


register(OpDef(
    name="Einsum", infer=_einsum_infer, ref=_einsum_ref, kind=Kind.OPAQUE, inputs=(1, None),
    compute=_einsum_compute,
    attrs={"equation": Attr("string")},
    doc="Einstein summation over the inputs, as given by `equation`",
))

# ---------------------------------------------------------------------------------------
# ai.onnx.ml: Binarizer, ArrayFeatureExtractor

_ML_NUMERIC = (DType.float32, DType.float64, DType.int64, DType.int32)


def _binarizer_infer(ctx: InferCtx) -> list[TensorType]:
    x = need(ctx, 0, "X")
    check_dtype(ctx, x, _ML_NUMERIC)
    return [TensorType(x.shape, x.dtype)]


def _binarizer_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0]
    return [(x.astype(np.float64) > ctx.attrs["threshold"]).astype(x.dtype)]


def _binarizer_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x = ins[0]
    thr = const(ctx.attrs["threshold"], D.float64)
    one, zero = const(1, x.dtype), const(0, x.dtype)
    return [te.compute("Binarizer", x.shape, lambda *i: B.select(
        to(D.float64, x[i]) > thr, one, zero), x.dtype)]


register(OpDef(
    name="Binarizer", domain=ML, infer=_binarizer_infer, ref=_binarizer_ref,
    kind=Kind.ELEMWISE, compute=_binarizer_compute, attrs={"threshold": Attr("float", 0.0)},
    doc="1 where X > threshold, else 0, in X's dtype",
))


def _afe_infer(ctx: InferCtx) -> list[TensorType]:
    x = need(ctx, 0, "X")
    y = need(ctx, 1, "Y")
    check_dtype(ctx, x, _ML_NUMERIC + (DType.string,))
    check_dtype(ctx, y, (DType.int64,), "Y")
    n: Dim = UNKNOWN
    if y.shape is not None and all(isinstance(d, int) for d in y.shape):
        n = int(np.prod(y.shape, dtype=np.int64))
    if x.shape is None:
        return [TensorType(None, x.dtype)]
    if len(x.shape) == 0:
        raise ctx.fail("X must have rank >= 1")
    lead = (1,) if len(x.shape) == 1 else x.shape[:-1]
    return [TensorType(lead + (n,), x.dtype)]


def _afe_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, y = inputs
    idx = y.reshape(-1).astype(np.int64)
    last = x.shape[-1]
    if idx.size and (idx.min() < 0 or idx.max() >= last):
        raise ExecutionError(f"ArrayFeatureExtractor: index out of range for last axis {last}")
    lead = (1,) if x.ndim == 1 else x.shape[:-1]
    return [np.take(x, idx, axis=-1).reshape(lead + (idx.size,))]


def _afe_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """out[..., j] = x[..., y.flat[j]]; an index out of range reads a clamped one (the
    reference raises), never out of bounds."""
    x, y = ins
    out = ctx.out_types[0]
    last = x.shape[-1]

    def body(*i: Expr) -> Expr:
        j = topi.safe_index(y[topi.unflatten(y.shape, i[-1])], last)
        return x[(*i[:-1], j)] if x.ndim > 1 else x[(j,)]

    return [te.compute("ArrayFeatureExtractor", out.shape, body, x.dtype)]


register(OpDef(
    name="ArrayFeatureExtractor", domain=ML, infer=_afe_infer, ref=_afe_ref,
    kind=Kind.INJECTIVE, inputs=(2, 2), compute=_afe_compute,
    doc="select elements of the last axis of X at the int64 indices Y",
))
