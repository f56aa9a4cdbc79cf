"""Attention family: Attention, RotaryEmbedding, LinearAttention, FlexAttention.

Attention follows opset 25 (sliding windows, `nonpad_kv_seqlen`); opsets 23 and 24 are the
same op with fewer attributes/inputs, so no upgrade rewrite is needed. The references keep
the spec's dtype flow: scores, bias and softmax are computed in the input float type (or in
`softmax_precision`), so half-precision results round where the spec rounds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
from compiler.lower.subgraph import inline_function
from compiler.lower.te import idx
from compiler.ops.base import (
    Attr,
    EvalCtx,
    InferCtx,
    Kind,
    OpDef,
    check_dtype,
    dim_eq,
    register,
)

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

FLOATS = (DType.bfloat16, DType.float16, DType.float32, DType.float64)
HALF_AND_FLOAT = (DType.float32, DType.float16, DType.bfloat16)
MASK_DTYPES = FLOATS + (
    DType.bool, DType.int8, DType.int16, DType.int32, DType.int64,
    DType.uint8, DType.uint16, DType.uint32, DType.uint64,
)
# softmax_precision (an ONNX TensorProto element type) -> DType
PRECISIONS = {1: DType.float32, 10: DType.float16, 11: DType.float64, 16: DType.bfloat16}


# ---------------------------------------------------------------------------------------
# Shared helpers


def _div(d: Dim, n: int) -> Dim:
    return d // n if isinstance(d, int) else UNKNOWN


def _mul(d: Dim, n: Dim) -> Dim:
    return d * n if isinstance(d, int) and isinstance(n, int) else UNKNOWN


def _add(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if a == 0:
        return b
    return b if b == 0 else UNKNOWN


def _same(ctx: InferCtx, a: Dim, b: Dim, what: str) -> Dim:
    if dim_eq(a, b) is False:
        raise ctx.fail(f"{what} mismatch: {a} vs {b}")
    return a if isinstance(a, int) else b


def _split_heads(x: np.ndarray, heads: int) -> np.ndarray:
    """(B, S, H*D) -> (B, H, S, D)."""
    b, s, hd = x.shape
    return x.reshape(b, s, heads, hd // heads).transpose(0, 2, 1, 3)


def _merge_heads(x: np.ndarray) -> np.ndarray:
    """(B, H, S, D) -> (B, S, H*D)."""
    b, h, s, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, s, h * d)


def _matmul(a: np.ndarray, b: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Matmul whose result has `dtype` (numpy may widen half types on the way)."""
    return np.matmul(a, b).astype(dtype, copy=False)


def _softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in x's dtype; an all -inf row gives zeros, not NaN."""
    m = np.max(x, axis=-1, keepdims=True)
    m = np.where(np.isneginf(m), np.zeros((), x.dtype), m)
    e = np.exp(x - m)
    s = np.sum(e, axis=-1, keepdims=True)
    s = np.where(s == 0, np.ones((), x.dtype), s)
    return e / s


def _check_heads(ctx: InferCtx, hq: Dim, hkv: Dim) -> None:
    if isinstance(hq, int) and isinstance(hkv, int) and (hkv <= 0 or hq % hkv):
        raise ctx.fail(f"q_num_heads {hq} is not a multiple of kv_num_heads {hkv}")


# ---------------------------------------------------------------------------------------
# Attention


