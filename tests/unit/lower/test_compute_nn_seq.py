"""Compute definitions of compiler/ops/{attention,rnn,signal,detection}.py: each op lowered at
small shapes, run on the loop-IR interpreter (and on LLVM where that backend imports), and
checked against the op's numpy reference. The interpreter reports any out-of-bounds load,
so masked and padded reads also check that every index is clamped or guarded."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from compiler.dtypes import DType
from compiler.errors import UnsupportedError
from compiler.graph.interp import Interpreter
from compiler.graph.ir import Binding, Call, Const, Function, Tensor, TensorType, Var
from compiler.loop.verifier import verify
from compiler.lower.lowering import lower_call
from compiler.ops.base import EvalCtx, get_op
from oracles.compare import compare

TARGETS = ["lir", "llvm"]
RNG = np.random.default_rng(5)
BF16 = np.dtype(ml_dtypes.bfloat16)
TOL = {np.dtype(np.float16): 2e-3, BF16: 1e-2, np.dtype(np.float32): 2e-5,
       np.dtype(np.float64): 1e-12}


@pytest.fixture(params=TARGETS)
def target(request) -> str:
    if request.param != "lir":
        pytest.importorskip(f"compiler.codegen.{request.param}")
    return request.param


def _attrs(op_name: str, attrs: dict | None) -> dict:
    out = {k: a.default for k, a in get_op(op_name).attrs.items() if a.default is not None}
    out.update(attrs or {})
    return out


def run(target: str, op_name: str, args: list, attrs: dict, n_out: int):
    """(outputs, output types) of the op's kernel on `target`."""
    from compiler.driver import codegen_for

    func, types = lower_call(get_op(op_name), attrs, args, n_out, f"k_{op_name}")
    verify(func)
    kernel = codegen_for(target)([func])[func.name]
    outs = [np.empty(t.shape, t.dtype.np) for t in types]
    kernel(*[np.array(a, order="C") for a in args if a is not None], *outs)
    return outs, types


def check(target: str, op_name: str, args: list, attrs: dict | None = None, n_out: int = 1,
          tol: float | None = None) -> None:
    args = [None if v is None else np.asarray(v) for v in args]
    a = _attrs(op_name, attrs)
    op = get_op(op_name)
    got, types = run(target, op_name, args, a, n_out)
    ctx = EvalCtx(op_name, a, n_out, types, lambda f, xs: Interpreter().run_function(f, xs))
    with np.errstate(all="ignore"):
        want = list(op.ref(ctx, list(args)))[:n_out]
    assert len(got) == n_out
    for k, (w, g) in enumerate(zip(want, got, strict=True)):
        w = np.asarray(w)
        t = TOL.get(w.dtype, 0.0) if tol is None else tol
        d = compare(w, g, rtol=t, atol=t)
        assert d, f"{op_name} {attrs or ''} output {k} on {target}: {d.reason}\n" \
                  f"want {w.ravel()[:12]}\ngot  {g.ravel()[:12]}"


def rand(*shape: int, dtype=np.float32) -> np.ndarray:
    return RNG.uniform(-1.5, 1.5, shape).astype(dtype)


def i64(*v) -> np.ndarray:
    return np.array(v, np.int64)


# ---------------------------------------------------------------------------------------
# attention family


def test_attention_4d_cache_mask_gqa_all_outputs(target):
    q, k, v = rand(2, 4, 3, 4), rand(2, 2, 2, 4), rand(2, 2, 2, 5)
    pk, pv = rand(2, 2, 3, 4), rand(2, 2, 3, 5)
    mask = RNG.random((4, 3, 4)) > 0.3  # shorter than the total length: padded with -inf
    for mode in (0, 3):
        check(target, "Attention", [q, k, v, mask, pk, pv],
              {"is_causal": 1, "qk_matmul_output_mode": mode, "softcap": 2.0}, n_out=4)


def test_attention_3d_nonpad_window_fully_masked_rows(target):
    q, k, v = rand(2, 3, 6), rand(2, 5, 6), rand(2, 5, 4)
    nonpad = i64(5, 1)  # batch 1: queries at negative positions see no key at all
    check(target, "Attention", [q, k, v, rand(3, 5), None, None, nonpad],
          {"q_num_heads": 2, "kv_num_heads": 2, "is_causal": 1, "left_window_size": 1,
           "qk_matmul_output_mode": 2}, n_out=4)


