"""Matrix products: MatMul, MatMulInteger, Gemm.

MatMul follows numpy.matmul: a 1-D A is a row vector and a 1-D B a column vector (the added
axis is dropped again), and the batch axes broadcast. Float16/bfloat16 products accumulate in
float32 and are rounded once; float32 accumulates in float32; integer MatMul wraps like the
native integer type. MatMulInteger runs in float64, which is exact for 8-bit operands.

Computes contract in numpy.matmul's 2-D-promoted shape (1-D operands gain an axis, dropped
again by the output stage) in the same working precision; integer products with zero points
accumulate in int32, whose wrapping sums equal the exact sums wrapped to int32.
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
from compiler.ops.window import INT8S, elem0, need, work_dtype, work_type

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

D = DType
MATMUL_TYPES = (D.float16, D.float32, D.float64, D.bfloat16, D.int32, D.int64, D.uint32,
                D.uint64)


def matmul_shape(ctx: InferCtx, a: tuple[Dim, ...] | None,
                 b: tuple[Dim, ...] | None) -> tuple[Dim, ...] | None:
    """numpy.matmul's result shape, with a clean error for mismatched operands."""
    if a is not None and len(a) == 0 or b is not None and len(b) == 0:
        raise ctx.fail("MatMul operands must have rank >= 1, got a scalar")
    if a is None or b is None:
        return None
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if dim_eq(a2[-1], b2[-2]) is False:
        raise ctx.fail(f"inner dimensions differ: A {list(a)} and B {list(b)}")
    batch = broadcast_shapes(ctx, a2[:-2], b2[:-2])
    assert batch is not None
    rows = () if len(a) == 1 else (a2[-2],)
    cols = () if len(b) == 1 else (b2[-1],)
    return batch + rows + cols


def matmul_infer(ctx: InferCtx) -> list[TensorType]:
    a, b = need(ctx, 0, "A"), need(ctx, 1, "B")
    check_dtype(ctx, a, MATMUL_TYPES, "A")
    if b.dtype != a.dtype:
        raise ctx.fail(f"B dtype {b.dtype} != A dtype {a.dtype}")
    return [TensorType(matmul_shape(ctx, a.shape, b.shape), a.dtype)]


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b in the dtype of a, narrow floats accumulated in float32."""
    if a.dtype.kind in "iu":
        return np.matmul(a, b)
    wt = work_dtype(a.dtype)
    return np.matmul(a.astype(wt, copy=False), b.astype(wt, copy=False)).astype(a.dtype)


def matmul_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    return [matmul(inputs[0], inputs[1])]


# ---------------------------------------------------------------------------------------
# Lowering: contractions in numpy.matmul's 2-D-promoted space

Index = tuple[Expr, ...]
ValueFn = Callable[[Expr, Index], Expr]


def promoted(t: te.Tensor, is_a: bool) -> tuple[int, ...]:
    """A 1-D A as a (1, K) row, a 1-D B as a (K, 1) column."""
    if t.ndim >= 2:
        return t.shape
    return (1, t.shape[0]) if is_a else (t.shape[0], 1)


def full_shape(a: te.Tensor, b: te.Tensor) -> tuple[int, ...]:
    """batch + (M, N): the product's shape before 1-D operands drop their added axis."""
    pa, pb = promoted(a, True), promoted(b, False)
    return (*np.broadcast_shapes(pa[:-2], pb[:-2]), pa[-2], pb[-1])


def operand_index(t: te.Tensor, is_a: bool, full: Sequence[int], i: Index, k: Expr) -> Index:
    """Index into t's promoted shape of the operand element for output `i` (full shape) and
    reduction index k; batch axes broadcast."""
    shape = promoted(t, is_a)
    nb = len(shape) - 2
    batch = tuple(te.idx(0) if shape[j] == 1 and full[len(full) - 2 - nb + j] != 1
                  else i[len(full) - 2 - nb + j] for j in range(nb))
    return (*batch, i[-2], k) if is_a else (*batch, k, i[-1])