def _attention_infer(ctx: InferCtx) -> list[TensorType]:
    q, k, v = ctx.input(0), ctx.input(1), ctx.input(2)
    mask, pk, pv, nonpad = (ctx.input(i) for i in range(3, 7))
    a = ctx.attrs
    check_dtype(ctx, q, FLOATS, "Q")
    check_dtype(ctx, v, FLOATS, "V")
    if k.dtype != q.dtype:
        raise ctx.fail(f"K dtype {k.dtype} differs from Q dtype {q.dtype}")
    if (pk is None) != (pv is None):
        raise ctx.fail("past_key and past_value must be given together")
    if nonpad is not None:
        check_dtype(ctx, nonpad, (DType.int64,), "nonpad_kv_seqlen")
        if pk is not None:
            raise ctx.fail("nonpad_kv_seqlen cannot be combined with past_key/past_value")
    if mask is not None:
        check_dtype(ctx, mask, MASK_DTYPES, "attn_mask")
    if a["qk_matmul_output_mode"] not in (0, 1, 2, 3):
        raise ctx.fail(f"qk_matmul_output_mode {a['qk_matmul_output_mode']} not in 0..3")
    if "softmax_precision" in a and a["softmax_precision"] not in PRECISIONS:
        raise ctx.fail(f"softmax_precision {a['softmax_precision']} is not 1, 10, 11 or 16")
    for w in ("left_window_size", "right_window_size"):
        if a[w] < -1:
            raise ctx.fail(f"{w} must be -1 or nonnegative, got {a[w]}")
    if a.get("scale") is not None and not np.isfinite(a["scale"]):
        raise ctx.fail("scale must be finite")

    ranks = {t.rank for t in (q, k, v) if t.rank is not None}
    if len(ranks) > 1:
        raise ctx.fail(f"Q, K and V must have the same rank, got {q.rank}, {k.rank}, {v.rank}")
    rank = ranks.pop() if ranks else None
    if rank not in (None, 3, 4):
        raise ctx.fail(f"Q, K and V must be 3-D or 4-D, got rank {rank}")
    if any(t.rank is None for t in (q, k, v)):
        y = TensorType(None if rank is None else (UNKNOWN,) * rank, q.dtype)
        rest = [TensorType((UNKNOWN,) * 4, t) for t in (q.dtype, v.dtype, q.dtype)]
        return [y, *rest][: ctx.num_outputs]

    if rank == 3:
        if "q_num_heads" not in a or "kv_num_heads" not in a:
            raise ctx.fail("3-D inputs need the q_num_heads and kv_num_heads attributes")
        hq, hkv = a["q_num_heads"], a["kv_num_heads"]
        if hq <= 0 or hkv <= 0:
            raise ctx.fail(f"head counts must be positive, got {hq} and {hkv}")
        for t, h, what in ((q, hq, "Q"), (k, hkv, "K"), (v, hkv, "V")):
            if isinstance(t.shape[2], int) and t.shape[2] % h:
                raise ctx.fail(f"{what} hidden size {t.shape[2]} not divisible by {h} heads")
        b, sq, dq = q.shape[0], q.shape[1], _div(q.shape[2], hq)
        skv, dk, dv = k.shape[1], _div(k.shape[2], hkv), _div(v.shape[2], hkv)
        _same(ctx, skv, v.shape[1], "K/V sequence length")
        bk, bv = k.shape[0], v.shape[0]
    else:
        b, hq, sq, dq = q.shape
        bk, hkv, skv, dk = k.shape
        bv, hv, sv, dv = v.shape
        hkv = _same(ctx, hkv, hv, "K/V head count")
        skv = _same(ctx, skv, sv, "K/V sequence length")
        for name, given, have in (("q_num_heads", a.get("q_num_heads"), hq),
                                  ("kv_num_heads", a.get("kv_num_heads"), hkv)):
            if given is not None and dim_eq(given, have) is False:
                raise ctx.fail(f"{name}={given} disagrees with the 4-D input's {have} heads")
    b = _same(ctx, _same(ctx, b, bk, "batch size"), bv, "batch size")
    _same(ctx, dq, dk, "Q/K head size")
    _check_heads(ctx, hq, hkv)

    past: Dim = 0
    if pk is not None:
        if pk.dtype != q.dtype or pv.dtype != v.dtype:
            raise ctx.fail("past_key/past_value dtypes must match K/V")
        for t, d, what in ((pk, dk, "past_key"), (pv, dv, "past_value")):
            if t.rank is not None:
                if t.rank != 4:
                    raise ctx.fail(f"{what} must be 4-D, got rank {t.rank}")
                _same(ctx, t.shape[0], b, f"{what} batch size")
                _same(ctx, t.shape[1], hkv, f"{what} head count")
                _same(ctx, t.shape[3], d, f"{what} head size")
        past = pk.shape[2] if pk.rank is not None else UNKNOWN
        if pv.rank is not None:
            past = _same(ctx, past, pv.shape[2], "past sequence length")
    total = _add(past, skv)
    if mask is not None and mask.rank is not None:
        _check_mask(ctx, mask.shape, (b, hq, sq, total))
    if nonpad is not None and nonpad.rank is not None:
        if nonpad.rank != 1:
            raise ctx.fail(f"nonpad_kv_seqlen must be 1-D, got rank {nonpad.rank}")
        _same(ctx, nonpad.shape[0], b, "nonpad_kv_seqlen batch size")

    if rank == 3:
        y = TensorType((b, sq, _mul(hq, dv)), q.dtype)
    else:
        y = TensorType((b, hq, sq, dv), q.dtype)
    outs = [
        y,
        TensorType((b, hkv, total, dk), q.dtype),
        TensorType((b, hkv, total, dv), v.dtype),
        TensorType((b, hq, sq, total), q.dtype),
    ]
    return outs[: ctx.num_outputs]


def _check_mask(ctx: InferCtx, shape: tuple[Dim, ...], full: tuple[Dim, ...]) -> None:
    if len(shape) > 4 or len(shape) == 0:
        raise ctx.fail(f"attn_mask must have rank 1 to 4, got {len(shape)}")
    last, want = shape[-1], full[-1]
    if isinstance(last, int) and isinstance(want, int) and last > want:
        raise ctx.fail(f"attn_mask last dim {last} exceeds total sequence length {want}")
    for d, w in zip(shape[:-1][::-1], full[:-1][::-1], strict=False):
        if isinstance(d, int) and d != 1 and dim_eq(d, w) is False:
            raise ctx.fail(f"attn_mask shape {list(shape)} does not broadcast to {list(full)}")


def _attention_bias(ctx: EvalCtx, mask, nonpad, past: int, sq: int, t: int, dt) -> np.ndarray:
    """The additive bias (0 / -inf from causal, window and padding, plus a float mask)."""
    a = ctx.attrs
    i = np.arange(sq).reshape(sq, 1)
    j = np.arange(t).reshape(1, t)
    # offset: count of valid keys preceding the query block (per batch for an external cache)
    offset = np.asarray(past).reshape(1, 1, 1, 1)
    if nonpad is not None and past == 0:
        offset = (nonpad.astype(np.int64) - sq).reshape(-1, 1, 1, 1)
    pos = i + offset
    allowed = np.ones(pos.shape[:2] + (sq, t), dtype=bool)
    if a["is_causal"]:
        allowed &= j <= pos
    if a["left_window_size"] >= 0:
        allowed &= pos - j <= a["left_window_size"]
    if a["right_window_size"] >= 0:
        allowed &= j - pos <= a["right_window_size"]
    if nonpad is not None:
        allowed &= j < nonpad.reshape(-1, 1, 1, 1)
    bias = np.where(allowed, dt.type(0), dt.type(-np.inf)).astype(dt)
    if mask is not None:
        if mask.dtype == np.bool_:
            mask = np.where(mask, dt.type(0), dt.type(-np.inf))
        mask = mask.astype(dt)  # an integer mask is an additive bias too
        pad = t - mask.shape[-1]
        if pad > 0:  # keys past the mask's last column are masked out
            mask = np.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, pad)],
                          constant_values=-np.inf)
        bias = bias + mask
    return bias


