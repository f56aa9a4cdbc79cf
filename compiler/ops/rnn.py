"""Recurrent ops: RNN, GRU, LSTM (opset 22 semantics; older opsets lack `layout`, default 0).

One shared driver handles directions, `layout`, `sequence_lens`, initial states and the
activation list; each op supplies only its cell. The time loop is serial, every step is
vectorised over the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
from compiler.lower.te import idx
from compiler.ops.base import Attr, EvalCtx, InferCtx, Kind, OpDef, check_dtype, dim_eq, register

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

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


def _activation_specs(attrs, names: list[str]) -> list[tuple[str, Any, Any, Any]]:
    """(name, alpha, beta, clip) per activation. Explicit alphas/betas are taken in order by
    the activations that have such a parameter; `clip` bounds the gate inputs (not LSTM's
    h(C_t), as in ORT)."""
    alphas = list(attrs.get("activation_alpha", None) or ())
    betas = list(attrs.get("activation_beta", None) or ())
    clip = attrs.get("clip")
    out = []
    for k, name in enumerate(names):
        _, da, db = ACTIVATIONS[name]
        al = alphas.pop(0) if da is not None and alphas else da
        be = betas.pop(0) if db is not None and betas else db
        out.append((name, al, be, clip if k < 2 else None))
    return out


def _bind_activations(attrs, names: list[str]) -> list[Callable]:
    """Activation callables (see `_activation_specs`)."""
    out = []
    for name, al, be, lim in _activation_specs(attrs, names):
        fn = ACTIVATIONS[name][0]

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


# ---------------------------------------------------------------------------------------
# Lowering: the time loop unrolled into chained stages (the sequence length is static).
# Every step materialises its recurrent matmul and its masked states, so a call is one
# kernel whose stage count grows linearly with the sequence length.


def _act_twin(name: str, x: Expr, al, be) -> Expr:
    """The loop-IR twin of ACTIVATIONS[name] at x's (float) dtype."""

    def c(v: float) -> Expr:
        return topi.scalar(v, x.dtype)

    if name == "relu":
        return B.max_(x, c(0.0))
    if name == "tanh":
        return B.call("tanh", x)
    if name == "sigmoid":
        return c(1.0) / (c(1.0) + B.call("exp", -x))
    if name == "affine":
        return c(al) * x + c(be)
    if name == "scaledtanh":
        return c(al) * B.call("tanh", c(be) * x)
    if name == "hardsigmoid":
        return B.min_(B.max_(c(al) * x + c(be), c(0.0)), c(1.0))
    if name == "leakyrelu":
        return topi.let(x, lambda v: B.select(v >= c(0.0), v, c(al) * v))
    if name == "thresholdedrelu":
        return topi.let(x, lambda v: B.select(v > c(al), v, c(0.0)))
    if name == "elu":
        return topi.let(x, lambda v: B.select(v >= c(0.0), v,
                                              c(al) * (B.call("exp", v) - c(1.0))))
    if name == "softsign":
        return topi.let(x, lambda v: v / (c(1.0) + B.call("abs", v)))
    if name == "softplus":  # np.logaddexp(0, x)
        return topi.let(x, lambda v: B.select(
            B.eq(v, c(0.0)), c(float(np.log(2.0))),
            B.max_(v, c(0.0)) + B.call("log1p", B.call("exp", -B.call("abs", v)))))
    raise ValueError(f"unknown activation {name}")


def _lowered_acts(attrs, names: list[str]) -> list[Callable[[Expr], Expr]]:
    out = []
    for name, al, be, lim in _activation_specs(attrs, names):
        def act(x, name=name, al=al, be=be, lim=lim):
            if lim is not None:
                x = B.min_(B.max_(x, topi.scalar(-lim, x.dtype)), topi.scalar(lim, x.dtype))
            return _act_twin(name, x, al, be)

        out.append(act)
    return out


def _select_step(steps: list[te.Tensor], s: Expr, b: Expr, j: Expr) -> Expr:
    """steps[s][b, j] for a runtime step index s (any arm reads in bounds)."""
    e = steps[-1][b, j]
    for k in range(len(steps) - 2, -1, -1):
        e = B.select(B.eq(s, idx(k)), steps[k][b, j], e)
    return e