def contract(name: str, a: te.Tensor, b: te.Tensor, acc: DType,
             a_value: ValueFn | None = None, b_value: ValueFn | None = None) -> te.Tensor:
    """sum_k a_value(A[.., m, k]) * b_value(B[.., k, n]) over the full shape, in `acc`. The
    value functions get the element and its index in the operand's promoted shape."""
    full = full_shape(a, b)
    kdim = promoted(a, True)[-1]
    av = a_value or (lambda v, _i: topi.to_dtype(acc, v))
    bv = b_value or (lambda v, _i: topi.to_dtype(acc, v))

    def body(*i: Expr) -> te.Reduction:
        r = te.rvar("k", kdim)
        ai = operand_index(a, True, full, i, r.var)
        bi = operand_index(b, False, full, i, r.var)
        x = a[ai] if a.ndim >= 2 else a[(ai[-1],)]
        y = b[bi] if b.ndim >= 2 else b[(bi[-2],)]
        return te.reduce("sum", av(x, ai) * bv(y, bi), [r])

    return topi.stage(name, full, body, acc)


def unpromote(a: te.Tensor, b: te.Tensor, out: Index) -> Index:
    """The full-shape index of an output index (1-D operands dropped an axis)."""
    full = list(out)
    if a.ndim == 1:
        full.insert(len(full) - (0 if b.ndim == 1 else 1), te.idx(0))
    if b.ndim == 1:
        full.append(te.idx(0))
    return tuple(full)


def output(name: str, a: te.Tensor, b: te.Tensor, red: te.Tensor, shape: Sequence[int],
           dtype: DType, fn: Callable[[Expr, Index], Expr] | None = None) -> te.Tensor:
    """out[i] = fn(red[full(i)], full(i)) cast to `dtype`; `red` itself when nothing to do."""
    if fn is None and red.dtype == dtype and tuple(shape) == red.shape:
        return red

    def body(*i: Expr) -> Expr:
        fi = unpromote(a, b, i)
        v = red[fi]
        return topi.to_dtype(dtype, fn(v, fi) if fn is not None else v)

    return topi.stage(f"{name}_out", shape, body, dtype)


def row_at(t: te.Tensor, ai: Index) -> Expr:
    """A's per-row parameter (scalar, [M], or A's shape with K -> 1) at A's index `ai`."""
    if t.ndim == 0 or (t.ndim == 1 and t.shape[0] == 1):
        return elem0(t)
    if t.ndim == 1:
        return t[(ai[-2],)]
    return t[(*ai[:-1], te.idx(0))]


def col_at(t: te.Tensor, bi: Index) -> Expr:
    """B's per-column parameter (scalar, [N], or B's shape with K -> 1) at B's index `bi`."""
    if t.ndim == 0 or (t.ndim == 1 and t.shape[0] == 1):
        return elem0(t)
    if t.ndim == 1:
        return t[(bi[-1],)]
    return t[(*bi[:-2], te.idx(0), bi[-1])]


def matmul_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    a, b = ins[0], ins[1]
    out_t = ctx.out_types[0]
    red = contract(ctx.op, a, b, work_type(a.dtype))
    return [output(ctx.op, a, b, red, out_t.shape, out_t.dtype)]


register(OpDef("MatMul", matmul_infer, matmul_ref, inputs=(2, 2),
               kind=Kind.COMPLEX_OUT_FUSABLE, compute=matmul_compute,
               doc="numpy.matmul semantics"))


# ---------------------------------------------------------------------------------------
# MatMulInteger


def row_param(v: np.ndarray, a_ndim: int) -> np.ndarray:
    """A per-row parameter of A: a 1-D vector of M values becomes (M, 1)."""
    if v.ndim == 0 or v.size == 1:
        return v.reshape(())
    if v.ndim == 1 and a_ndim >= 2:
        return v.reshape(-1, 1)
    return v


def check_row_param(ctx: InferCtx, i: int, a: TensorType, what: str) -> None:
    """a's zero point / scale: scalar, [M] for a 2-D a, or a's shape with K -> 1."""
    t = ctx.input(i)
    if t is None or t.shape is None or a.shape is None:
        return
    s = t.shape
    if len(s) == 0 or (len(s) == 1 and dim_eq(s[0], 1)):
        return
    if len(s) == 1 and len(a.shape) >= 2 and dim_eq(s[0], a.shape[-2]) is not False:
        return
    if len(s) == len(a.shape) >= 2 and dim_eq(s[-1], 1) is not False and all(
            dim_eq(x, y) is not False for x, y in zip(s[:-1], a.shape[:-1], strict=True)):
        return
    raise ctx.fail(f"{what} shape {list(s)} is neither per-tensor nor per-row of "
                   f"{list(a.shape)}")


