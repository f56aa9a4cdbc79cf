"""Recurrent ops: RNN, GRU, LSTM (opset 22 semantics; older opsets lack `layout`, default 0).

One shared driver handles directions, `layout`, `sequence_lens`, initial states and the
activation list; each op supplies only its cell. The time loop is serial, every step is
vectorised over the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.ops.base import Attr, EvalCtx, InferCtx, Kind, OpDef, check_dtype, dim_eq, register

FLOATS = (DType.float16, DType.bfloat16, DType.float32, DType.float64)
DIRECTIONS = {"forward": 1, "reverse": 1, "bidirectional": 2}

# activation name (lower case) -> (fn(x, alpha, beta), default alpha, default beta)
ACTIVATIONS: dict[str, tuple[Callable, float | None, float | None]] = {
    "relu": (lambda x, a, b: np.maximum(x, 0), None, None),
    "tanh": (lambda x, a, b: np.tanh(x), None, None),
    "sigmoid": (lambda x, a, b: 1 / (1 + np.exp(-x)), None, None),
    "affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: np.where(x >= 0, x, a * x), 0.01, None),
    "thresholdedrelu": (lambda x, a, b: np.where(x > a, x, 0), 1.0, None),
    "scaledtanh": (lambda x, a, b: a * np.tanh(b * x), 1.0, 1.0),
    "hardsigmoid": (lambda x, a, b: np.clip(a * x + b, 0, 1), 0.2, 0.5),
    "elu": (lambda x, a, b: np.where(x >= 0, x, a * (np.exp(x) - 1)), 1.0, None),
    "softsign": (lambda x, a, b: x / (1 + np.abs(x)), None, None),
    "softplus": (lambda x, a, b: np.logaddexp(0, x), None, None),
}


class _Family:
    def __init__(self, name: str, gates: int, default_acts: tuple[str, ...], cell: Callable):
        self.name = name
        self.gates = gates  # G: W is (dirs, G*hidden, input)
        self.default_acts = default_acts
        self.cell = cell


# ---------------------------------------------------------------------------------------
# Type relation


def _activation_list(ctx, dirs: int, defaults: tuple[str, ...]) -> list[str]:
    acts = ctx.attrs.get("activations")
    n = len(defaults)
    if acts is None:
        return [a.lower() for a in defaults] * dirs
    if len(acts) not in (n, 2 * n):
        raise ctx.fail(f"expects {n * dirs} activations, got {len(acts)}")
    acts = _activation_list_eval(ctx.attrs, dirs, defaults)
    for a in acts:
        if a not in ACTIVATIONS:
            raise ctx.fail(f"unknown activation {a!r}")
    return acts


def _infer(fam: _Family):
    def infer(ctx: InferCtx) -> list[TensorType]:
        x, w, r = ctx.input(0), ctx.input(1), ctx.input(2)
        a = ctx.attrs
        check_dtype(ctx, x, FLOATS, "X")
        if a["direction"] not in DIRECTIONS:
            raise ctx.fail(f"direction {a['direction']!r} is not forward, reverse or bidirectional")
        if a["layout"] not in (0, 1):
            raise ctx.fail(f"layout must be 0 or 1, got {a['layout']}")
        if "clip" in a and not a["clip"] > 0:
            raise ctx.fail(f"clip must be positive, got {a['clip']}")
        dirs = DIRECTIONS[a["direction"]]
        _activation_list(ctx, dirs, fam.default_acts)
        names = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
        for i, t in enumerate(ctx.inputs):
            if t is not None and i != 4 and t.dtype != x.dtype:
                raise ctx.fail(f"{names[i]} dtype {t.dtype} differs from X dtype {x.dtype}")
        if ctx.input(4) is not None:
            check_dtype(ctx, ctx.input(4), (DType.int32,), "sequence_lens")
        for t, name in ((x, "X"), (w, "W"), (r, "R")):
            if t.rank is not None and t.rank != 3:
                raise ctx.fail(f"{name} must be 3-D, got rank {t.rank}")
        g = fam.gates
        hidden: Dim = a.get("hidden_size", UNKNOWN)
        if "hidden_size" in a and a["hidden_size"] <= 0:
            raise ctx.fail(f"hidden_size must be positive, got {a['hidden_size']}")
        if hidden == UNKNOWN and r.rank is not None:
            hidden = r.shape[2]
        if hidden == UNKNOWN and w.rank is not None and isinstance(w.shape[1], int):
            hidden = w.shape[1] // g
        gh = hidden * g if isinstance(hidden, int) else UNKNOWN
        seq, batch, inp = x.shape if x.rank is not None else (UNKNOWN,) * 3
        if a["layout"] == 1:
            seq, batch = batch, seq
        _want(ctx, w, "W", (dirs, gh, inp))
        _want(ctx, r, "R", (dirs, gh, hidden))
        _want(ctx, ctx.input(3), "B", (dirs, _mul(gh, 2)))
        _want(ctx, ctx.input(4), "sequence_lens", (batch,))
        state = (dirs, batch, hidden) if a["layout"] == 0 else (batch, dirs, hidden)
        _want(ctx, ctx.input(5), "initial_h", state)
        if fam.gates == 4:
            _want(ctx, ctx.input(6), "initial_c", state)
            _want(ctx, ctx.input(7), "P", (dirs, _mul(hidden, 3)))
        y = (seq, dirs, batch, hidden) if a["layout"] == 0 else (batch, seq, dirs, hidden)
        outs = [TensorType(y, x.dtype), TensorType(state, x.dtype), TensorType(state, x.dtype)]
        return outs[: ctx.num_outputs]

    return infer


def _mul(d: Dim, n: int) -> Dim:
    return d * n if isinstance(d, int) else UNKNOWN


def _want(ctx: InferCtx, t: TensorType | None, name: str, shape: tuple[Dim, ...]) -> None:
    if t is None or t.shape is None:
        return
    if len(t.shape) != len(shape):
        raise ctx.fail(f"{name} must have rank {len(shape)}, got shape {list(t.shape)}")
    for d, w in zip(t.shape, shape, strict=True):
        if dim_eq(d, w) is False:
            raise ctx.fail(f"{name} has shape {list(t.shape)}, expected {list(shape)}")


# ---------------------------------------------------------------------------------------
# Cells: (gates_x, h, c, R, Rb, P, f, g, h_act, attrs) -> (h, c)
# gates_x = X_t W^T + Wb for this step, shape (batch, G*hidden).


def _rnn_cell(gx, h, c, r, rb, p, acts, attrs):
    f = acts[0]
    return f(gx + h @ r.T + rb), c


def _gru_cell(gx, h, c, r, rb, p, acts, attrs):
    f, g = acts[0], acts[1]
    n = h.shape[-1]
    xz, xr, xh = gx[:, :n], gx[:, n:2 * n], gx[:, 2 * n:]
    rz, rr, rh = r[:n], r[n:2 * n], r[2 * n:]
    bz, br, bh = rb[:n], rb[n:2 * n], rb[2 * n:]
    z = f(xz + h @ rz.T + bz)
    rg = f(xr + h @ rr.T + br)
    if attrs["linear_before_reset"]:
        hh = g(xh + rg * (h @ rh.T + bh))
    else:
        hh = g(xh + (rg * h) @ rh.T + bh)
    return (1 - z) * hh + z * h, c


def _lstm_cell(gx, h, c, r, rb, p, acts, attrs):
    f, g, hf = acts[0], acts[1], acts[2]
    n = h.shape[-1]
    gates = gx + h @ r.T + rb
    gi, go, gf, gc = (gates[:, k * n:(k + 1) * n] for k in range(4))
    pi, po, pf = p[:n], p[n:2 * n], p[2 * n:]
    i = f(gi + pi * c)
    fg = 1 - i if attrs["input_forget"] else f(gf + pf * c)
    c = fg * c + i * g(gc)
    o = f(go + po * c)
    return o * hf(c), c


# ---------------------------------------------------------------------------------------
# Reference driver


def _bind_activations(attrs, names: list[str]) -> list[Callable]:
    """Activation callables; `clip` bounds the gate inputs (not LSTM's h(C_t), as in ORT)."""
    alphas = list(attrs.get("activation_alpha", ()))
    betas = list(attrs.get("activation_beta", ()))
    clip = attrs.get("clip")
    out = []
    for k, name in enumerate(names):
        fn, da, db = ACTIVATIONS[name]
        lim = clip if k < 2 else None
        al = alphas.pop(0) if da is not None and alphas else da
        be = betas.pop(0) if db is not None and betas else db

        def act(x, fn=fn, al=al, be=be, lim=lim):
            if lim is not None:
                x = np.clip(x, -lim, lim)
            return fn(x, al, be).astype(x.dtype, copy=False)

        out.append(act)
    return out


def _ref(fam: _Family):
    def ref(ctx: EvalCtx, ins: list) -> list[np.ndarray]:
        x, w, r, b, lens, h0, c0, p = list(ins) + [None] * (8 - len(ins))
        a = ctx.attrs
        dt = x.dtype
        ct = dt if dt in (np.float32, np.float64) else np.dtype(np.float32)
        if a["layout"] == 1:  # batch-major -> time-major
            x = x.transpose(1, 0, 2)
            h0 = None if h0 is None else h0.transpose(1, 0, 2)
            c0 = None if c0 is None else c0.transpose(1, 0, 2)
        x = x.astype(ct)
        seq, batch, _ = x.shape
        dirs, gh, _ = w.shape
        n = r.shape[2]
        if b is None:
            b = np.zeros((dirs, 2 * gh), ct)
        lens = np.full(batch, seq, np.int64) if lens is None else lens.astype(np.int64)
        if lens.size and (lens.min() < 0 or lens.max() > seq):
            raise ExecutionError(f"{fam.name}: sequence_lens must lie in [0, {seq}]")
        zeros = np.zeros((dirs, batch, n), ct)
        h0 = zeros if h0 is None else h0.astype(ct)
        c0 = zeros if c0 is None else c0.astype(ct)
        p = np.zeros((dirs, 3 * n), ct) if p is None else p.astype(ct)
        names = _activation_list_eval(a, dirs, fam.default_acts)
        k = len(fam.default_acts)
        y = np.zeros((seq, dirs, batch, n), ct)
        yh = np.zeros((dirs, batch, n), ct)
        yc = np.zeros((dirs, batch, n), ct)
        reverse = [a["direction"] == "reverse" or d == 1 for d in range(dirs)]
        bidx = np.arange(batch)
        for d in range(dirs):
            acts = _bind_activations(a, names[d * k:(d + 1) * k])
            wd, rd = w[d].astype(ct), r[d].astype(ct)
            wb, rb = b[d, :gh].astype(ct), b[d, gh:].astype(ct)
            gx_all = x @ wd.T + wb  # (seq, batch, G*hidden)
            h, c = h0[d], c0[d]
            for s in range(seq):
                valid = s < lens
                t = np.where(reverse[d], lens - 1 - s, s).clip(0, seq - 1)
                h_new, c_new = fam.cell(gx_all[t, bidx], h, c, rd, rb, p[d], acts, a)
                h = np.where(valid[:, None], h_new, h)
                c = np.where(valid[:, None], c_new, c)
                y[t[valid], d, bidx[valid]] = h[valid]
            empty = (lens == 0)[:, None]  # an empty sequence has zero final states
            yh[d], yc[d] = np.where(empty, 0, h), np.where(empty, 0, c)
        if a["layout"] == 1:
            y = y.transpose(2, 0, 1, 3)
            yh, yc = yh.transpose(1, 0, 2), yc.transpose(1, 0, 2)
        outs = [np.ascontiguousarray(o).astype(dt) for o in (y, yh, yc)]
        return outs[: ctx.num_outputs]

    return ref


def _activation_list_eval(attrs, dirs: int, defaults: tuple[str, ...]) -> list[str]:
    """One activation list per direction, concatenated (a single list serves both)."""
    acts = [s.lower() for s in attrs.get("activations", defaults)]
    n = len(defaults)
    return acts * 2 if len(acts) == n and dirs == 2 else acts[: n * dirs]


def _register(fam: _Family, extra: dict[str, Attr], n_in: int, n_out: int) -> None:
    attrs = {
        "activation_alpha": Attr("floats", None),
        "activation_beta": Attr("floats", None),
        "activations": Attr("strings", None),
        "clip": Attr("float", None),
        "direction": Attr("string", "forward"),
        "hidden_size": Attr("int", None),
        "layout": Attr("int", 0),
        **extra,
    }
    register(OpDef(
        name=fam.name,
        attrs=attrs,
        inputs=(3, n_in),
        outputs=(0, n_out),
        infer=_infer(fam),
        ref=_ref(fam),
        kind=Kind.OPAQUE,
        doc=f"{fam.name} recurrence over a sequence (forward, reverse or bidirectional).",
    ))


_register(_Family("RNN", 1, ("Tanh",), _rnn_cell), {}, 6, 2)
_register(_Family("GRU", 3, ("Sigmoid", "Tanh"), _gru_cell),
          {"linear_before_reset": Attr("int", 0)}, 6, 2)
_register(_Family("LSTM", 4, ("Sigmoid", "Tanh", "Tanh"), _lstm_cell),
          {"input_forget": Attr("int", 0)}, 8, 3)
