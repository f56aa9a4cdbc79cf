"""Compute definitions of compiler/ops/{conv,pool,matmul,quant}.py: each op lowered at small
shapes, run on the loop-IR interpreter (and on LLVM/C where those backends import), and
checked against the op's numpy reference: exactly for integers, within a few ulps for
floats. The interpreter reports any out-of-bounds load, so padded and strided windows also
check that every read is guarded."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from compiler.dtypes import DType
from compiler.errors import UnsupportedError
from compiler.loop.ir import IfThenElse
from compiler.loop.traverse import walk
from compiler.loop.verifier import verify
from compiler.lower.lowering import lower_call
from compiler.ops.base import EvalCtx, get_op
from oracles.compare import compare

TARGETS = ["lir", "llvm", "c"]
RNG = np.random.default_rng(11)
BF16 = np.dtype(ml_dtypes.bfloat16)
TOL = {np.dtype(np.float16): 2e-3, BF16: 1e-2, np.dtype(np.float32): 1e-5,
       np.dtype(np.float64): 1e-12}


@pytest.fixture(params=TARGETS)
def target(request) -> str:
    if request.param != "lir":
        pytest.importorskip(f"compiler.codegen.{request.param}")
    return request.param


def _attrs(op_name: str, attrs: dict | None) -> dict:
    out = {k: a.default for k, a in get_op(op_name).attrs.items()}
    out.update(attrs or {})
    return out


def lower(op_name: str, args: list, attrs: dict | None = None, n_out: int = 1):
    func, types = lower_call(get_op(op_name), _attrs(op_name, attrs), args, n_out,
                             f"k_{op_name}")
    verify(func)
    return func, types


def run(target: str, op_name: str, args: list, attrs: dict | None = None,
        n_out: int = 1) -> list[np.ndarray]:
    from compiler.driver import codegen_for

    func, types = lower(op_name, args, attrs, n_out)
    kernel = codegen_for(target)([func])[func.name]
    outs = [np.empty(t.shape, t.dtype.np) for t in types]
    kernel(*[np.array(a) for a in args if a is not None], *outs)
    return outs


def check(target: str, op_name: str, args: list, attrs: dict | None = None,
          n_out: int = 1) -> None:
    args = [None if v is None else np.asarray(v) for v in args]
    a = _attrs(op_name, attrs)
    op = get_op(op_name)
    _, types = lower(op_name, args, attrs, n_out)
    with np.errstate(all="ignore"):
        want = list(op.ref(EvalCtx(op_name, a, n_out, types), list(args)))[:n_out]
    got = run(target, op_name, args, attrs, n_out)
    for k, (w, g) in enumerate(zip(want, got, strict=True)):
        w = np.asarray(w)
        tol = TOL.get(w.dtype, 0.0)
        d = compare(w, g, rtol=tol, atol=tol)
        assert d, f"{op_name} {attrs or ''} output {k} on {target}: {d.reason}\n" \
                  f"want {w.ravel()[:20]}\ngot  {g.ravel()[:20]}"


def rand(*shape: int, dtype=np.float32) -> np.ndarray:
    return RNG.uniform(-2, 2, shape).astype(dtype)


def ints(*shape: int, dtype=np.uint8) -> np.ndarray:
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


# ---------------------------------------------------------------------------------------
# convolutions


@pytest.mark.parametrize("attrs", [
    {},
    {"pads": [1, 2, 0, 1], "strides": [2, 1]},
    {"dilations": [2, 1], "pads": [2, 1, 2, 1], "group": 2},
    {"auto_pad": "SAME_LOWER", "strides": [2, 2]},
    {"auto_pad": "SAME_UPPER", "kernel_shape": [3, 2]},
])
def test_conv_2d(target, attrs):
    x, w, b = rand(2, 4, 5, 6), rand(6, 4 // attrs.get("group", 1), 3, 2), rand(6)
    check(target, "Conv", [x, w, b], attrs)
    check(target, "Conv", [x.astype(np.float16), w.astype(np.float16)], attrs)


def test_conv_1d_3d_and_depthwise(target):
    check(target, "Conv", [rand(1, 2, 7), rand(3, 2, 3)], {"strides": [3], "pads": [2, 0]})
    check(target, "Conv", [rand(1, 2, 3, 4, 3), rand(2, 2, 2, 2, 2), rand(2)],
          {"pads": [1, 0, 1, 0, 1, 1]})
    check(target, "Conv", [rand(1, 3, 4, 4, dtype=np.float64), rand(3, 1, 3, 3, dtype=np.float64)],
          {"group": 3, "pads": [1, 1, 1, 1]})


def test_conv_without_padding_has_no_predicate():
    func, _ = lower("Conv", [rand(1, 2, 5, 5), rand(2, 2, 3, 3)])
    assert not any(isinstance(n, IfThenElse) for n in walk(func))
    func, _ = lower("Conv", [rand(1, 2, 5, 5), rand(2, 2, 3, 3)], {"pads": [1, 0, 0, 0]})
    assert any(isinstance(n, IfThenElse) for n in walk(func))


def test_conv_integer(target):
    x, w = ints(1, 2, 4, 5), ints(4, 2, 2, 2, dtype=np.uint8)
    check(target, "ConvInteger", [x, w])
    check(target, "ConvInteger", [x, w, np.uint8(130), np.array([1, 200, 3, 255], np.uint8)],
          {"pads": [1, 1, 0, 1]})
    check(target, "ConvInteger", [ints(1, 2, 3, 3, dtype=np.int8),
                                  ints(2, 1, 2, 2, dtype=np.int8), np.int8(-5)],
          {"group": 2, "strides": [2, 1]})


@pytest.mark.parametrize("attrs", [
    {},
    {"strides": [3, 2], "pads": [1, 0, 2, 1], "output_padding": [1, 1]},
    {"strides": [2, 2], "dilations": [2, 1], "group": 2},
    {"strides": [2, 3], "output_shape": [8, 9]},
    {"strides": [2, 2], "auto_pad": "SAME_LOWER"},
])
def test_conv_transpose(target, attrs):
    x, w, b = rand(1, 2, 3, 3), rand(2, 2, 3, 2), rand(2 * attrs.get("group", 1))
    check(target, "ConvTranspose", [x, w, b], attrs)
    if not attrs:
        check(target, "ConvTranspose", [x.astype(np.float16), w.astype(np.float16)], attrs)


def test_conv_transpose_1d(target):
    check(target, "ConvTranspose", [rand(1, 2, 5), rand(2, 2, 4)], {"strides": [3]})


def test_col2im(target):
    x = rand(1, 2 * 4, 6)  # C=2, block 2x2, image 3x4 with stride 1 -> grid 2x3
    shape = [np.array([3, 4], np.int64), np.array([2, 2], np.int64)]
    check(target, "Col2Im", [x, *shape])
    x = rand(2, 3 * 2, 4)  # block 1x2, dilation 2, stride 2, pads -> grid
    check(target, "Col2Im", [x, np.array([2, 5], np.int64), np.array([1, 2], np.int64)],
          {"dilations": [1, 2], "strides": [1, 2], "pads": [0, 1, 0, 0]})
    check(target, "Col2Im", [ints(1, 4, 4, dtype=np.int32), np.array([1, 5], np.int64),
                             np.array([1, 2], np.int64)])


def test_deform_conv(target):
    x, w = rand(1, 4, 2, 3), rand(2, 2, 2, 2)
    off = RNG.uniform(-1.5, 1.5, (1, 2 * 4 * 2, 2, 3)).astype(np.float32)
    mask = RNG.uniform(0, 1, (1, 2 * 4, 2, 3)).astype(np.float32)
    check(target, "DeformConv", [x, w, off, rand(2), mask],
          {"group": 2, "offset_group": 2, "pads": [1, 0, 0, 1]})
    off1 = RNG.uniform(-3, 3, (1, 8, 1, 2)).astype(np.float32)
    off1[0, 0, 0, 0] = 1e9  # far outside: samples zero, no out-of-range cast
    check(target, "DeformConv", [x[:, :1], w[:, :1], off1], {"strides": [1, 1]})


def test_causal_conv_with_state(target):
    x, w, b = rand(2, 3, 5), rand(3, 1, 3), rand(3)
    past = rand(2, 3, 2)
    check(target, "CausalConvWithState", [x, w, b, past], {"activation": "silu"}, n_out=2)
    check(target, "CausalConvWithState", [x, w], n_out=2)
    check(target, "CausalConvWithState", [x.astype(np.float16), w[:, :, :1].astype(np.float16)],
          n_out=2)


# ---------------------------------------------------------------------------------------
# pooling


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [2, 2]},
    {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 1, 1, 0], "ceil_mode": 1},
    {"kernel_shape": [2, 3], "dilations": [2, 1], "storage_order": 1},
    {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
])
def test_max_pool(target, attrs):
    x = rand(2, 2, 5, 6)
    x[0, 0, 0, 0] = np.nan  # a NaN first tap sticks
    x[0, 1, 1, 1] = np.nan  # a later one is skipped
    x[1, 0, :2, :2] = 1.0  # ties: the first tap's index
    check(target, "MaxPool", [x], attrs, n_out=2)
    check(target, "MaxPool", [ints(1, 2, 5, 6, dtype=np.int8)], attrs, n_out=2)
    check(target, "MaxPool", [x.astype(np.float16)], attrs)


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [2, 2]},
    {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
    {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1], "ceil_mode": 1},
    {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1], "ceil_mode": 1,
     "count_include_pad": 1},
    {"kernel_shape": [2, 2], "dilations": [2, 2], "auto_pad": "SAME_LOWER"},
])
def test_average_and_lp_pool(target, attrs):
    x = rand(1, 2, 6, 5)
    check(target, "AveragePool", [x], attrs)
    check(target, "AveragePool", [x.astype(np.float16)], attrs)
    lp = {k: v for k, v in attrs.items() if k != "count_include_pad"}
    check(target, "LpPool", [x], dict(lp, p=3))
    check(target, "LpPool", [x], lp)


def test_global_pools(target):
    x = rand(2, 3, 4, 5)
    for op in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"):
        check(target, op, [x])
        check(target, op, [x[:, :, :, 0].astype(np.float16)])
    check(target, "GlobalLpPool", [x], {"p": 1})


def test_max_unpool(target):
    x = rand(1, 2, 2, 2)
    ind = np.array([[[[0, 3], [9, 10]], [[16, 18], [27, 31]]]], np.int64)
    ind[0, 1, 1, 1] = 16  # a duplicate: the last write wins
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2]}
    check(target, "MaxUnpool", [x, ind], attrs)
    check(target, "MaxUnpool", [x, ind, np.array([1, 2, 5, 3], np.int64)], attrs)


# ---------------------------------------------------------------------------------------
# matrix products


def test_matmul(target):
    for a, b in [((3, 4), (4, 5)), ((2, 1, 3, 4), (3, 4, 2)), ((4,), (2, 4, 3)),
                 ((2, 3, 4), (4,)), ((4,), (4,))]:
        check(target, "MatMul", [rand(*a), rand(*b)])
    check(target, "MatMul", [rand(3, 4, dtype=np.float16), rand(4, 2, dtype=np.float16)])
    big = np.full((2, 3), 2**30, np.int32)
    check(target, "MatMul", [big, np.full((3, 2), 3, np.int32)])  # wraps


def test_matmul_integer(target):
    a, b = ints(2, 3, 4), ints(4, 5, dtype=np.uint8)
    check(target, "MatMulInteger", [a, b])
    check(target, "MatMulInteger", [a[0], b, ints(3), ints(5)])
    check(target, "MatMulInteger", [ints(3, 4, dtype=np.int8), ints(4, 2, dtype=np.int8),
                                    np.int8(-3), ints(2, dtype=np.int8)])


@pytest.mark.parametrize("attrs", [
    {}, {"transA": 1}, {"transB": 1, "alpha": 0.5}, {"beta": 2.0, "transA": 1, "transB": 1},
    {"beta": 0.0},
])
def test_gemm(target, attrs):
    a = rand(3, 4) if not attrs.get("transA") else rand(4, 3)
    b = rand(4, 5) if not attrs.get("transB") else rand(5, 4)
    for c in (None, rand(5), rand(3, 1), rand(3, 5)):
        check(target, "Gemm", [a, b, c] if c is not None else [a, b], attrs)
    ai, bi = a.astype(np.int32) * 7, b.astype(np.int32)
    check(target, "Gemm", [ai, bi, np.arange(5, dtype=np.int32)], attrs)


# ---------------------------------------------------------------------------------------
# quantization


def test_quantize_dequantize(target):
    x = np.concatenate([rand(22), [0.5, 1.5, 2.5, -0.5, np.inf, -np.inf, np.nan, 1e6]])
    x = x.astype(np.float32).reshape(2, 3, 5)
    check(target, "QuantizeLinear", [x, np.float32(0.02), np.uint8(128)])
    check(target, "QuantizeLinear", [x, np.array([0.1, 0.2, 1.0], np.float32),
                                     np.array([-3, 0, 7], np.int8)], {"axis": 1})
    check(target, "QuantizeLinear", [x, np.full((2, 3, 2), 0.05, np.float32),
                                     np.zeros((2, 3, 2), np.int16)], {"axis": 2, "block_size": 3})
    check(target, "QuantizeLinear", [x[:1].astype(np.float16), np.float16(0.25)])
    q = ints(2, 3, 4, dtype=np.int8)
    check(target, "DequantizeLinear", [q, np.float32(0.5), np.int8(3)])
    check(target, "DequantizeLinear", [q, np.array([0.5, 2.0, 0.1], np.float16),
                                       np.array([1, 2, -3], np.int8)], {"axis": 1})
    check(target, "DequantizeLinear", [ints(2, 4, dtype=np.int32), np.float32(0.1)])


def test_dynamic_quantize(target):
    for x in (rand(3, 4), np.abs(rand(5)), -np.abs(rand(2, 2)), np.zeros(3, np.float32)):
        check(target, "DynamicQuantizeLinear", [x], n_out=3)


def test_qlinear_conv_and_matmul(target):
    x, w = ints(1, 2, 4, 4), ints(3, 2, 2, 2, dtype=np.int8)
    args = [x, np.float32(0.05), np.uint8(120), w, np.array([0.1, 0.02, 0.3], np.float32),
            np.zeros(3, np.int8), np.float32(0.2), np.uint8(100),
            np.array([50, -1000, 7], np.int32)]
    check(target, "QLinearConv", args, {"pads": [1, 0, 0, 1]})
    a, b = ints(2, 3, 4), ints(4, 5, dtype=np.int8)
    for a_s, b_s in [(np.float32(0.1), np.float32(0.02)),
                     (np.array([0.1, 0.2, 0.3], np.float32), np.full(5, 0.05, np.float32))]:
        check(target, "QLinearMatMul", [a, a_s, np.uint8(128), b, b_s, np.int8(1),
                                        np.float32(0.3), np.int8(-2)])
    check(target, "QLinearMatMul", [a[0, 0], np.float16(0.1), np.uint8(3), b,
                                    np.float16(0.1), np.int8(0), np.float16(0.2), np.uint8(9)])


def exact(target: str, op_name: str, args: list, attrs: dict | None = None) -> None:
    """The target's output has the reference's dtype and bytes."""
    args = [None if v is None else np.asarray(v) for v in args]
    _, types = lower(op_name, args, attrs)
    with np.errstate(all="ignore"):
        want = np.asarray(get_op(op_name).ref(EvalCtx(op_name, _attrs(op_name, attrs), 1, types),
                                              list(args))[0])
    got = run(target, op_name, args, attrs)[0]
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), \
        f"{op_name} {attrs} on {target}\nwant {want}\ngot  {got}"


@pytest.mark.parametrize("out", [DType.int4, DType.uint2, DType.float8e4m3fn, DType.float8e5m2,
                                 DType.float8e4m3fnuz, DType.float4e2m1], ids=str)
def test_quantize_to_narrow_dtypes(target, out):
    """Saturating (or not) to float8/float4 and int4/int2, and back, bit for bit."""
    x = np.concatenate([rand(12) * 600, np.array([np.nan, np.inf, -np.inf, -0.0, 1e-6])])
    for scale, sat in ((np.float32(0.5), 1), (np.float16(2.0), 0)):
        zp = [np.zeros((), out.np)] if out is not DType.float8e5m2 else []
        attrs = {"saturate": sat} | ({} if zp else {"output_dtype": out.onnx})
        exact(target, "QuantizeLinear", [x.astype(np.float32), scale, *zp], attrs)
    q = np.arange(256, dtype=np.uint8).view(out.np)
    e8m0 = np.array(0.25, np.float32).astype(DType.float8e8m0.np)
    exact(target, "DequantizeLinear", [q, np.float32(0.5)])
    exact(target, "DequantizeLinear", [q, e8m0], {"output_dtype": DType.float16.onnx})


def test_exotic_quantized_dtypes_fail_cleanly():
    a = np.ones((2, 3), ml_dtypes.float8_e4m3fn)
    zp, s = np.zeros((), ml_dtypes.float8_e4m3fn), np.float32(0.1)
    with pytest.raises(UnsupportedError, match="not supported by native targets"):
        lower("QLinearMatMul", [a, s, zp, a.T.copy(), s, zp, s, zp])