@pytest.mark.parametrize("dt", [np.float16, BF16])
def test_attention_half_precision(target, dt):
    q, k, v = rand(1, 2, 3, 8, dtype=dt), rand(1, 2, 6, 8, dtype=dt), rand(1, 2, 6, 8, dtype=dt)
    check(target, "Attention", [q, k, v], {"scale": 0.3})
    check(target, "Attention", [q, k, v], {"softmax_precision": 1, "qk_matmul_output_mode": 3},
          n_out=4)


@pytest.mark.parametrize("attrs", [{"interleaved": 1, "rotary_embedding_dim": 4},
                                   {"interleaved": 0}])
def test_rotary_embedding(target, attrs):
    x = rand(2, 3, 4, 6)  # (B, H, S, D)
    half = attrs.get("rotary_embedding_dim", 6) // 2
    pos = np.array([[0, 3, 6, 2], [1, 1, 5, 4]], np.int64)
    check(target, "RotaryEmbedding", [x, rand(7, half), rand(7, half), pos], attrs)
    x3 = rand(2, 4, 12)  # (B, S, H*D)
    check(target, "RotaryEmbedding", [x3, rand(2, 4, half), rand(2, 4, half)],
          {**attrs, "num_heads": 2})


def test_linear_attention_gated_delta_gqa(target):
    q, k, v = rand(1, 3, 4 * 2), rand(1, 3, 2 * 2), rand(1, 3, 2 * 3)
    decay, beta = rand(1, 3, 2 * 2) * 0.3, RNG.random((1, 3, 2)).astype(np.float32)
    check(target, "LinearAttention", [q, k, v, rand(1, 2, 2, 3), decay, beta],
          {"q_num_heads": 4, "kv_num_heads": 2}, n_out=2)
    check(target, "LinearAttention", [q, k, v],
          {"q_num_heads": 4, "kv_num_heads": 2, "update_rule": "linear", "scale": 0.5},
          n_out=2)


def test_flex_attention_score_mod_subgraph(target):
    """score_mod = where(q >= k, scores * 2, -inf): shapes, ranges and the mask fold at
    compile time, the rest lowers through the ops' own compute definitions."""
    q, k, v = rand(1, 2, 3, 4), rand(1, 1, 3, 4), rand(1, 1, 3, 2)
    ft = TensorType((1, 2, 3, 3), DType.float32)
    s, two, scaled = Var("s", ft), Var("two", TensorType((), DType.float32)), Var("x", ft)
    mask = Var("m", TensorType((3, 3), DType.bool))
    ninf, out = Var("ninf", TensorType((), DType.float32)), Var("y", ft)
    fn = Function("score_mod", (s,), (
        Binding((two,), Const(Tensor(np.float32(2.0)))),
        Binding((mask,), Const(Tensor(np.tril(np.ones((3, 3), bool))))),
        Binding((ninf,), Const(Tensor(np.float32(-np.inf)))),
        Binding((scaled,), Call("Mul", (s, two))),
        Binding((out,), Call("Where", (mask, scaled, ninf))),
    ), (out,))
    check(target, "FlexAttention", [q, k, v], {"score_mod": fn})
    check(target, "FlexAttention", [q.astype(np.float64), k.astype(np.float64),
                                    v.astype(np.float64)], {"scale": 0.7})


# ---------------------------------------------------------------------------------------
# recurrences


def _rnn_args(gates: int, seq=3, batch=2, inp=3, n=4, dirs=2, peep=False, lens=True):
    args = [rand(seq, batch, inp), rand(dirs, gates * n, inp), rand(dirs, gates * n, n),
            rand(dirs, 2 * gates * n), np.array([3, 1], np.int32)[:batch] if lens else None,
            rand(dirs, batch, n)]
    if gates == 4:
        args += [rand(dirs, batch, n), rand(dirs, 3 * n) if peep else None]
    return args


def test_rnn_bidirectional_lens_activations(target):
    check(target, "RNN", _rnn_args(1), {"direction": "bidirectional", "hidden_size": 4,
                                        "activations": ["LeakyRelu", "HardSigmoid"],
                                        "activation_alpha": [0.2, 0.3], "clip": 1.0}, n_out=2)


@pytest.mark.parametrize("lbr", [0, 1])
def test_gru_reverse_lens(target, lbr):
    args = _rnn_args(3, dirs=1)
    check(target, "GRU", args, {"direction": "reverse", "hidden_size": 4,
                                "linear_before_reset": lbr}, n_out=2)


