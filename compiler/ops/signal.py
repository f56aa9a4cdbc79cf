"""Signal processing: DFT, STFT, the Hann/Hamming/Blackman windows and MelWeightMatrix.

Complex values are carried as a trailing dimension of size 2 (real, imaginary); a real
signal has a trailing dimension of size 1. DFT follows opset 20 (`axis` is an input); the
opset-17 form with an `axis` attribute is rewritten at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.loop import build as B
from compiler.loop.ir import Expr
from compiler.lower import te, topi
from compiler.lower.te import idx
from compiler.ops.base import Attr, EvalCtx, InferCtx, Kind, OpDef, check_dtype, register

if TYPE_CHECKING:
    from compiler.lower.lowering import LowerCtx

FLOATS = (DType.bfloat16, DType.float16, DType.float32, DType.float64)
INDEX = (DType.int32, DType.int64)
NUMERIC = FLOATS + (
    DType.int8, DType.int16, DType.int32, DType.int64,
    DType.uint8, DType.uint16, DType.uint32, DType.uint64,
)


def _scalar(ctx: InferCtx, i: int, what: str, dtypes=INDEX) -> int | None:
    """Input i's value when it is a constant scalar; checks dtype and rank either way."""
    t = ctx.input(i)
    if t is None:
        return None
    check_dtype(ctx, t, dtypes, what)
    if t.rank is not None and t.rank > 1 or (t.rank == 1 and t.shape[0] not in (1, UNKNOWN)):
        raise ctx.fail(f"{what} must be a scalar, got shape {list(t.shape)}")
    v = ctx.const(i)
    return None if v is None else v.reshape(-1)[0].item()


def _to_complex(x: np.ndarray) -> np.ndarray:
    """[..., 1 or 2] real/imaginary pairs -> complex array without the last axis."""
    return x[..., 0] if x.shape[-1] == 1 else x[..., 0] + 1j * x[..., 1]


def _from_complex(z: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1).astype(dtype)


# ---------------------------------------------------------------------------------------
# DFT


def _dft_upgrade(ictx) -> None:
    if ictx.opset < 20:
        axis = ictx.attrs.pop("axis", 1)
        ictx.inputs = (ictx.inputs + ["", ""])[:2]
        ictx.inputs[2:] = [ictx.add_const(axis, np.int64)]


def _dft_infer(ctx: InferCtx) -> list[TensorType]:
    x = ctx.input(0)
    check_dtype(ctx, x, FLOATS, "input")
    inverse, onesided = ctx.attrs["inverse"], ctx.attrs["onesided"]
    if inverse not in (0, 1) or onesided not in (0, 1):
        raise ctx.fail("inverse and onesided must be 0 or 1")
    n = _scalar(ctx, 1, "dft_length")
    axis = _scalar(ctx, 2, "axis", (DType.int64, DType.int32))
    if ctx.input(2) is None:
        axis = -2
    if n is not None and n < 1:
        raise ctx.fail(f"dft_length must be positive, got {n}")
    if x.shape is None:
        return [TensorType(None, x.dtype)]
    r = len(x.shape)
    if r < 2:
        raise ctx.fail(f"input must have rank >= 2 ([..., signal, 1 or 2]), got {r}")
    last = x.shape[-1]
    if isinstance(last, int) and last not in (1, 2):
        raise ctx.fail(f"input's last dim must be 1 (real) or 2 (complex), got {last}")
    out_last: Dim = 1 if inverse and onesided else 2
    if axis is None:
        return [TensorType((UNKNOWN,) * (r - 1) + (out_last,), x.dtype)]
    if not (-r <= axis <= -2 or 0 <= axis <= r - 2):
        raise ctx.fail(f"axis {axis} out of range for rank {r} (the last dim is not a signal)")
    axis %= r
    d = x.shape[axis]
    if n is None:
        if ctx.input(1) is not None:
            d = UNKNOWN
        elif inverse and onesided:
            d = 2 * (d - 1) if isinstance(d, int) else UNKNOWN
    else:
        d = n
    if onesided and not inverse:
        d = d // 2 + 1 if isinstance(d, int) else UNKNOWN
    shape = list(x.shape)
    shape[axis], shape[-1] = d, out_last
    return [TensorType(tuple(shape), x.dtype)]