def _attention_ref(ctx: EvalCtx, ins: list) -> list[np.ndarray]:
    q, k, v, mask, pk, pv, nonpad = list(ins) + [None] * (7 - len(ins))
    a = ctx.attrs
    dt = q.dtype
    rank3 = q.ndim == 3
    if rank3:
        q = _split_heads(q, a["q_num_heads"])
        k = _split_heads(k, a["kv_num_heads"])
        v = _split_heads(v, a["kv_num_heads"])
    past = 0
    if pk is not None:
        past = pk.shape[2]
        k = np.concatenate([pk, k], axis=2)
        v = np.concatenate([pv, v], axis=2)
    present_k, present_v = k, v
    hq, hkv, sq, t = q.shape[1], k.shape[1], q.shape[2], k.shape[2]
    if hq != hkv:  # grouped-query: query head h reads kv head h // (hq / hkv)
        k = np.repeat(k, hq // hkv, axis=1)
        v = np.repeat(v, hq // hkv, axis=1)

    scale = a.get("scale")
    if scale is None:
        scale = 1.0 / np.sqrt(q.shape[3])
    s = dt.type(np.sqrt(scale))  # Q and K are each scaled by sqrt(scale)
    qk = _matmul(q * s, np.swapaxes(k * s, -1, -2), dt)
    capped = qk
    if a["softcap"] > 0:
        capped = np.tanh(qk / a["softcap"]) * a["softcap"]
        capped = capped.astype(dt, copy=False)
    bias = _attention_bias(ctx, mask, nonpad, past, sq, t, dt)
    scores = capped + bias
    mode = a["qk_matmul_output_mode"]
    qk_out = {0: qk, 1: capped, 2: scores}.get(mode)
    if "softmax_precision" in a:
        scores = scores.astype(PRECISIONS[a["softmax_precision"]].np)
    probs = _softmax(scores)
    # A query row with no attendable key gives zeros (decided on the bias, not the scores).
    dead = np.isneginf(np.max(bias, axis=-1, keepdims=True))
    probs = np.where(dead, np.zeros((), probs.dtype), probs)
    if mode == 3:
        qk_out = probs
    probs = probs.astype(dt)
    y = _matmul(probs, v, dt)
    if rank3:
        y = _merge_heads(y)
    b = q.shape[0]
    outs = [y, present_k, present_v,
            np.broadcast_to(qk_out, (b, hq, sq, t)).astype(dt)]
    return outs[: ctx.num_outputs]


# Lowering. Stages follow the reference's dtype flow: products of half-precision operands
# accumulate in float32 and round once (as numpy's matmul), float16 sums accumulate in
# float32 (numpy's pairwise sum), bfloat16 sums round at every step (ml_dtypes' add).

Load = Callable[..., Expr]


def _acc(*dts: DType) -> DType:
    """The accumulator of a product-sum of these dtypes (numpy's matmul for half types)."""
    return DType.float64 if DType.float64 in dts else DType.float32


def _sum_acc(dt: DType) -> DType:
    return DType.float32 if dt == DType.float16 else dt


def _fimm(value: float, dt: DType) -> Expr:
    return topi.scalar(value, dt)


def _heads4(x: te.Tensor, heads: int | None) -> Load:
    """Loads of the (B, H, S, D) view of a (B, S, H*D) or (B, H, S, D) input."""
    if x.ndim == 4:
        return lambda b, h, s, d: x[b, h, s, d]
    hd = x.shape[2] // heads
    return lambda b, h, s, d: x[b, s, h * idx(hd) + d]


def _with_past(past: te.Tensor | None, new: Load) -> Load:
    """Concatenation of the cache and the new entries along the sequence axis."""
    p = past.shape[2] if past is not None else 0
    if p == 0:
        return new

    def load(b, h, j, d):
        fresh = new(b, h, B.max_(j - idx(p), idx(0)), d)
        return B.select(j < idx(p), past[b, h, B.min_(j, idx(p - 1)), d], fresh)

    return load


def _matmul_stage(name: str, shape, lhs: Load, rhs: Load, kdim: int, out: DType,
                  acc: DType) -> te.Tensor:
    """out[..., i, j] = sum_k lhs(..., i, k) * rhs(..., k, j), accumulated in `acc`."""

    def body(*ax):
        r = te.rvar("k", kdim)
        x, y = lhs(*ax[:-1], r.var), rhs(*ax[:-2], r.var, ax[-1])
        if x.dtype != acc:
            x = B.cast(acc, x)
        if y.dtype != acc:
            y = B.cast(acc, y)
        return te.reduce("sum", x * y, [r])

    res = te.compute(name, shape, body, acc)
    if acc == out:
        return res
    return te.compute(f"{name}_r", shape, lambda *i: B.cast(out, res[i]), out)


def _softmax_stages(name: str, x: te.Tensor, dead_rows: bool) -> te.Tensor:
    """Softmax over the last axis as the reference's `_softmax` (max, exp, sum, divide),
    in x's dtype; with `dead_rows` an all -inf row gives zeros instead of NaN."""
    dt, shape = x.dtype, x.shape
    inf = _fimm(float("inf"), dt)
    n = shape[-1]

    def rowmax(*i):
        r = te.rvar("j", n)
        return te.reduce("max", x[(*i, r.var)], [r])

    m = te.compute(f"{name}_max", shape[:-1], rowmax)

    def shifted(*i):
        mi = m[i[:-1]]
        if dead_rows:
            mi = topi.let(mi, lambda v: B.select(B.eq(v, -inf), _fimm(0.0, dt), v))
        return B.call("exp", x[i] - mi)

    e = te.compute(f"{name}_exp", shape, shifted, dt, inline=False)
    sdt = _sum_acc(dt)

    def rowsum(*i):
        r = te.rvar("j", n)
        v = e[(*i, r.var)]
        return te.reduce("sum", B.cast(sdt, v) if sdt != dt else v, [r])

    s = te.compute(f"{name}_sum", shape[:-1], rowsum, sdt)

    def div(*i):
        si = s[i[:-1]]
        if sdt != dt:
            si = B.cast(dt, si)
        if dead_rows:
            si = topi.let(si, lambda v: B.select(B.eq(v, _fimm(0.0, dt)), _fimm(1.0, dt), v))
        return e[i] / si

    return te.compute(f"{name}_p", shape, div, dt)


def _attention_compute(ctx: LowerCtx, ins: list) -> list[te.Tensor]:
    q, k, v, mask, pk, pv, nonpad = list(ins) + [None] * (7 - len(ins))
    a = ctx.attrs
    dt, vdt = q.dtype, v.dtype
    hq = a.get("q_num_heads") if q.ndim == 3 else q.shape[1]
    hkv = a.get("kv_num_heads") if q.ndim == 3 else k.shape[1]
    qload, kload, vload = _heads4(q, hq), _heads4(k, hkv), _heads4(v, hkv)
    b, sq = q.shape[0], (q.shape[1] if q.ndim == 3 else q.shape[2])
    dq = q.shape[-1] // hq if q.ndim == 3 else q.shape[3]
    dv = v.shape[-1] // hkv if q.ndim == 3 else v.shape[3]
    past = pk.shape[2] if pk is not None else 0
    t = past + (k.shape[1] if q.ndim == 3 else k.shape[2])
    grp = hq // hkv
    present_k = te.compute("present_key", (b, hkv, t, dq), _with_past(pk, kload))
    present_v = te.compute("present_value", (b, hkv, t, dv), _with_past(pv, vload))

    scale = a.get("scale")
    if scale is None:
        scale = 1.0 / np.sqrt(dq)
    s = _fimm(float(dt.np.type(np.sqrt(scale))), dt)  # Q and K are each scaled by sqrt(scale)

    def kv_head(h):
        return B.floordiv(h, idx(grp)) if grp > 1 else h

    qk = _matmul_stage(
        "qk", (b, hq, sq, t), lambda bb, h, i, d: qload(bb, h, i, d) * s,
        lambda bb, h, d, j: present_k[bb, kv_head(h), j, d] * s, dq, dt, _acc(dt))
    cap = a["softcap"]
    capped = qk
    if cap > 0:
        capped = te.compute("softcap", qk.shape, lambda *i: B.call(
            "tanh", qk[i] / _fimm(cap, dt)) * _fimm(cap, dt), dt)
    bias = _attention_bias_load(a, mask, nonpad, past, sq, t, dt)
    scores = te.compute("scores", qk.shape, lambda *i: capped[i] + bias(*i), dt)
    pdt = PRECISIONS[a["softmax_precision"]] if a.get("softmax_precision") is not None else dt
    sc = scores if pdt == dt else te.compute("scores_p", qk.shape,
                                             lambda *i: B.cast(pdt, scores[i]), pdt)
    probs = _softmax_stages("softmax", sc, True)
    inf = _fimm(float("inf"), dt)

    def rowdead(bb, h, i):
        r = te.rvar("j", t)
        return te.reduce("max", bias(bb, h, i, r.var), [r])

    dead = te.compute("dead", (b, hq, sq), rowdead, dt)
    probs_dt = te.compute("probs", qk.shape, lambda bb, h, i, j: B.cast(dt, B.select(
        B.eq(dead[bb, h, i], -inf), _fimm(0.0, pdt), probs[bb, h, i, j])), dt)
    y4 = _matmul_stage("pv", (b, hq, sq, dv), lambda *i: probs_dt[i],
                       lambda bb, h, j, d: present_v[bb, kv_head(h), j, d], t, dt, _acc(dt, vdt))
    if q.ndim == 3:
        y = te.compute("y", (b, sq, hq * dv), lambda bb, i, c: y4[
            bb, B.floordiv(c, idx(dv)), i, B.floormod(c, idx(dv))])
    else:
        y = y4
    qk_out = {0: qk, 1: capped, 2: scores, 3: probs_dt}[a["qk_matmul_output_mode"]]
    return [y, present_k, present_v, qk_out][: len(ctx.out_types)]


def _attention_bias_load(a, mask, nonpad, past: int, sq: int, t: int, dt: DType) -> Load:
    """The additive bias of `_attention_bias` as a load function of (b, h, i, j)."""
    zero, ninf = _fimm(0.0, dt), _fimm(float("-inf"), dt)
    lw, rw = a["left_window_size"], a["right_window_size"]

    def load(b, h, i, j):
        if nonpad is not None and past == 0:
            pos = i + (nonpad[(b,)] - idx(sq))
        else:
            pos = i + idx(past) if past else i
        conds = []
        if a["is_causal"]:
            conds.append(j <= pos)
        if lw >= 0:
            conds.append(pos - j <= idx(lw))
        if rw >= 0:
            conds.append(j - pos <= idx(rw))
        if nonpad is not None:
            conds.append(j < nonpad[(b,)])
        bias = zero
        if conds:
            ok = conds[0]
            for c in conds[1:]:
                ok = B.and_(ok, c)
            bias = B.select(ok, zero, ninf)
        if mask is None:
            return bias
        full = (b, h, i, j)[4 - mask.ndim:]
        last = mask.shape[-1]
        mi = tuple(idx(0) if d == 1 else ax for d, ax in zip(mask.shape[:-1], full[:-1],
                                                               strict=True))
        mv = mask[(*mi, topi.safe_index(j, last) if last < t else j)]
        mv = B.select(mv, zero, ninf) if mask.dtype == DType.bool else B.cast(dt, mv)
        if last < t:
            mv = B.select(j < idx(last), mv, ninf)
        return bias + mv

    return load


register(OpDef(
    name="Attention",
    attrs={
        "is_causal": Attr("int", 0),
        "kv_num_heads": Attr("int", None),
        "q_num_heads": Attr("int", None),
        "qk_matmul_output_mode": Attr("int", 0),
        "scale": Attr("float", None),
        "softcap": Attr("float", 0.0),
        "softmax_precision": Attr("int", None),
        "left_window_size": Attr("int", -1),
        "right_window_size": Attr("int", -1),
    },
    inputs=(3, 7),
    outputs=(1, 4),
    infer=_attention_infer,
    ref=_attention_ref,
    compute=_attention_compute,
    kind=Kind.OPAQUE,
    doc="Scaled dot-product attention (MHA/GQA/MQA, masks, KV cache, softcap, windows).",
))


# ---------------------------------------------------------------------------------------
# RotaryEmbedding


def _rotary_infer(ctx: InferCtx) -> list[TensorType]:
    x, cos, sin, pos = (ctx.input(i) for i in range(4))
    check_dtype(ctx, x, HALF_AND_FLOAT, "X")
    for t, what in ((cos, "cos_cache"), (sin, "sin_cache")):
        if t.dtype != x.dtype:
            raise ctx.fail(f"{what} dtype {t.dtype} differs from X dtype {x.dtype}")
    if pos is not None:
        check_dtype(ctx, pos, (DType.int64,), "position_ids")
    a = ctx.attrs
    if x.rank is not None and x.rank not in (3, 4):
        raise ctx.fail(f"X must be 3-D or 4-D, got rank {x.rank}")
    if x.rank == 3 and not a.get("num_heads"):
        raise ctx.fail("3-D X needs the num_heads attribute")
    want_cache = 2 if pos is not None else 3
    for t, what in ((cos, "cos_cache"), (sin, "sin_cache")):
        if t.rank is not None and t.rank != want_cache:
            raise ctx.fail(f"{what} must be {want_cache}-D, got rank {t.rank}")
    if x.rank is not None and cos.rank is not None:
        if x.rank == 4:
            head = x.shape[3]
        else:
            head = _div(x.shape[2], a["num_heads"])
            if isinstance(x.shape[2], int) and x.shape[2] % a["num_heads"]:
                raise ctx.fail(f"hidden size {x.shape[2]} not divisible by num_heads")
        bs = (x.shape[0], x.shape[2] if x.rank == 4 else x.shape[1])
        for t, what in ((cos, "cos_cache"), (sin, "sin_cache"), (pos, "position_ids")):
            if t is not None and t.rank in (2, 3) and (t is pos or pos is None):
                for d, w in zip(t.shape[:2], bs, strict=True):
                    _same(ctx, d, w, f"{what} (batch, sequence) dims")
        rot = a["rotary_embedding_dim"] or head
        if isinstance(rot, int):
            if rot % 2 or (isinstance(head, int) and rot > head):
                raise ctx.fail(f"rotary_embedding_dim {rot} must be even and <= head size")
            _same(ctx, cos.shape[-1], rot // 2, "cos_cache last dim (rotary_embedding_dim/2)")
            _same(ctx, sin.shape[-1], rot // 2, "sin_cache last dim (rotary_embedding_dim/2)")
    return [TensorType(x.shape, x.dtype)]


def _rotary_ref(ctx: EvalCtx, ins: list) -> list[np.ndarray]:
    x, cos, sin, pos = list(ins) + [None] * (4 - len(ins))
    a = ctx.attrs
    shape = x.shape
    if x.ndim == 4:
        xs = x.transpose(0, 2, 1, 3)  # (B, S, H, D)
    else:
        b, s, hd = x.shape
        xs = x.reshape(b, s, a["num_heads"], hd // a["num_heads"])
    rot = a["rotary_embedding_dim"] or xs.shape[3]
    if pos is not None:
        if pos.size and (pos.min() < 0 or pos.max() >= cos.shape[0]):
            raise ExecutionError(f"RotaryEmbedding: position_ids must lie in [0, {cos.shape[0]})")
        cos, sin = cos[pos], sin[pos]
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]  # (B, S, 1, rot/2)
    xr, keep = xs[..., :rot], xs[..., rot:]
    if a["interleaved"]:
        x1, x2 = xr[..., 0::2], xr[..., 1::2]
    else:
        x1, x2 = xr[..., : rot // 2], xr[..., rot // 2:]
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    if a["interleaved"]:
        rotated = np.stack([real, imag], axis=-1).reshape(xr.shape)
    else:
        rotated = np.concatenate([real, imag], axis=-1)
    y = np.concatenate([rotated, keep], axis=-1).astype(x.dtype)
    y = y.transpose(0, 2, 1, 3) if x.ndim == 4 else y.reshape(shape)
    return [np.ascontiguousarray(y)]


def _rotary_compute(ctx: LowerCtx, ins: list) -> list[te.Tensor]:
    x, cos, sin, pos = list(ins) + [None] * (4 - len(ins))
    a = ctx.attrs
    heads = a.get("num_heads")
    head = x.shape[3] if x.ndim == 4 else x.shape[2] // heads
    rot = a["rotary_embedding_dim"] or head
    half = rot // 2

    def body(*ix):
        if x.ndim == 4:
            b, h, s, d = ix
            xl = lambda dd: x[b, h, s, dd]  # noqa: E731
        else:
            b, s, c = ix
            h, d = B.floordiv(c, idx(head)), B.floormod(c, idx(head))
            xl = lambda dd: x[b, s, h * idx(head) + dd]  # noqa: E731
        dc = B.min_(d, idx(rot - 1))  # in range for the pass-through lanes too
        if a["interleaved"]:
            p, second = B.floordiv(dc, idx(2)), B.eq(B.floormod(dc, idx(2)), idx(1))
            x1, x2 = xl(p * idx(2)), xl(p * idx(2) + idx(1))
        else:
            second = dc >= idx(half)
            p = B.select(second, dc - idx(half), dc)
            x1, x2 = xl(p), xl(p + idx(half))
        if pos is not None:
            row = topi.safe_index(pos[b, s], cos.shape[0])
            cv, sv = cos[row, p], sin[row, p]
        else:
            cv, sv = cos[b, s, p], sin[b, s, p]
        real = cv * x1 - sv * x2
        imag = sv * x1 + cv * x2
        y = B.select(second, imag, real)
        return B.select(d < idx(rot), y, xl(d)) if rot < head else y

    return [te.compute("rotary", x.shape, body, x.dtype)]


register(OpDef(
    name="RotaryEmbedding",
    attrs={
        "interleaved": Attr("int", 0),
        "num_heads": Attr("int", None),
        "rotary_embedding_dim": Attr("int", 0),
    },
    inputs=(3, 4),
    infer=_rotary_infer,
    ref=_rotary_ref,
    compute=_rotary_compute,
    kind=Kind.INJECTIVE,
    doc="Rotary positional embedding (RoPE), half-split or interleaved.",
))


# ---------------------------------------------------------------------------------------
# LinearAttention

UPDATE_RULES = ("linear", "gated", "delta", "gated_delta")


def _linear_infer(ctx: InferCtx) -> list[TensorType]:
    q, k, v, state, decay, beta = (ctx.input(i) for i in range(6))
    a = ctx.attrs
    rule = a["update_rule"]
    if rule not in UPDATE_RULES:
        raise ctx.fail(f"update_rule {rule!r} is not one of {', '.join(UPDATE_RULES)}")
    hq, hkv = a["q_num_heads"], a["kv_num_heads"]
    if hq <= 0 or hkv <= 0:
        raise ctx.fail(f"head counts must be positive, got {hq} and {hkv}")
    _check_heads(ctx, hq, hkv)
    check_dtype(ctx, q, HALF_AND_FLOAT, "query")
    for t, what in ((k, "key"), (v, "value"), (decay, "decay"), (beta, "beta")):
        if t is not None and t.dtype != q.dtype:
            raise ctx.fail(f"{what} dtype {t.dtype} differs from query dtype {q.dtype}")
        if t is not None and t.rank is not None and t.rank != 3:
            raise ctx.fail(f"{what} must be 3-D (B, T, H*D), got rank {t.rank}")
    gated, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    if gated != (decay is not None):
        raise ctx.fail(f"update_rule {rule!r} {'requires' if gated else 'forbids'} decay")
    if delta != (beta is not None):
        raise ctx.fail(f"update_rule {rule!r} {'requires' if delta else 'forbids'} beta")
    if q.rank is not None and q.rank != 3:
        raise ctx.fail(f"query must be 3-D (B, T, H*D), got rank {q.rank}")
    b, t = (q.shape[0], q.shape[1]) if q.rank else (UNKNOWN, UNKNOWN)
    for x, what in ((k, "key"), (v, "value"), (decay, "decay"), (beta, "beta")):
        if x is not None and x.rank:
            b = _same(ctx, b, x.shape[0], f"query/{what} batch size")
            t = _same(ctx, t, x.shape[1], f"query/{what} sequence length")
    dk = _div(q.shape[2], hq) if q.rank else UNKNOWN
    dv = _div(v.shape[2], hkv) if v.rank else UNKNOWN
    for x, h, what in ((q, hq, "query"), (k, hkv, "key"), (v, hkv, "value")):
        if x.rank and isinstance(x.shape[2], int) and x.shape[2] % h:
            raise ctx.fail(f"{what} last dim {x.shape[2]} not divisible by {h} heads")
    if k.rank:
        _same(ctx, _div(k.shape[2], hkv), dk, "query/key head size")
    if beta is not None and beta.rank and isinstance(beta.shape[2], int):
        if beta.shape[2] not in (1, hkv):
            raise ctx.fail(f"beta last dim {beta.shape[2]} must be 1 or kv_num_heads {hkv}")
    if decay is not None and decay.rank and isinstance(decay.shape[2], int):
        if isinstance(dk, int) and decay.shape[2] not in (hkv, hkv * dk):
            raise ctx.fail(f"decay last dim {decay.shape[2]} must be {hkv} or {hkv * dk}")
    sdt = q.dtype
    if state is not None:
        check_dtype(ctx, state, HALF_AND_FLOAT, "past_state")
        sdt = state.dtype
        if state.rank is not None and state.rank != 4:
            raise ctx.fail(f"past_state must be 4-D, got rank {state.rank}")
        if state.rank:
            for d, w in zip(state.shape, (b, hkv, dk, dv), strict=True):
                _same(ctx, d, w, "past_state shape")
    return [TensorType((b, t, _mul(hq, dv)), q.dtype), TensorType((b, hkv, dk, dv), sdt)]


def _linear_ref(ctx: EvalCtx, ins: list) -> list[np.ndarray]:
    q, k, v, state, decay, beta = list(ins) + [None] * (6 - len(ins))
    a = ctx.attrs
    hq, hkv = a["q_num_heads"], a["kv_num_heads"]
    f32 = np.float32
    q4, k4, v4 = (_split_heads(x, h).astype(f32) for x, h in ((q, hq), (k, hkv), (v, hkv)))
    b, _, t, dk = q4.shape
    dv = v4.shape[3]
    sdt = state.dtype if state is not None else q.dtype
    s = state.astype(f32) if state is not None else np.zeros((b, hkv, dk, dv), f32)
    g = None
    if decay is not None:  # (B, T, Hkv) or (B, T, Hkv*dk) -> (B, Hkv, T, 1 or dk)
        g = decay.reshape(b, t, hkv, decay.shape[2] // hkv).transpose(0, 2, 1, 3).astype(f32)
    be = None
    if beta is not None:  # (B, T, Hkv or 1) -> (B, Hkv or 1, T, 1)
        be = beta.reshape(b, t, beta.shape[2], 1).transpose(0, 2, 1, 3).astype(f32)
    scale = a["scale"] or 1.0 / np.sqrt(dk)
    out = np.zeros((b, hq, t, dv), f32)
    for i in range(t):
        kt, vt = k4[:, :, i], v4[:, :, i]
        if g is not None:
            s = s * np.exp(g[:, :, i])[..., None]
        if be is not None:
            vt = be[:, :, i] * (vt - np.einsum("bhdm,bhd->bhm", s, kt))
        s = s + kt[..., :, None] * vt[..., None, :]
        read = np.repeat(s, hq // hkv, axis=1)
        out[:, :, i] = scale * np.einsum("bhd,bhdm->bhm", q4[:, :, i], read)
    return [_merge_heads(out).astype(q.dtype), s.astype(sdt)]


def _steps_select(steps: list[te.Tensor], t: Expr, load: Callable[[te.Tensor], Expr]) -> Expr:
    """`load(steps[t])` for a loop index t over a static number of per-step stages."""
    e = load(steps[-1])
    for i in range(len(steps) - 2, -1, -1):
        e = B.select(B.eq(t, idx(i)), load(steps[i]), e)
    return e


def _linear_compute(ctx: LowerCtx, ins: list) -> list[te.Tensor]:
    """The reference's recurrence, one materialised state stage per time step (float32)."""
    q, k, v, state, decay, beta = list(ins) + [None] * (6 - len(ins))
    a = ctx.attrs
    hq, hkv = a["q_num_heads"], a["kv_num_heads"]
    f32 = DType.float32
    b, t = q.shape[0], q.shape[1]
    dk, dv = q.shape[2] // hq, v.shape[2] // hkv
    grp = hq // hkv

    def ld(x, heads_dim, bb, i, h, d):
        e = x[bb, i, h * idx(heads_dim) + d]
        return e if e.dtype == f32 else B.cast(f32, e)

    sdt = state.dtype if state is not None else q.dtype
    shape = (b, hkv, dk, dv)
    if state is not None:
        s = te.compute("state0", shape, lambda *i: B.cast(f32, state[i]), f32)
    else:
        s = te.compute("state0", shape, lambda *i: _fimm(0.0, f32), f32)
    gper = decay.shape[2] // hkv if decay is not None else 0
    outs = []
    for i in range(t):
        ii = idx(i)
        prev = s
        if decay is not None:
            def decayed(bb, h, d, m, prev=prev, ii=ii):
                col = h * idx(gper) + (d if gper > 1 else idx(0))
                g = decay[bb, ii, col]
                return prev[bb, h, d, m] * B.call("exp", g if g.dtype == f32 else B.cast(f32, g))
            prev = te.compute(f"decayed{i}", shape, decayed, f32)
        vt: Load = lambda bb, h, m, ii=ii: ld(v, dv, bb, ii, h, m)  # noqa: E731
        if beta is not None:
            def kv_read(bb, h, m, prev=prev, ii=ii):
                r = te.rvar("d", dk)
                return te.reduce("sum", prev[bb, h, r.var, m] * ld(k, dk, bb, ii, h, r.var), [r])

            kv = te.compute(f"kv{i}", (b, hkv, dv), kv_read, f32)

            def delta(bb, h, m, kv=kv, ii=ii):
                hb = h if beta.shape[2] == hkv else idx(0)
                be = beta[bb, ii, hb]
                be = be if be.dtype == f32 else B.cast(f32, be)
                return be * (ld(v, dv, bb, ii, h, m) - kv[bb, h, m])

            vstage = te.compute(f"v{i}", (b, hkv, dv), delta, f32)
            vt = lambda bb, h, m, vs=vstage: vs[bb, h, m]  # noqa: E731
        s = te.compute(f"state{i + 1}", shape, lambda bb, h, d, m, prev=prev, vt=vt, ii=ii:
                       prev[bb, h, d, m] + ld(k, dk, bb, ii, h, d) * vt(bb, h, m),
                       f32, inline=False)

        def read(bb, h, m, s=s, ii=ii):
            r = te.rvar("d", dk)
            hk = B.floordiv(h, idx(grp)) if grp > 1 else h
            return te.reduce("sum", ld(q, dk, bb, ii, h, r.var) * s[bb, hk, r.var, m], [r])

        outs.append(te.compute(f"out{i}", (b, hq, dv), read, f32))

    def scaled(e: Expr) -> Expr:
        if a["scale"]:
            return _fimm(a["scale"], f32) * e
        f64 = DType.float64
        return B.cast(f32, _fimm(float(1.0 / np.sqrt(dk)), f64) * B.cast(f64, e))

    def y(bb, i, c):
        if not outs:  # no time steps: an empty output
            return _fimm(0.0, q.dtype)
        h, m = B.floordiv(c, idx(dv)), B.floormod(c, idx(dv))
        return B.cast(q.dtype, scaled(_steps_select(outs, i, lambda o: o[bb, h, m])))

    ys = te.compute("y", (b, t, hq * dv), y, q.dtype)
    final = te.compute("state", shape, lambda *i: B.cast(sdt, s[i]), sdt)
    return [ys, final][: len(ctx.out_types)]


register(OpDef(
    name="LinearAttention",
    attrs={
        "chunk_size": Attr("int", 64),
        "kv_num_heads": Attr("int"),
        "q_num_heads": Attr("int"),
        "scale": Attr("float", 0.0),
        "update_rule": Attr("string", "gated_delta"),
    },
    inputs=(3, 6),
    outputs=(1, 2),
    infer=_linear_infer,
    ref=_linear_ref,
    compute=_linear_compute,
    kind=Kind.OPAQUE,
    doc="Linear attention recurrence (linear, gated, delta, gated_delta rules).",
))


# ---------------------------------------------------------------------------------------
# FlexAttention (domain ai.onnx.preview)


def _flex_softmax_dtype(ctx, dtype: DType) -> DType:
    p = ctx.attrs.get("softmax_precision")
    if p is not None:
        return PRECISIONS[p]
    return DType.float64 if dtype == DType.float64 else DType.float32


def _flex_infer(ctx: InferCtx) -> list[TensorType]:
    q, k, v = ctx.input(0), ctx.input(1), ctx.input(2)
    check_dtype(ctx, q, FLOATS, "Q")
    for t, what in ((k, "K"), (v, "V")):
        if t.dtype != q.dtype:
            raise ctx.fail(f"{what} dtype {t.dtype} differs from Q dtype {q.dtype}")
    p = ctx.attrs.get("softmax_precision")
    if p is not None and p not in PRECISIONS:
        raise ctx.fail(f"softmax_precision {p} is not 1, 10, 11 or 16")
    for t, what in ((q, "Q"), (k, "K"), (v, "V")):
        if t.rank is not None and t.rank != 4:
            raise ctx.fail(f"{what} must be 4-D, got rank {t.rank}")
    if q.rank is None or k.rank is None or v.rank is None:
        return [TensorType((UNKNOWN,) * 4, q.dtype)]
    b, hq, sq, e = q.shape
    _same(ctx, _same(ctx, b, k.shape[0], "batch size"), v.shape[0], "batch size")
    hkv = _same(ctx, k.shape[1], v.shape[1], "K/V head count")
    _same(ctx, k.shape[2], v.shape[2], "K/V sequence length")
    _same(ctx, e, k.shape[3], "Q/K head size")
    _check_heads(ctx, hq, hkv)
    return [TensorType((b, hq, sq, v.shape[3]), q.dtype)]


def _flex_ref(ctx: EvalCtx, ins: list) -> list[np.ndarray]:
    q, k, v = ins[:3]
    a = ctx.attrs
    dt = q.dtype
    hq, hkv = q.shape[1], k.shape[1]
    if hq != hkv:
        k = np.repeat(k, hq // hkv, axis=1)
        v = np.repeat(v, hq // hkv, axis=1)
    scale = a.get("scale")
    if scale is None:
        scale = 1.0 / np.sqrt(q.shape[3])
    s = np.sqrt(np.float32(scale)).astype(dt)
    cdt = _flex_softmax_dtype(ctx, DType.from_np(dt)).np
    scores = np.matmul(q * s, np.swapaxes(k * s, -1, -2)).astype(dt).astype(cdt)
    if "score_mod" in a:
        scores = np.asarray(ctx.run_subgraph(a["score_mod"], [scores])[0], dtype=cdt)
    e = np.exp(scores - np.max(scores, axis=-1, keepdims=True))
    probs = e / np.sum(e, axis=-1, keepdims=True)
    if "prob_mod" in a:
        probs = np.asarray(ctx.run_subgraph(a["prob_mod"], [probs])[0], dtype=cdt)
    return [np.matmul(probs, v.astype(cdt)).astype(dt)]


def _flex_compute(ctx: LowerCtx, ins: list) -> list[te.Tensor]:
    q, k, v = ins[:3]
    a = ctx.attrs
    dt = q.dtype
    b, hq, sq, e = q.shape
    hkv, skv, dv = k.shape[1], k.shape[2], v.shape[3]
    grp = hq // hkv
    scale = a.get("scale")
    if scale is None:
        scale = 1.0 / np.sqrt(e)
    s = _fimm(float(np.sqrt(np.float32(scale)).astype(dt.np)), dt)
    cdt = _flex_softmax_dtype(ctx, dt)

    def kv_head(h):
        return B.floordiv(h, idx(grp)) if grp > 1 else h

    qk = _matmul_stage("qk", (b, hq, sq, skv), lambda bb, h, i, d: q[bb, h, i, d] * s,
                       lambda bb, h, d, j: k[bb, kv_head(h), j, d] * s, e, dt, _acc(dt))
    scores = qk if cdt == dt else te.compute("scores", qk.shape,
                                             lambda *i: B.cast(cdt, qk[i]), cdt)
    if a.get("score_mod") is not None:
        scores = _mod_result(ctx, a["score_mod"], scores, cdt)
    probs = _softmax_stages("softmax", scores, False)
    if a.get("prob_mod") is not None:
        probs = _mod_result(ctx, a["prob_mod"], probs, cdt)

    def vload(bb, h, j, d):
        x = v[bb, kv_head(h), j, d]
        return x if x.dtype == cdt else B.cast(cdt, x)

    return [_matmul_stage("pv", (b, hq, sq, dv), lambda *i: probs[i], vload, skv, dt,
                          _acc(cdt))]


def _mod_result(ctx: LowerCtx, fn, x: te.Tensor, cdt: DType) -> te.Tensor:
    (r,) = inline_function(ctx, fn, [x])[:1]
    if r.shape != x.shape:
        raise ctx.fail(f"subgraph @{fn.name} returns shape {list(r.shape)}, expected "
                       f"{list(x.shape)}")
    if r.dtype == cdt:
        return r
    return te.compute("mod", r.shape, lambda *i: B.cast(cdt, r[i]), cdt)


register(OpDef(
    name="FlexAttention",
    domain="ai.onnx.preview",
    attrs={
        "prob_mod": Attr("graph", None),
        "scale": Attr("float", None),
        "score_mod": Attr("graph", None),
        "softmax_precision": Attr("int", None),
    },
    inputs=(3, 3),
    infer=_flex_infer,
    ref=_flex_ref,
    compute=_flex_compute,
    kind=Kind.OPAQUE,
    doc="Attention with score_mod / prob_mod subgraphs (ai.onnx.preview).",
))
