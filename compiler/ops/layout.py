"""Blocked data layouts (the x86 NCHW[x]c scheme): anvil.LayoutTransform and anvil.ConvNCHWc.

A blocked layout `NCHW{b}c` splits the channel axis into an outer count and an inner block of
`b` channels, stored last: NCHW [N, C, H, W] holds element (n, c, h, w) at
[n, c // b, h, w, c % b] of NCHW{b}c [N, C/b, H, W, b]. The inner block is the contiguous
axis, so a convolution in this layout vectorises over output channels.

`anvil.ConvNCHWc` is a 2-D convolution (group 1, explicit pads) with data in NCHW{bi}c,
weights pre-packed as [O/bo, C/bi, KH, KW, bi, bo], an optional bias [O/bo, bo], and its
output in NCHW{bo}c. Both ops are made by the `layout` graph pass; they are not ONNX ops.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import numpy as np

from compiler.errors import ExecutionError
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
from compiler.ops.base import (
    REQUIRED,
    Attr,
    EvalCtx,
    InferCtx,
    Kind,
    OpDef,
    check_dtype,
    register,
)
from compiler.ops.window import (
    FLOATS,
    check_channels,
    check_rank,
    im2col,
    make_window,
    need,
    spatial_out,
    work_dtype,
    work_type,
)

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

DOMAIN = "anvil"
PLAIN = "NCHW"
_BLOCKED = re.compile(r"NCHW([1-9][0-9]*)c\Z")


def blocked(block: int) -> str:
    """The name of the blocked layout with `block` channels per block."""
    return f"NCHW{block}c"


def block_of(layout: str) -> int | None:
    """The block size of a blocked layout name, 0 for plain NCHW, None if unknown."""
    if layout == PLAIN:
        return 0
    m = _BLOCKED.match(layout)
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------------------------------
# numpy packing (shared with the layout pass)


def pack(x: np.ndarray, block: int) -> np.ndarray:
    """NCHW -> NCHW{block}c."""
    n, c, h, w = x.shape
    return np.ascontiguousarray(x.reshape(n, c // block, block, h, w).transpose(0, 1, 3, 4, 2))


def unpack(x: np.ndarray) -> np.ndarray:
    """NCHW{b}c -> NCHW."""
    n, cb, h, w, b = x.shape
    return np.ascontiguousarray(x.transpose(0, 1, 4, 2, 3).reshape(n, cb * b, h, w))


def pack_weight(w: np.ndarray, block_in: int, block_out: int) -> np.ndarray:
    """OIHW [O, C, KH, KW] -> [O/bo, C/bi, KH, KW, bi, bo]."""
    o, c, kh, kw = w.shape
    r = w.reshape(o // block_out, block_out, c // block_in, block_in, kh, kw)
    return np.ascontiguousarray(r.transpose(0, 2, 4, 5, 3, 1))


def pack_bias(b: np.ndarray, block_out: int) -> np.ndarray:
    """[O] -> [O/bo, bo]."""
    return np.ascontiguousarray(b.reshape(-1, block_out))


# ---------------------------------------------------------------------------------------
# anvil.LayoutTransform


def _layouts(fail, attrs: dict) -> tuple[int, int]:
    src, dst = attrs["src"], attrs["dst"]
    bs, bd = block_of(src), block_of(dst)
    for name, b in ((src, bs), (dst, bd)):
        if b is None:
            raise fail(f"unknown layout {name!r} (expected NCHW or NCHW<b>c)")
    if (bs == 0) == (bd == 0):
        raise fail(f"unsupported transform {src} -> {dst} (one side must be NCHW)")
    return bs, bd  # type: ignore[return-value]


def transform_infer(ctx: InferCtx) -> list[TensorType]:
    x = need(ctx, 0, "data")
    bs, bd = _layouts(ctx.fail, ctx.attrs)
    if bd:  # NCHW -> blocked
        xs = check_rank(ctx, x, "data", rank=4)
        if xs is None:
            return [TensorType(None, x.dtype)]
        c = xs[1]
        if isinstance(c, int) and c % bd:
            raise ctx.fail(f"channels {c} not divisible by block {bd}")
        cb: Dim = c // bd if isinstance(c, int) else UNKNOWN
        return [TensorType((xs[0], cb, xs[2], xs[3], bd), x.dtype)]
    xs = check_rank(ctx, x, "data", rank=5)
    if xs is None:
        return [TensorType(None, x.dtype)]
    check_channels(ctx, xs[4], bs, f"inner block of {ctx.attrs['src']}")
    c = xs[1] * bs if isinstance(xs[1], int) else UNKNOWN
    return [TensorType((xs[0], c, xs[2], xs[3]), x.dtype)]


def transform_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    _, bd = _layouts(lambda m: ExecutionError(f"{ctx.op}: {m}"), ctx.attrs)
    x = inputs[0]
    return [pack(x, bd) if bd else unpack(x)]


def transform_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    x = ins[0]
    _, bd = _layouts(ctx.fail, ctx.attrs)
    shape = ctx.out_types[0].shape
    if bd:
        def body(n: Expr, co: Expr, h: Expr, w: Expr, ci: Expr) -> Expr:
            return x[(n, co * te.idx(bd) + ci, h, w)]
    else:
        bs = x.shape[4]

        def body(n: Expr, c: Expr, h: Expr, w: Expr) -> Expr:  # type: ignore[misc]
            return x[(n, B.floordiv(c, te.idx(bs)), h, w, B.floormod(c, te.idx(bs)))]

    return [te.compute(ctx.op, shape, body, x.dtype)]


register(OpDef(
    "anvil.LayoutTransform", transform_infer, transform_ref, domain=DOMAIN,
    attrs={"src": Attr("string", REQUIRED), "dst": Attr("string", REQUIRED)},
    kind=Kind.INJECTIVE, compute=transform_compute,
    doc="convert between NCHW and a channel-blocked NCHW<b>c layout",
))


# ---------------------------------------------------------------------------------------
# anvil.ConvNCHWc

CONV_NCHWC_ATTRS = {
    "block_in": Attr("int", REQUIRED),
    "block_out": Attr("int", REQUIRED),
    "dilations": Attr("ints", None),
    "group": Attr("int", 1),
    "pads": Attr("ints", None),
    "strides": Attr("ints", None),
}


def conv_nchwc_infer(ctx: InferCtx) -> list[TensorType]:
    x, w = need(ctx, 0, "data"), need(ctx, 1, "weight")
    check_dtype(ctx, x, FLOATS, "data")
    if w.dtype != x.dtype:
        raise ctx.fail(f"weight dtype {w.dtype} != data dtype {x.dtype}")
    if ctx.attrs.get("group", 1) != 1:
        raise ctx.fail(f"group {ctx.attrs['group']} is not supported (only 1)")
    bi, bo = ctx.attrs["block_in"], ctx.attrs["block_out"]
    if bi < 1 or bo < 1:
        raise ctx.fail(f"blocks {bi}, {bo} must be positive")
    xs = check_rank(ctx, x, "data", rank=5) or (UNKNOWN,) * 5
    ws = check_rank(ctx, w, "weight", rank=6) or (UNKNOWN,) * 6
    check_channels(ctx, xs[4], bi, "data inner block != block_in")
    check_channels(ctx, ws[4], bi, "weight.shape[4] != block_in")
    check_channels(ctx, ws[5], bo, "weight.shape[5] != block_out")
    check_channels(ctx, ws[1], xs[1], "weight.shape[1] != data channel blocks")
    b = ctx.input(2)
    if b is not None:
        if b.dtype != x.dtype:
            raise ctx.fail(f"bias dtype {b.dtype} != {x.dtype}")
        bs = check_rank(ctx, b, "bias", rank=2)
        if bs is not None:
            check_channels(ctx, bs[0], ws[0], "bias.shape[0] != output channel blocks")
            check_channels(ctx, bs[1], bo, "bias.shape[1] != block_out")
    kernel = ws[2:4]
    if not all(isinstance(k, int) for k in kernel):
        return [TensorType((xs[0], ws[0], UNKNOWN, UNKNOWN, bo), x.dtype)]
    win = make_window(ctx.attrs, kernel, ctx.fail)  # type: ignore[arg-type]
    return [TensorType((xs[0], ws[0]) + spatial_out(ctx, win, xs[2:4]) + (bo,), x.dtype)]


def conv_nchwc_ref(ctx: EvalCtx, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """im2col in blocked order: the sum runs over (ic_outer, kh, kw, ic_inner) as one
    contraction, in float32 (float64 stays)."""
    x, w, b = (list(inputs) + [None])[:3]
    wt = work_dtype(x.dtype)
    nb, cb, _, _, bi = x.shape
    ob, _, kh, kw, _, bo = w.shape
    win = make_window(ctx.attrs, (kh, kw))
    out, begin, _ = win.resolve(x.shape[2:4])
    cols = im2col(unpack(x.astype(wt, copy=False)), win, out, begin)  # N, C, K, OH, OW
    p = math.prod(out)
    rhs = cols.reshape(nb, cb, bi, kh * kw, p).transpose(0, 1, 3, 2, 4)
    rhs = rhs.reshape(nb, cb * kh * kw * bi, p)
    lhs = w.astype(wt, copy=False).transpose(0, 5, 1, 2, 3, 4).reshape(ob * bo, -1)
    y = np.matmul(lhs, rhs).reshape((nb, ob, bo) + tuple(out)).transpose(0, 1, 3, 4, 2)
    if b is not None:
        y = y + b.astype(wt).reshape(1, ob, 1, 1, bo)
    return [np.ascontiguousarray(y).astype(x.dtype, copy=False)]


def conv_nchwc_compute(ctx: LowerCtx, ins: list[te.Tensor | None]) -> list[te.Tensor]:
    """out[n, oc, oh, ow, ob] = sum over (ic, kh, kw, ib) of x[n, ic, ih, iw, ib] *
    w[oc, ic, kh, kw, ib, ob]: the output-channel block is the innermost axis."""
    x, w, bias = (list(ins) + [None])[:3]
    out_t = ctx.out_types[0]
    acc = work_type(x.dtype)
    _, cb, kh, kw, bi, _ = w.shape
    win = make_window(ctx.attrs, (kh, kw))
    out, begin, _ = win.resolve(x.shape[2:4])

    def body(n: Expr, oc: Expr, oh: Expr, ow: Expr, ob: Expr) -> te.Reduction:
        rc, rh, rw, ri = (te.rvar("ric", cb), te.rvar("rkh", kh), te.rvar("rkw", kw),
                          te.rvar("rib", bi))
        pos = topi.window_positions((oh, ow), (rh.var, rw.var), win.strides, win.dilations,
                                    begin)
        cond = topi.window_guard(pos, x.shape[2:4], out, (kh, kw), win.strides,
                                 win.dilations, begin)
        v = topi.to_dtype(acc, x[(n, rc.var, *pos, ri.var)]) \
            * topi.to_dtype(acc, w[(oc, rc.var, rh.var, rw.var, ri.var, ob)])
        return te.reduce("sum", v, [rc, rh, rw, ri], where=cond)

    red = topi.stage(ctx.op, out_t.shape, body, acc)
    if bias is None and acc == out_t.dtype:
        return [red]

    def finish(*i: Expr) -> Expr:
        v: Expr = red[i]
        if bias is not None:
            v = v + topi.to_dtype(acc, bias[(i[1], i[4])])
        return topi.to_dtype(out_t.dtype, v)

    return [topi.stage(f"{ctx.op}_out", out_t.shape, finish, out_t.dtype)]


register(OpDef(
    "anvil.ConvNCHWc", conv_nchwc_infer, conv_nchwc_ref, domain=DOMAIN,
    attrs=CONV_NCHWC_ATTRS, inputs=(2, 3), kind=Kind.COMPLEX_OUT_FUSABLE,
    compute=conv_nchwc_compute,
    doc="2-D convolution in the channel-blocked NCHW<b>c layout with pre-packed weights",
))