def _dft_ref(ctx: EvalCtx, ins: list) -> list[np.ndarray]:
    x, n, axis = list(ins) + [None] * (3 - len(ins))
    inverse, onesided = ctx.attrs["inverse"], ctx.attrs["onesided"]
    axis = -2 if axis is None else int(axis.reshape(-1)[0])
    if not (-x.ndim <= axis <= -2 or 0 <= axis <= x.ndim - 2):
        raise ExecutionError(f"DFT: axis {axis} out of range for rank {x.ndim}")
    axis %= x.ndim
    if n is None:
        n = 2 * (x.shape[axis] - 1) if inverse and onesided else x.shape[axis]
    n = int(np.asarray(n).reshape(-1)[0])
    if n < 1:
        raise ExecutionError(f"DFT: dft_length must be positive, got {n}")
    z = _to_complex(x)
    if inverse and onesided:
        y = np.fft.irfft(z, n=n, axis=axis)[..., None]
        return [y.astype(x.dtype)]
    y = np.fft.ifft(z, n=n, axis=axis) if inverse else np.fft.fft(z, n=n, axis=axis)
    if onesided:
        y = np.take(y, np.arange(n // 2 + 1), axis=axis)
    return [_from_complex(y, x.dtype)]


# ---------------------------------------------------------------------------------------
# Lowering: direct O(n^2) transforms, twiddles computed in float64 from (k * m) mod n, the
# result rounded once to the signal dtype.

F64 = DType.float64


def _angle(k: Expr, m: Expr, n: int) -> Expr:
    """2 pi ((k m) mod n) / n in float64 (the reduction keeps the angle exact)."""
    r = B.floormod(k * m, idx(n))
    return B.cast(F64, r) * topi.scalar(2 * np.pi / n, F64)


def _complex_load(x: te.Tensor, index: tuple) -> tuple[Expr, Expr | None]:
    """(real, imaginary or None) at `index` (all axes but the last) in float64."""
    re = B.cast(F64, x[(*index, idx(0))])
    im = B.cast(F64, x[(*index, idx(1))]) if x.shape[-1] == 2 else None
    return re, im


def _dft_compute(ctx: LowerCtx, ins: list) -> list[te.Tensor]:
    x = ins[0]
    inverse, onesided = ctx.attrs["inverse"], ctx.attrs["onesided"]
    out = ctx.out_types[0]
    axv = ctx.value(2)
    axis = -2 if axv is None else int(axv.reshape(-1)[0])
    axis %= x.ndim
    nv = ctx.value(1)
    size = x.shape[axis]
    n = int(nv.reshape(-1)[0]) if nv is not None else (
        2 * (size - 1) if inverse and onesided else size)
    if inverse and onesided:
        return [_irfft(x, axis, n, out)]
    # zero padding contributes nothing; truncation drops samples
    acc = _dft_sum_axis(x, axis, n, min(n, size), out.shape[axis], inverse)

    def final(*i):
        v = acc[i]
        return B.cast(out.dtype, v * topi.scalar(1.0 / n, F64) if inverse else v)

    return [te.compute("dft", out.shape, final, out.dtype)]


def _dft_sum_axis(x: te.Tensor, axis: int, n: int, count: int, bins: int,
                  inverse: bool) -> te.Tensor:
    """[..., k (at `axis`), ..., c] = sum_{m < count} x[..., m, ...] e^(-+2 pi i k m / n)."""
    shape = list(x.shape[:-1]) + [2]
    shape[axis] = bins

    def body(*i):
        k, c = i[axis], i[-1]
        r = te.rvar("m", count)
        index = tuple(i[:axis]) + (r.var,) + tuple(i[axis + 1:-1])
        re, im = _complex_load(x, index)
        th = _angle(k, r.var, n)
        cs, sn = B.call("cos", th), B.call("sin", th)
        if inverse:
            sn = -sn
        # (re + i im)(cos - i sin) = re cos + im sin + i (im cos - re sin)
        real = re * cs + im * sn if im is not None else re * cs
        imag = im * cs - re * sn if im is not None else -(re * sn)
        return te.reduce("sum", B.select(B.eq(c, idx(0)), real, imag), [r])

    return te.compute("dft_acc", shape, body, F64)


def _irfft(x: te.Tensor, axis: int, n: int, out: TensorType) -> te.Tensor:
    """np.fft.irfft: the Hermitian extension of bins 0..n//2 (imaginary parts of the DC and,
    for even n, Nyquist bins ignored), real output of length n."""
    half = n // 2
    count = min(half + 1, x.shape[axis])

    def body(*i):
        m = i[axis]
        r = te.rvar("k", count)
        k = r.var
        index = tuple(i[:axis]) + (k,) + tuple(i[axis + 1:-1])
        re, im = _complex_load(x, index)
        th = _angle(k, m, n)
        # weight 1 for the DC (and even-n Nyquist) bin, 2 for the bins mirrored
        edge = B.or_(B.eq(k, idx(0)), B.eq(k, idx(half))) if n % 2 == 0 else B.eq(k, idx(0))
        w = B.select(edge, topi.scalar(1.0, F64), topi.scalar(2.0, F64))
        v = re * B.call("cos", th)
        if im is not None:
            v = v - B.select(edge, topi.scalar(0.0, F64), im * B.call("sin", th))
        return te.reduce("sum", w * v, [r])

    acc = te.compute("irfft_acc", out.shape, body, F64)
    return te.compute("irfft", out.shape, lambda *i: B.cast(
        out.dtype, acc[i] * topi.scalar(1.0 / n, F64)), out.dtype)


register(OpDef(
    name="DFT",
    attrs={"inverse": Attr("int", 0), "onesided": Attr("int", 0)},
    inputs=(1, 3),
    infer=_dft_infer,
    ref=_dft_ref,
    upgrade=_dft_upgrade,
    compute=_dft_compute,
    shape_inputs=(1, 2),
    kind=Kind.OPAQUE,
    doc="Discrete Fourier transform along one axis (full, RFFT or IRFFT).",
))


# ---------------------------------------------------------------------------------------
# STFT


def _stft_infer(ctx: InferCtx) -> list[TensorType]:
    x, win = ctx.input(0), ctx.input(2)
    check_dtype(ctx, x, FLOATS, "signal")
    onesided = ctx.attrs["onesided"]
    if onesided not in (0, 1):
        raise ctx.fail("onesided must be 0 or 1")
    step = _scalar(ctx, 1, "frame_step")
    flen = _scalar(ctx, 3, "frame_length")
    if step is not None and step < 1:
        raise ctx.fail(f"frame_step must be positive, got {step}")
    if win is not None:
        if win.dtype != x.dtype:
            raise ctx.fail(f"window dtype {win.dtype} differs from signal dtype {x.dtype}")
        if win.rank is not None and win.rank != 1:
            raise ctx.fail(f"window must be 1-D, got rank {win.rank}")
        wlen = win.shape[0] if win.rank == 1 else UNKNOWN
        if flen is not None and isinstance(wlen, int) and wlen != flen:
            raise ctx.fail(f"window length {wlen} differs from frame_length {flen}")
        if ctx.input(3) is None:
            flen = wlen if isinstance(wlen, int) else None
    if x.rank is not None and x.rank != 3:
        raise ctx.fail(f"signal must be 3-D [batch, length, 1 or 2], got rank {x.rank}")
    b, length, last = x.shape if x.rank else (UNKNOWN,) * 3
    if isinstance(last, int) and last not in (1, 2):
        raise ctx.fail(f"signal's last dim must be 1 (real) or 2 (complex), got {last}")
    if flen is None and ctx.input(3) is None and win is None:
        flen = length if isinstance(length, int) else None
    if flen is not None and flen < 1:
        raise ctx.fail(f"frame_length must be positive, got {flen}")
    frames: Dim = UNKNOWN
    if isinstance(length, int) and flen is not None:
        if flen > length:
            raise ctx.fail(f"frame_length {flen} exceeds the signal length {length}")
        if step is not None:
            frames = (length - flen) // step + 1
    bins: Dim = UNKNOWN if flen is None else (flen // 2 + 1 if onesided else flen)
    return [TensorType((b, frames, bins, 2), x.dtype)]


def _stft_ref(ctx: EvalCtx, ins: list) -> list[np.ndarray]:
    x, step, win, flen = list(ins) + [None] * (4 - len(ins))
    step = int(step.reshape(-1)[0])
    if flen is not None:
        flen = int(flen.reshape(-1)[0])
    elif win is not None:
        flen = win.shape[0]
    else:
        flen = x.shape[1]
    if win is None:
        win = np.ones(flen, x.dtype)
    if step < 1 or not 1 <= flen <= x.shape[1] or win.shape[0] != flen:
        raise ExecutionError(f"STFT: bad frame_step {step} / frame_length {flen} / window "
                             f"length {win.shape[0]} for a signal of length {x.shape[1]}")
    frames = (x.shape[1] - flen) // step + 1
    idx = np.arange(frames)[:, None] * step + np.arange(flen)[None, :]
    z = _to_complex(x)[:, idx] * win  # (batch, frames, flen)
    y = np.fft.fft(z, n=flen, axis=-1)
    if ctx.attrs["onesided"]:
        y = y[..., : flen // 2 + 1]
    return [_from_complex(y, x.dtype)]


def _stft_compute(ctx: LowerCtx, ins: list) -> list[te.Tensor]:
    x, _, win = (list(ins) + [None] * 4)[:3]
    out = ctx.out_types[0]
    step = int(ctx.value(1).reshape(-1)[0])
    _, frames, bins, _ = out.shape
    flv = ctx.value(3)
    flen = int(flv.reshape(-1)[0]) if flv is not None else (
        win.shape[0] if win is not None else x.shape[1])

    def body(b, f, k, c):
        r = te.rvar("m", flen)
        t = f * idx(step) + r.var
        parts = [x[b, t, idx(p)] for p in range(x.shape[2])]
        if win is not None:  # windowed in the signal dtype, as the reference
            parts = [v * win[(r.var,)] for v in parts]
        re = B.cast(F64, parts[0])
        im = B.cast(F64, parts[1]) if len(parts) == 2 else None
        th = _angle(k, r.var, flen)
        cs, sn = B.call("cos", th), B.call("sin", th)
        real = re * cs + im * sn if im is not None else re * cs
        imag = im * cs - re * sn if im is not None else -(re * sn)
        return te.reduce("sum", B.select(B.eq(c, idx(0)), real, imag), [r])

    acc = te.compute("stft_acc", out.shape, body, F64)
    del bins, frames
    return [te.compute("stft", out.shape, lambda *i: B.cast(out.dtype, acc[i]), out.dtype)]


register(OpDef(
    name="STFT",
    attrs={"onesided": Attr("int", 1)},
    inputs=(2, 4),
    infer=_stft_infer,
    ref=_stft_ref,
    compute=_stft_compute,
    shape_inputs=(1, 3),
    kind=Kind.OPAQUE,
    doc="Short-time Fourier transform of a batch of 1-D signals.",
))


# ---------------------------------------------------------------------------------------
# Windows and MelWeightMatrix


def _out_dtype(ctx, allowed=NUMERIC) -> DType:
    code = ctx.attrs["output_datatype"]
    try:
        dt = DType.from_onnx(code)
    except KeyError:
        raise ctx.fail(f"output_datatype {code} is not a known type") from None
    if dt not in allowed:
        raise ctx.fail(f"output_datatype {dt} is not supported")
    return dt


def _window_infer(ctx: InferCtx) -> list[TensorType]:
    dt = _out_dtype(ctx)
    if ctx.attrs["periodic"] not in (0, 1):
        raise ctx.fail("periodic must be 0 or 1")
    n = _scalar(ctx, 0, "size")
    if n is not None and n < 0:
        raise ctx.fail(f"size must be nonnegative, got {n}")
    return [TensorType((UNKNOWN if n is None else n,), dt)]


def _window_compute(coeffs: tuple[float, ...]):
    """The reference's formula at its precision (the output float type, else float64)."""

    def compute(ctx: LowerCtx, ins: list) -> list[te.Tensor]:
        out = ctx.out_types[0]
        size = out.shape[0]
        ct = out.dtype if out.dtype.is_float else F64
        period = size if ctx.attrs["periodic"] else size - 1

        def body(i):
            n = B.cast(ct, i)
            w = topi.scalar(0.0, ct)
            for k, a in enumerate(coeffs):
                if k == 0:
                    term = topi.scalar(a, ct)
                else:
                    ang = n * topi.scalar(2 * np.pi * k, ct) / topi.scalar(period, ct)
                    term = topi.scalar(a, ct) * B.call("cos", ang)
                w = w + term if k % 2 == 0 else w - term
            if not out.dtype.is_float:  # a NaN (size 1, symmetric) must not reach the cast
                w = topi.let(w, lambda v: B.select(B.call("isnan", v), topi.scalar(0.0, ct), v))
            return B.cast(out.dtype, w)

        return [te.compute(ctx.op, out.shape, body, out.dtype)]

    return compute


def _window(name: str, coeffs: tuple[float, ...]) -> None:
    """w[n] = sum_k (-1)^k a_k cos(2 pi k n / N), N = size (periodic) or size - 1."""

    def ref(ctx: EvalCtx, ins: list) -> list[np.ndarray]:
        size = int(ins[0].reshape(-1)[0])
        if size < 0:
            raise ExecutionError(f"{name}: size must be nonnegative, got {size}")
        dt = ctx.out_types[0].dtype
        ct = dt.np if dt.is_float else np.dtype(np.float64)
        period = size if ctx.attrs["periodic"] else size - 1
        n = np.arange(size, dtype=ct)
        w = np.zeros(size, ct)
        for k, a in enumerate(coeffs):
            term = a if k == 0 else a * np.cos(n * (2 * np.pi * k) / period)
            w = (w + term) if k % 2 == 0 else (w - term)
        return [w.astype(dt.np)]

    register(OpDef(
        name=name,
        attrs={"output_datatype": Attr("int", 1), "periodic": Attr("int", 1)},
        inputs=(1, 1),
        infer=_window_infer,
        ref=ref,
        compute=_window_compute(coeffs),
        shape_inputs=(0,),
        kind=Kind.OPAQUE,
        doc=f"Generates a {name[:-6]} window.",
    ))


_window("HannWindow", (0.5, 0.5))
_window("HammingWindow", (25.0 / 46.0, 21.0 / 46.0))
_window("BlackmanWindow", (0.42, 0.5, 0.08))


def _mel_infer(ctx: InferCtx) -> list[TensorType]:
    dt = _out_dtype(ctx)
    ints = [ctx.input(i) for i in range(3)]
    for t, what in zip(ints, ("num_mel_bins", "dft_length", "sample_rate"), strict=True):
        check_dtype(ctx, t, INDEX, what)
        if t.dtype != ints[0].dtype:
            raise ctx.fail(f"{what} dtype {t.dtype} differs from num_mel_bins {ints[0].dtype}")
    lo, hi = ctx.input(3), ctx.input(4)
    check_dtype(ctx, lo, FLOATS, "lower_edge_hertz")
    if hi.dtype != lo.dtype:
        raise ctx.fail(f"upper_edge_hertz dtype {hi.dtype} differs from {lo.dtype}")
    vals = [_scalar(ctx, i, w, (ints[0].dtype,)) for i, w in
            enumerate(("num_mel_bins", "dft_length", "sample_rate"))]
    _scalar(ctx, 3, "lower_edge_hertz", FLOATS)
    _scalar(ctx, 4, "upper_edge_hertz", FLOATS)
    bins, n, rate = vals
    for v, what in ((bins, "num_mel_bins"), (n, "dft_length"), (rate, "sample_rate")):
        if v is not None and v < 1:
            raise ctx.fail(f"{what} must be positive, got {v}")
    return [TensorType((UNKNOWN if n is None else n // 2 + 1,
                        UNKNOWN if bins is None else bins), dt)]


def _mel_ref(ctx: EvalCtx, ins: list) -> list[np.ndarray]:
    bins, n, rate = (int(v.reshape(-1)[0]) for v in ins[:3])
    lo, hi = (float(v.reshape(-1)[0]) for v in ins[3:5])
    if min(bins, n, rate) < 1:
        raise ExecutionError("MelWeightMatrix: num_mel_bins, dft_length and sample_rate must "
                             "be positive")
    nspec = n // 2 + 1

    def mel(f: float) -> float:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    # bins + 2 equally spaced mel points (left edge, centres, right edge), as DFT bin indices
    step = (mel(hi) - mel(lo)) / (bins + 2)
    pts = np.arange(bins + 2) * step + mel(lo)
    hz = 700.0 * (10.0 ** (pts / 2595.0) - 1.0)
    idx = np.floor((n + 1) * hz / rate).astype(np.int64)
    left, centre, right = idx[:-2], idx[1:-1], idx[2:]
    j = np.arange(nspec)[:, None]
    out = np.zeros((nspec, bins))
    up = (j >= left) & (j <= centre)
    with np.errstate(divide="ignore", invalid="ignore"):
        rise = np.where(centre > left, (j - left) / (centre - left), 1.0)
        fall = (right - j) / (right - centre)
    out = np.where(up, rise, out)
    out = np.where((j >= centre) & (j < right), fall, out)
    out = np.where((centre == left) & (j == centre), 1.0, out)
    return [out.astype(ctx.out_types[0].dtype.np)]


def _mel_compute(ctx: LowerCtx, ins: list) -> list[te.Tensor]:
    """The reference's float64 formula; the bin edges are recomputed per element."""
    out = ctx.out_types[0]
    bins, n, rate = (int(ctx.value(i).reshape(-1)[0]) for i in range(3))
    lo, hi = (float(ctx.value(i).reshape(-1)[0]) for i in (3, 4))

    def mel(f: float) -> float:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    step = (mel(hi) - mel(lo)) / (bins + 2)
    mlo = float(mel(lo))

    def edge(m: Expr) -> Expr:  # floor((n + 1) * hz / rate) of mel point m, as int64
        pts = B.cast(F64, m) * topi.scalar(float(step), F64) + topi.scalar(mlo, F64)
        hz = topi.scalar(700.0, F64) * (B.call(
            "pow", topi.scalar(10.0, F64), pts / topi.scalar(2595.0, F64)) - topi.scalar(1.0, F64))
        v = B.call("floor", topi.scalar(float(n + 1), F64) * hz / topi.scalar(float(rate), F64))
        return B.cast(DType.int64, B.max_(B.min_(v, topi.scalar(2.0**62, F64)),
                                          topi.scalar(-(2.0**62), F64)))

    def body(j, m):
        one, zero = topi.scalar(1.0, F64), topi.scalar(0.0, F64)
        return topi.let(edge(m), lambda left: topi.let(edge(m + idx(1)), lambda centre: topi.let(
            edge(m + idx(2)), lambda right: _mel_value(j, left, centre, right, one, zero),
            "right"), "centre"), "left")

    return [te.compute("mel", out.shape, lambda j, m: B.cast(out.dtype, body(j, m)), out.dtype)]


def _mel_value(j, left, centre, right, one, zero) -> Expr:
    def f(e):
        return B.cast(F64, e)

    up = B.and_(j >= left, j <= centre)
    rise = B.select(centre > left, f(j - left) / f(B.max_(centre - left, idx(1))), one)
    fall = f(right - j) / f(right - centre)  # IEEE division: inf/NaN where unused
    v = B.select(up, rise, zero)
    v = B.select(B.and_(j >= centre, j < right), fall, v)
    return B.select(B.and_(B.eq(centre, left), B.eq(j, centre)), one, v)


register(OpDef(
    name="MelWeightMatrix",
    attrs={"output_datatype": Attr("int", 1)},
    inputs=(5, 5),
    infer=_mel_infer,
    ref=_mel_ref,
    compute=_mel_compute,
    shape_inputs=(0, 1, 2, 3, 4),
    kind=Kind.OPAQUE,
    doc="Triangular mel filterbank matrix [dft_length/2 + 1, num_mel_bins].",
))