@dataclass
class _Dir:
    """What one direction's steps read."""

    fam: _Family
    attrs: dict
    d: int
    reverse: bool
    seq: int
    batch: int
    n: int
    ct: DType
    xw: te.Tensor  # (seq, batch, G*n): X W^T
    bias: te.Tensor | None
    r: te.Tensor
    p: te.Tensor | None
    lens: te.Tensor | None
    acts: list[Callable[[Expr], Expr]]

    def cv(self, e: Expr) -> Expr:
        return e if e.dtype == self.ct else B.cast(self.ct, e)

    def nlen(self, b: Expr) -> Expr:
        return B.cast(DType.int64, self.lens[(b,)]) if self.lens is not None else idx(self.seq)

    def time(self, s: int, b: Expr) -> Expr:
        if not self.reverse:
            return idx(s)
        if self.lens is None:
            return idx(self.seq - 1 - s)
        return topi.safe_index(self.nlen(b) - idx(1 + s), self.seq)

    def gx(self, s: int, b: Expr, g: Expr) -> Expr:
        e = self.xw[self.time(s, b), b, g]
        return e + self.cv(self.bias[idx(self.d), g]) if self.bias is not None else e

    def rb(self, e: Expr, g: Expr) -> Expr:
        if self.bias is None:
            return e
        return e + self.cv(self.bias[idx(self.d), g + idx(self.xw.shape[2])])

    def peep(self, k: int, j: Expr, c: Expr) -> Expr:
        return self.cv(self.p[idx(self.d), idx(k * self.n) + j]) * c

    def matmul_r(self, name: str, rows: int, lhs: Callable[[Expr, Expr], Expr],
                 row0: int = 0) -> te.Tensor:
        """[b, g] = sum_k lhs(b, k) * R[d, row0 + g, k]."""
        def body(b, g):
            rk = te.rvar("k", self.n)
            rv = self.cv(self.r[idx(self.d), g + idx(row0) if row0 else g, rk.var])
            return te.reduce("sum", lhs(b, rk.var) * rv, [rk])

        return te.compute(name, (self.batch, rows), body, self.ct)

    def masked(self, name: str, s: int, new: te.Tensor, prev: te.Tensor) -> te.Tensor:
        if self.lens is None:
            return new
        return te.compute(name, new.shape, lambda b, j: B.select(
            idx(s) < self.nlen(b), new[b, j], prev[b, j]), self.ct, inline=False)

    def step(self, s: int, h: te.Tensor, c: te.Tensor | None):
        n, name, f = self.n, f"{self.fam.name}{self.d}_{s}", self.acts[0]
        gates = self.fam.gates
        rows = 2 * n if gates == 3 and not self.attrs["linear_before_reset"] else gates * n
        hr = self.matmul_r(f"{name}_hr", rows, lambda b, k: h[b, k])

        def pre(k: int, b: Expr, j: Expr) -> Expr:  # (X W^T + Wb) + H R^T + Rb, gate k
            g = idx(k * n) + j if k else j
            return self.rb(self.gx(s, b, g) + hr[b, g], g)

        if gates == 1:
            new = te.compute(f"{name}_h", (self.batch, n), lambda b, j: f(pre(0, b, j)),
                             self.ct, inline=False)
            return self.masked(f"{name}_hm", s, new, h), c
        if gates == 3:
            g_ = self.acts[1]
            rg = te.compute(f"{name}_r", (self.batch, n), lambda b, j: f(pre(1, b, j)),
                            self.ct, inline=False)
            if self.attrs["linear_before_reset"]:
                def cand(b, j):
                    g = idx(2 * n) + j
                    return g_(self.gx(s, b, g) + rg[b, j] * self.rb(hr[b, g], g))
            else:
                rh = self.matmul_r(f"{name}_rh", n, lambda b, k: rg[b, k] * h[b, k], 2 * n)

                def cand(b, j):
                    g = idx(2 * n) + j
                    return g_(self.rb(self.gx(s, b, g) + rh[b, j], g))

            def gru(b, j):
                return topi.let(f(pre(0, b, j)), lambda z: (
                    topi.scalar(1.0, self.ct) - z) * cand(b, j) + z * h[b, j], "z")

            new = te.compute(f"{name}_h", (self.batch, n), gru, self.ct, inline=False)
            return self.masked(f"{name}_hm", s, new, h), c
        g_, hf = self.acts[1], self.acts[2]
        P = self.p is not None

        def cell(b, j):
            cp = c[b, j]
            i = f(pre(0, b, j) + self.peep(0, j, cp) if P else pre(0, b, j))
            if self.attrs["input_forget"]:
                fg = topi.scalar(1.0, self.ct) - i
            else:
                fg = f(pre(2, b, j) + self.peep(2, j, cp) if P else pre(2, b, j))
            return fg * cp + i * g_(pre(3, b, j))

        cnew = te.compute(f"{name}_c", (self.batch, n), cell, self.ct, inline=False)

        def hid(b, j):
            cn = cnew[b, j]
            o = f(pre(1, b, j) + self.peep(1, j, cn) if P else pre(1, b, j))
            return o * hf(cn)

        new = te.compute(f"{name}_h", (self.batch, n), hid, self.ct, inline=False)
        return self.masked(f"{name}_hm", s, new, h), self.masked(f"{name}_cm", s, cnew, c)


