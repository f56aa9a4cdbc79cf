"""Matrix products: MatMul, MatMulInteger, Gemm.

MatMul follows numpy.matmul: a 1-D A is a row vector and a 1-D B a column vector (the added
axis is dropped again), and the batch axes broadcast. Float16/bfloat16 products accumulate in
float32 and are rounded once; float32 accumulates in float32; integer MatMul wraps like the
native integer type. MatMulInteger runs in float64, which is exact for 8-bit operands.
"""

from __future__ import annotations

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import UNKNOWN, Dim, TensorType
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
from compiler.ops.window import INT8S, need, work_dtype

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


register(OpDef("MatMul", matmul_infer, matmul_ref, inputs=(2, 2),
               kind=Kind.COMPLEX_OUT_FUSABLE, doc="numpy.matmul semantics"))


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


register(OpDef("MatMulInteger", matmul_integer_infer, matmul_integer_ref, inputs=(2, 4),
               kind=Kind.COMPLEX_OUT_FUSABLE,
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


register(OpDef(
    "Gemm", gemm_infer, gemm_ref, inputs=(2, 3), kind=Kind.COMPLEX_OUT_FUSABLE,
    attrs={"alpha": Attr("float", 1.0), "beta": Attr("float", 1.0), "transA": Attr("int", 0),
           "transB": Attr("int", 0)},
    doc="alpha * A' @ B' + beta * C with optional transposes and broadcast C",
))