def check_col_param(ctx: InferCtx, i: int, b: TensorType, what: str) -> None:
    """b's zero point / scale: scalar, [N] per column, or b's shape with K -> 1."""
    t = ctx.input(i)
    if t is None or t.shape is None or b.shape is None:
        return
    s = t.shape
    if len(s) == 0 or (len(s) == 1 and dim_eq(s[0], 1)):
        return
    if len(s) == 1 and len(b.shape) >= 2 and dim_eq(s[0], b.shape[-1]) is not False:
        return
    if len(s) == len(b.shape) >= 2 and dim_eq(s[-2], 1) is not False and all(
            dim_eq(x, y) is not False for x, y in zip(s[:-2] + s[-1:], b.shape[:-2]
                                                      + b.shape[-1:], strict=True)):
        return
    raise ctx.fail(f"{what} shape {list(s)} is neither per-tensor nor per-column of "
                   f"{list(b.shape)}")


def matmul_integer_infer(ctx: InferCtx) -> list[TensorType]:
    a, b = need(ctx, 0, "A"), need(ctx, 1, "B")
    check_dtype(ctx, a, INT8S, "A")
    check_dtype(ctx, b, INT8S, "B")
    for i, like, what in ((2, a, "a_zero_point"), (3, b, "b_zero_point")):
        t = ctx.input(i)
        if t is not None and t.dtype != like.dtype:
            raise ctx.fail(f"{what} dtype {t.dtype} != {like.dtype}")
    shape = matmul_shape(ctx, a.shape, b.shape)
    check_row_param(ctx, 2, a, "a_zero_point")
    check_col_param(ctx, 3, b, "b_zero_point")
    return [TensorType(shape, D.int32)]


def int_matmul(a: np.ndarray, b: np.ndarray, azp: np.ndarray | None,
               bzp: np.ndarray | None) -> np.ndarray:
    """(a - azp) @ (b - bzp) exactly, as float64."""
    af, bf = a.astype(np.float64), b.astype(np.float64)
    if azp is not None:
        af = af - row_param(azp.astype(np.float64), a.ndim)
    if bzp is not None:
        bf = bf - bzp.astype(np.float64)
    return np.matmul(af, bf)


def matmul_integer_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    a, b, azp, bzp = (list(inputs) + [None] * 2)[:4]
    return [int_matmul(a, b, azp, bzp).astype(np.int64).astype(np.int32)]


def int_contract(name: str, a: te.Tensor, b: te.Tensor, azp: te.Tensor | None,
                 bzp: te.Tensor | None) -> te.Tensor:
    """(A - a_zero_point) @ (B - b_zero_point) over the full shape, in int32: wrapping sums
    equal the reference's exact sum wrapped to int32."""
    i32 = DType.int32

    def a_value(v: Expr, ai: Index) -> Expr:
        v = B.cast(i32, v)
        return v - B.cast(i32, row_at(azp, ai)) if azp is not None else v

    def b_value(v: Expr, bi: Index) -> Expr:
        v = B.cast(i32, v)
        return v - B.cast(i32, col_at(bzp, bi)) if bzp is not None else v

    return contract(name, a, b, i32, a_value, b_value)


def matmul_integer_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    a, b, azp, bzp = (list(ins) + [None] * 2)[:4]
    red = int_contract(ctx.op, a, b, azp, bzp)
    return [output(ctx.op, a, b, red, ctx.out_types[0].shape, DType.int32)]


register(OpDef("MatMulInteger", matmul_integer_infer, matmul_integer_ref, inputs=(2, 4),
               kind=Kind.COMPLEX_OUT_FUSABLE, compute=matmul_integer_compute,
               doc="(A - a_zero_point) @ (B - b_zero_point) in int32"))


# ---------------------------------------------------------------------------------------
# Gemm