def _compute(fam: _Family):
    def compute(ctx: LowerCtx, ins: list) -> list[te.Tensor]:
        x, w, r, bias, lens, h0, c0, p = list(ins) + [None] * (8 - len(ins))
        a = ctx.attrs
        dt = x.dtype
        ct = dt if dt in (DType.float32, DType.float64) else DType.float32
        lay = a["layout"]
        seq, batch = (x.shape[1], x.shape[0]) if lay else (x.shape[0], x.shape[1])
        dirs, gh, inp = w.shape
        n = r.shape[2]
        names = _activation_list_eval(a, dirs, fam.default_acts)
        na = len(fam.default_acts)

        def cv(e: Expr) -> Expr:
            return e if e.dtype == ct else B.cast(ct, e)

        def initial(t0, d: int, name: str) -> te.Tensor:
            if t0 is None:
                return te.compute(name, (batch, n), lambda b, j: topi.scalar(0.0, ct), ct)
            return te.compute(name, (batch, n), lambda b, j: cv(
                t0[(b, idx(d), j) if lay else (idx(d), b, j)]), ct)

        steps, finals = [], []
        for d in range(dirs):
            def xw_body(t, b, g, d=d):
                rk = te.rvar("k", inp)
                xv = x[(b, t, rk.var) if lay else (t, b, rk.var)]
                return te.reduce("sum", cv(xv) * cv(w[idx(d), g, rk.var]), [rk])

            xw = te.compute(f"xw{d}", (seq, batch, gh), xw_body, ct)
            run = _Dir(fam, a, d, a["direction"] == "reverse" or d == 1, seq, batch, n, ct, xw,
                       bias, r, p, lens, _lowered_acts(a, names[d * na:(d + 1) * na]))
            h = initial(h0, d, f"h0_{d}")
            c = initial(c0, d, f"c0_{d}") if fam.gates == 4 else None
            hs = []
            for s in range(seq):
                h, c = run.step(s, h, c)
                hs.append(h)
            steps.append((run, hs))
            finals.append((h, c))
        return _outputs(ctx, dt, lay, seq, batch, n, steps, finals)

    return compute


def _outputs(ctx: LowerCtx, dt: DType, lay: int, seq: int, batch: int, n: int,
             steps: list, finals: list) -> list[te.Tensor]:
    dirs = len(steps)

    def over_dirs(d: Expr, value: Callable[[int], Expr]) -> Expr:
        e = value(dirs - 1)
        for k in range(dirs - 2, -1, -1):
            e = B.select(B.eq(d, idx(k)), value(k), e)
        return B.cast(dt, e)

    def y_dir(k: int, t: Expr, b: Expr, j: Expr) -> Expr:
        run, hs = steps[k]
        if not hs:  # an empty sequence: y has no elements
            return topi.scalar(0.0, run.ct)
        s = t
        if run.reverse:
            s = run.nlen(b) - idx(1) - t if run.lens is not None else idx(seq - 1) - t
        v = _select_step(hs, s, b, j)
        if run.lens is None:
            return v
        return B.select(t < run.nlen(b), v, topi.scalar(0.0, run.ct))

    def final(k: int, which: int, b: Expr, j: Expr) -> Expr:
        run, _ = steps[k]
        v = finals[k][which][b, j]
        if run.lens is None:
            return v
        return B.select(B.eq(run.nlen(b), idx(0)), topi.scalar(0.0, run.ct), v)

    if lay:
        y = te.compute("y", (batch, seq, dirs, n), lambda b, t, d, j: over_dirs(
            d, lambda k: y_dir(k, t, b, j)), dt)
        state = (batch, dirs, n)
    else:
        y = te.compute("y", (seq, dirs, batch, n), lambda t, d, b, j: over_dirs(
            d, lambda k: y_dir(k, t, b, j)), dt)
        state = (dirs, batch, n)
    outs = [y]
    for which in (0, 1):
        if which == 1 and finals[0][1] is None:
            break

        def body(*i, which=which):
            b, d, j = (i[0], i[1], i[2]) if lay else (i[1], i[0], i[2])
            return over_dirs(d, lambda k: final(k, which, b, j))

        outs.append(te.compute(f"y_{'hc'[which]}", state, body, dt))
    return outs[: len(ctx.out_types)]


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
        compute=_compute(fam),
        kind=Kind.OPAQUE,
        doc=f"{fam.name} recurrence over a sequence (forward, reverse or bidirectional).",
    ))


_register(_Family("RNN", 1, ("Tanh",), _rnn_cell), {}, 6, 2)
_register(_Family("GRU", 3, ("Sigmoid", "Tanh"), _gru_cell),
          {"linear_before_reset": Attr("int", 0)}, 6, 2)
_register(_Family("LSTM", 4, ("Sigmoid", "Tanh", "Tanh"), _lstm_cell),
          {"input_forget": Attr("int", 0)}, 8, 3)
