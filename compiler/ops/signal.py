"""Signal processing: DFT, STFT, the Hann/Hamming/Blackman windows and MelWeightMatrix.

Complex values are carried as a trailing dimension of size 2 (real, imaginary); a real
signal has a trailing dimension of size 1. DFT follows opset 20 (`axis` is an input); the
opset-17 form with an `axis` attribute is rewritten at import.
"""

from __future__ import annotations

import numpy as np

from compiler.dtypes import DType
from compiler.errors import ExecutionError
from compiler.graph.ir import UNKNOWN, Dim, TensorType
from compiler.ops.base import Attr, EvalCtx, InferCtx, Kind, OpDef, check_dtype, register

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


register(OpDef(
    name="DFT",
    attrs={"inverse": Attr("int", 0), "onesided": Attr("int", 0)},
    inputs=(1, 3),
    infer=_dft_infer,
    ref=_dft_ref,
    upgrade=_dft_upgrade,
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


register(OpDef(
    name="STFT",
    attrs={"onesided": Attr("int", 1)},
    inputs=(2, 4),
    infer=_stft_infer,
    ref=_stft_ref,
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


register(OpDef(
    name="MelWeightMatrix",
    attrs={"output_datatype": Attr("int", 1)},
    inputs=(5, 5),
    infer=_mel_infer,
    ref=_mel_ref,
    kind=Kind.OPAQUE,
    doc="Triangular mel filterbank matrix [dft_length/2 + 1, num_mel_bins].",
))