def test_lstm_peepholes_layout_input_forget(target):
    args = _rnn_args(4, peep=True)
    check(target, "LSTM", args, {"direction": "bidirectional", "input_forget": 1,
                                 "activations": ["Sigmoid", "Softsign", "Softplus"] * 2},
          n_out=3)
    x, w, r, b, lens, h0, c0, p = args
    bm = [x.transpose(1, 0, 2), w, r, b, lens, h0.transpose(1, 0, 2), c0.transpose(1, 0, 2), p]
    check(target, "LSTM", bm, {"layout": 1, "direction": "bidirectional"}, n_out=3)


# ---------------------------------------------------------------------------------------
# signal


@pytest.mark.parametrize("case", [
    ({}, (1, 6, 5, 1), None, 1),
    ({"onesided": 1}, (2, 7, 2), i64(9), -2),  # zero padded to 9
    ({"inverse": 1}, (3, 8, 2), i64(5), 1),  # truncated to 5
    ({"inverse": 1, "onesided": 1}, (2, 4, 2), i64(7), 1),  # irfft, odd length
    ({"inverse": 1, "onesided": 1}, (2, 4, 2), None, 1),  # irfft, even length 6
])
def test_dft(target, case):
    attrs, shape, n, axis = case
    check(target, "DFT", [rand(*shape), n, i64(axis)], attrs, tol=1e-4)


def test_stft_and_windows(target):
    x, win = rand(2, 20, 2), rand(6)
    check(target, "STFT", [x, i64(3), win], {"onesided": 0}, tol=1e-4)
    check(target, "STFT", [rand(1, 16, 1), i64(4), None, i64(8)], tol=1e-4)
    for op in ("HannWindow", "HammingWindow", "BlackmanWindow"):
        check(target, op, [i64(10)], {"periodic": 0})
        check(target, op, [i64(7)], {"output_datatype": 11})
    check(target, "HannWindow", [i64(1)], {"periodic": 0})  # 0 / 0: NaN
    check(target, "BlackmanWindow", [i64(6)], {"output_datatype": 6})  # int32: truncated


def test_mel_weight_matrix(target):
    args = [i64(8), i64(64), i64(8000), np.float32(0.0), np.float32(3500.0)]
    check(target, "MelWeightMatrix", args)


# ---------------------------------------------------------------------------------------
# detection and sampling


@pytest.mark.parametrize("attrs", [
    {"mode": "cubic", "padding_mode": "reflection"},
    {"mode": "nearest", "padding_mode": "border", "align_corners": 1},
    {"mode": "linear", "padding_mode": "zeros"},
])
def test_grid_sample(target, attrs):
    x, grid = rand(1, 2, 3, 4), rand(1, 2, 3, 2) * 1.6
    grid[0, 0, 0] = [1e30, np.nan]  # far outside and NaN: must stay in bounds
    check(target, "GridSample", [x, grid], attrs)
    check(target, "GridSample", [(x * 50).astype(np.int32), grid], attrs)


def test_grid_sample_volumetric_and_affine_grid(target):
    check(target, "GridSample", [rand(1, 1, 2, 3, 2), rand(1, 2, 2, 1, 3)],
          {"mode": "linear", "padding_mode": "reflection", "align_corners": 1})
    for align in (0, 1):
        check(target, "AffineGrid", [rand(2, 3, 4), i64(2, 1, 3, 1, 4)], {"align_corners": align})


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_roi_align(target, mode):
    x = rand(2, 2, 6, 5)
    rois = np.array([[0.5, 1.0, 4.0, 5.5], [-2.0, -1.0, 9.0, 3.0], [3, 3, 3, 3]], np.float32)
    check(target, "RoiAlign", [x, rois, i64(1, 0, 1)],
          {"mode": mode, "sampling_ratio": 2, "output_height": 2, "output_width": 3,
           "spatial_scale": 0.9, "coordinate_transformation_mode": "output_half_pixel"})


def test_roi_align_adaptive_and_nms_are_explicit():
    x, rois = rand(1, 1, 4, 4), np.array([[0, 0, 3, 3]], np.float32)
    with pytest.raises(UnsupportedError, match="sampling_ratio"):
        lower_call(get_op("RoiAlign"), _attrs("RoiAlign", {}), [x, rois, i64(0)], 1, "k")
    assert get_op("NonMaxSuppression").host