def gemm_infer(ctx: InferCtx) -> list[TensorType]:
    a, b = need(ctx, 0, "A"), need(ctx, 1, "B")
    check_dtype(ctx, a, MATMUL_TYPES, "A")
    if b.dtype != a.dtype:
        raise ctx.fail(f"B dtype {b.dtype} != A dtype {a.dtype}")
    dims: list[Dim] = []
    k: list[Dim] = []
    for t, what, trans, keep in ((a, "A", "transA", 0), (b, "B", "transB", 1)):
        if t.shape is not None and len(t.shape) != 2:
            raise ctx.fail(f"{what} must be 2-D, got shape {list(t.shape)}")
        s = t.shape or (UNKNOWN, UNKNOWN)
        if ctx.attrs[trans]:
            s = s[::-1]
        dims.append(s[keep])
        k.append(s[1 - keep])
    if dim_eq(k[0], k[1]) is False:
        raise ctx.fail(f"inner dimensions differ: A {list(a.shape)} and B {list(b.shape)} "
                       f"(transA={ctx.attrs['transA']}, transB={ctx.attrs['transB']})")
    out = tuple(dims)
    c = ctx.input(2)
    if c is not None:
        if c.dtype != a.dtype:
            raise ctx.fail(f"C dtype {c.dtype} != A dtype {a.dtype}")
        if c.shape is not None:
            if len(c.shape) > 2:
                raise ctx.fail(f"C must have rank <= 2, got shape {list(c.shape)}")
            full = broadcast_shapes(ctx, out, c.shape)
            if any(dim_eq(x, y) is False for x, y in zip(full, out, strict=True)):
                raise ctx.fail(f"C shape {list(c.shape)} does not broadcast to {list(out)}")
    return [TensorType(out, a.dtype)]


def gemm_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    a, b, c = (list(inputs) + [None])[:3]
    alpha, beta = ctx.attrs["alpha"], ctx.attrs["beta"]
    if ctx.attrs["transA"]:
        a = a.T
    if ctx.attrs["transB"]:
        b = b.T
    if a.dtype.kind in "iu":
        wt = np.dtype(np.float64) if (alpha != 1 or beta != 1) else a.dtype
    else:
        wt = work_dtype(a.dtype)
    y = np.matmul(a.astype(wt, copy=False), b.astype(wt, copy=False))
    if alpha != 1:
        y = y * wt.type(alpha)
    if c is not None and beta != 0:
        cw = c.astype(wt, copy=False)
        y = y + (cw if beta == 1 else cw * wt.type(beta))
    return [y.astype(a.dtype)]


def gemm_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """alpha * (A' @ B') + beta * C in the reference's working type (float64 for integers
    scaled by alpha or beta), cast once to the output."""
    a, b, c = (list(ins) + [None])[:3]
    out_t = ctx.out_types[0]
    alpha, beta = ctx.attrs["alpha"], ctx.attrs["beta"]
    ta, tb = ctx.attrs["transA"], ctx.attrs["transB"]
    if a.dtype.is_float:
        acc = work_type(a.dtype)
    else:
        acc = DType.float64 if (alpha != 1 or beta != 1) else a.dtype
    kdim = a.shape[0] if ta else a.shape[1]

    def body(m: Expr, n: Expr) -> te.Reduction:
        r = te.rvar("k", kdim)
        x = a[(r.var, m) if ta else (m, r.var)]
        y = b[(n, r.var) if tb else (r.var, n)]
        return te.reduce("sum", topi.to_dtype(acc, x) * topi.to_dtype(acc, y), [r])

    red = topi.stage(ctx.op, out_t.shape, body, acc)

    def final(m: Expr, n: Expr) -> Expr:
        v = red[(m, n)]
        if alpha != 1:
            v = v * topi.scalar(alpha, acc)
        if c is not None and beta != 0:
            cv = topi.to_dtype(acc, topi.load_bcast(c, out_t.shape, (m, n)))
            v = v + (cv if beta == 1 else cv * topi.scalar(beta, acc))
        return topi.to_dtype(out_t.dtype, v)

    return [topi.stage(f"{ctx.op}_out", out_t.shape, final, out_t.dtype)]


register(OpDef(
    "Gemm", gemm_infer, gemm_ref, inputs=(2, 3), kind=Kind.COMPLEX_OUT_FUSABLE,
    compute=gemm_compute,
    attrs={"alpha": Attr("float", 1.0), "beta": Attr("float", 1.0), "transA": Attr("int", 0),
           "transB": Attr("int", 0)},
    doc="alpha * A' @ B' + beta * C with optional transposes and broadcast C",
))
