"""Value-generating ops: ConstantOfShape, Range, EyeLike, and the random ops RandomUniform,
RandomNormal, RandomUniformLike, RandomNormalLike, Bernoulli and Multinomial.

The random ops draw from the interpreter's generator (`EvalCtx.rng`), or from a generator
seeded by their `seed` attribute when one is given; they are marked nondeterministic.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import UNKNOWN, Tensor, TensorType
from compiler.loop import build as B
from compiler.lower import te, topi
from compiler.lower.te import idx
from compiler.ops.base import (
    Attr,
    EvalCtx,
    InferCtx,
    Kind,
    OpDef,
    numel,
    register,
    unknown_shape,
)
from compiler.ops.shape import check_int_input, const_ints, fill, req, rt_fail, vec_len

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

RANDOM_TYPES = (DType.float16, DType.bfloat16, DType.float32, DType.float64)


def attr_dtype(ctx: InferCtx, name: str, allowed=None, default: DType | None = None) -> DType:
    """An ONNX TensorProto element-type attribute as a DType (or `default` when absent)."""
    code = ctx.attrs.get(name)
    if code is None:
        if default is None:
            raise ctx.fail(f"attribute {name!r} is required")
        dt = default
    else:
        try:
            dt = DType.from_onnx(code)
        except KeyError:
            raise ctx.fail(f"{name}={code} is not a known element type") from None
    if allowed is not None and dt not in allowed:
        what = name if code is not None else f"output dtype (from the input; set {name!r})"
        raise ctx.fail(f"{what} {dt} is not supported")
    return dt


# ---------------------------------------------------------------------------------------
# ConstantOfShape


def _cos_value(attrs) -> np.ndarray:
    v = attrs.get("value")
    return np.zeros(1, np.float32) if v is None else v.array.reshape(-1)


def _cos_infer(ctx: InferCtx) -> list[TensorType]:
    st = check_int_input(ctx, 0, "input")
    if st is None:
        raise ctx.fail("input 0 is required")
    v = ctx.attrs.get("value")
    if v is not None and not isinstance(v, Tensor):
        raise ctx.fail("value must be a tensor")
    if v is not None and v.array.size != 1:
        raise ctx.fail(f"value must hold exactly one element, got {v.array.size}")
    dtype = DType.float32 if v is None else v.dtype
    shape = const_ints(ctx, 0)
    if shape is None:
        return [TensorType(unknown_shape(vec_len(st)), dtype)]
    if any(d < 0 for d in shape):
        raise ctx.fail(f"shape {list(shape)} has negative dims")
    return [TensorType(tuple(shape), dtype)]


def _cos_ref(ctx: EvalCtx, inputs):
    shape = [int(d) for d in inputs[0].reshape(-1)]
    if any(d < 0 for d in shape):
        raise rt_fail("ConstantOfShape", f"shape {shape} has negative dims")
    v = _cos_value(ctx.attrs)
    return [np.full(shape, v[0], dtype=v.dtype)]


def _cos_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    v = _cos_value(ctx.attrs)[0]
    return [fill("ConstantOfShape", ctx.out_types[0], v.item())]


register(OpDef("ConstantOfShape", _cos_infer, _cos_ref, attrs={"value": Attr("tensor", None)},
               kind=Kind.INJECTIVE, compute=_cos_compute, shape_inputs=(0,)))


# ---------------------------------------------------------------------------------------
# Range

RANGE_TYPES = (DType.float32, DType.float64, DType.int16, DType.int32, DType.int64,
               DType.float16, DType.bfloat16)


MAX_RANGE = 2**31 - 1


def range_count(start, limit, delta) -> int:
    """max(ceil((limit - start) / delta), 0), exactly for integers."""
    if isinstance(start, int):
        return max(-((start - limit) // delta), 0)
    n = math.ceil((limit - start) / delta)
    return max(n, 0)


def _scalar(x: np.ndarray, is_int: bool):
    v = np.asarray(x).reshape(-1)[0]
    return int(v) if is_int else float(v)


def _range_infer(ctx: InferCtx) -> list[TensorType]:
    ts = [req(ctx, i, n) for i, n in enumerate(("start", "limit", "delta"))]
    dtype = ts[0].dtype
    if dtype not in RANGE_TYPES:
        raise ctx.fail(f"dtype {dtype} not supported")
    for t, n in zip(ts, ("start", "limit", "delta"), strict=True):
        if t.dtype != dtype:
            raise ctx.fail(f"{n} has dtype {t.dtype}, start has {dtype}")
        if numel(t.shape) not in (1, None) or (t.rank or 0) > 1:
            raise ctx.fail(f"{n} must be a scalar")
    consts = [ctx.const(i) for i in range(3)]
    if any(c is None for c in consts):
        return [TensorType((UNKNOWN,), dtype)]
    start, limit, delta = (_scalar(c, dtype.is_int) for c in consts)
    if delta == 0:
        raise ctx.fail("delta must be non-zero")
    if any(isinstance(v, float) and not math.isfinite(v) for v in (start, limit, delta)):
        raise ctx.fail("start, limit and delta must be finite")
    n = range_count(start, limit, delta)
    if n > MAX_RANGE:
        raise ctx.fail(f"the range has {n} elements (more than {MAX_RANGE})")
    return [TensorType((n,), dtype)]


def _range_ref(ctx: EvalCtx, inputs):
    dt = inputs[0].dtype
    is_int = dt.kind in "iu"
    start, limit, delta = (_scalar(x, is_int) for x in inputs)
    if delta == 0:
        raise rt_fail("Range", "delta must be non-zero")
    if not is_int and not all(math.isfinite(v) for v in (start, limit, delta)):
        raise rt_fail("Range", "start, limit and delta must be finite")
    n = range_count(start, limit, delta)
    if n > MAX_RANGE:
        raise rt_fail("Range", f"the range has {n} elements (more than {MAX_RANGE})")
    if is_int:
        return [(start + np.arange(n, dtype=np.int64) * delta).astype(dt)]
    work = dt  # output[i] = start + i * delta, each operation rounded to the working type
    if DType.from_np(dt) in (DType.float16, DType.bfloat16):
        stash = ctx.attrs.get("stash_type", 1)
        work = DType.from_onnx(stash).np if stash in (1, 10, 11, 16) else np.dtype(np.float32)
    s, d = np.asarray(start).astype(work), np.asarray(delta).astype(work)
    return [(s + np.arange(n).astype(work) * d).astype(work).astype(dt)]


def _range_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """out[i] = start + i * delta: in int64 (wrapping) for integers, else in the working
    float type with each operation rounded as in the reference."""
    out = ctx.out_types[0]
    is_int = out.dtype.is_int
    start, _, delta = (_scalar(ctx.value(k), is_int) for k in range(3))
    if is_int:
        return [te.compute("Range", out.shape, lambda i: i * idx(delta) + idx(start),
                           out.dtype)]
    work = out.dtype
    if work in (DType.float16, DType.bfloat16):
        stash = ctx.attrs.get("stash_type", 1)
        work = DType.from_onnx(stash) if stash in (1, 10, 11, 16) else DType.float32
    s, d = topi.scalar(start, work), topi.scalar(delta, work)
    return [te.compute("Range", out.shape, lambda i: s + B.cast(work, i) * d, out.dtype)]


register(OpDef("Range", _range_infer, _range_ref, attrs={"stash_type": Attr("int", 1)},
               inputs=(3, 3), compute=_range_compute, shape_inputs=(0, 1, 2)))


# ---------------------------------------------------------------------------------------
# EyeLike

_EYE_TYPES = tuple(d for d in DType if d.is_int or d.is_float or d is DType.bool)


def _eyelike_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    dtype = attr_dtype(ctx, "dtype", _EYE_TYPES, default=t.dtype)
    if t.rank is not None and t.rank != 2:
        raise ctx.fail(f"input must be 2-D, got rank {t.rank}")
    return [TensorType(t.shape if t.shape is not None else unknown_shape(2), dtype)]


def _eyelike_ref(ctx: EvalCtx, inputs):
    rows, cols = inputs[0].shape
    dt = ctx.out_types[0].dtype.np
    return [np.eye(rows, cols, k=ctx.attrs["k"]).astype(dt)]


def _eyelike_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    out = ctx.out_types[0]
    k = max(min(ctx.attrs["k"], out.shape[1] + 1), -out.shape[0] - 1)  # stays an int64
    one, zero = topi.scalar(1, out.dtype), topi.scalar(0, out.dtype)
    return [te.compute("EyeLike", out.shape,
                       lambda i, j: B.select(B.eq(j - i, idx(k)), one, zero), out.dtype)]


register(OpDef("EyeLike", _eyelike_infer, _eyelike_ref,
               attrs={"dtype": Attr("int", None), "k": Attr("int", 0)}, kind=Kind.INJECTIVE,
               compute=_eyelike_compute))


# ---------------------------------------------------------------------------------------
# Random ops


def _rng(ctx: EvalCtx) -> np.random.Generator:
    seed = ctx.attrs.get("seed")
    if seed is not None:
        return np.random.default_rng(int(np.array(seed, np.float64).view(np.uint64)))
    return ctx.rng if ctx.rng is not None else np.random.default_rng()


def _dist(ctx: EvalCtx, rng: np.random.Generator, shape) -> np.ndarray:
    a = ctx.attrs
    if "high" in a:
        return rng.uniform(a["low"], a["high"], size=shape)
    return rng.normal(a["mean"], a["scale"], size=shape)


def _random_infer(ctx: InferCtx) -> list[TensorType]:
    shape = ctx.attrs["shape"]
    if any(d < 0 for d in shape):
        raise ctx.fail(f"shape {list(shape)} has negative dims")
    dtype = attr_dtype(ctx, "dtype", RANDOM_TYPES)
    return [TensorType(tuple(shape), dtype)]


def _random_like_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    return [TensorType(t.shape, attr_dtype(ctx, "dtype", RANDOM_TYPES, default=t.dtype))]


def _random_ref(ctx: EvalCtx, inputs):
    shape = ctx.attrs["shape"] if not inputs else inputs[0].shape
    out = _dist(ctx, _rng(ctx), shape)
    return [np.asarray(out).astype(ctx.out_types[0].dtype.np)]


_UNIFORM = {"seed": Attr("float", None), "high": Attr("float", 1.0), "low": Attr("float", 0.0)}
_NORMAL = {"seed": Attr("float", None), "scale": Attr("float", 1.0), "mean": Attr("float", 0.0)}

for _name, _params in (("RandomUniform", _UNIFORM), ("RandomNormal", _NORMAL)):
    register(OpDef(_name, _random_infer, _random_ref, inputs=(0, 0), nondeterministic=True,
                   attrs={"shape": Attr("ints"), "dtype": Attr("int", 1), **_params}))
    register(OpDef(_name + "Like", _random_like_infer, _random_ref, nondeterministic=True,
                   attrs={"dtype": Attr("int", None), **_params}))


def _bernoulli_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    if t.dtype not in RANDOM_TYPES:
        raise ctx.fail(f"input dtype {t.dtype} not supported")
    dtype = attr_dtype(ctx, "dtype", default=t.dtype)
    if not (dtype.is_int or dtype.is_float or dtype is DType.bool):
        raise ctx.fail(f"dtype {dtype} not supported")
    return [TensorType(t.shape, dtype)]


def _bernoulli_ref(ctx: EvalCtx, inputs):
    p = inputs[0].astype(np.float64)
    draw = _rng(ctx).uniform(0.0, 1.0, size=p.shape) < p
    return [draw.astype(ctx.out_types[0].dtype.np)]


register(OpDef("Bernoulli", _bernoulli_infer, _bernoulli_ref, nondeterministic=True,
               attrs={"dtype": Attr("int", None), "seed": Attr("float", None)}))


def _multinomial_infer(ctx: InferCtx) -> list[TensorType]:
    t = req(ctx, 0)
    if t.dtype not in RANDOM_TYPES:
        raise ctx.fail(f"input dtype {t.dtype} not supported")
    if t.rank is not None and t.rank != 2:
        raise ctx.fail(f"input must be 2-D [batch, classes], got rank {t.rank}")
    n = ctx.attrs["sample_size"]
    if n < 1:
        raise ctx.fail(f"sample_size must be positive, got {n}")
    dtype = attr_dtype(ctx, "dtype", (DType.int32, DType.int64))
    batch = UNKNOWN if t.shape is None else t.shape[0]
    return [TensorType((batch, n), dtype)]


def _multinomial_ref(ctx: EvalCtx, inputs):
    logits = inputs[0].astype(np.float64)
    rng = _rng(ctx)
    n = ctx.attrs["sample_size"]
    out = np.zeros((logits.shape[0], n), dtype=ctx.out_types[0].dtype.np)
    for b, row in enumerate(logits):
        w = np.exp(row - row.max())
        out[b] = rng.choice(len(row), size=n, p=w / w.sum())
    return [out]


register(OpDef("Multinomial", _multinomial_infer, _multinomial_ref, nondeterministic=True,
               attrs={"dtype": Attr("int", 6), "seed": Attr("float", None),
                      "sample_size": Attr("int", 1)}))
