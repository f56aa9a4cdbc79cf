"""Compute definitions of compiler/ops/{reduce,normalization,softmax,loss,misc}.py: each op
lowered at small shapes, run on the loop-IR interpreter (whose undefined-behaviour checks catch
any out-of-bounds load) and on LLVM/C where those backends import, and checked against the
op's numpy reference: exactly for integers, bools and indices, within a few ulps for floats."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from compiler.loop.verifier import verify
from compiler.lower import te
from compiler.lower.lowering import lower_call
from compiler.ops.base import EvalCtx, get_op
from oracles.compare import compare

TARGETS = ["lir", "llvm", "c"]
RNG = np.random.default_rng(5)
I64 = np.int64
F16 = np.dtype(np.float16)
BF16 = np.dtype(ml_dtypes.bfloat16)
TOL = {F16: 2e-3, BF16: 1e-2, np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}


@pytest.fixture(params=TARGETS)
def check(request):
    """A `Cases` batch for the target; the test runs it (one compile for all its kernels)."""
    if request.param != "lir":
        pytest.importorskip(f"compiler.codegen.{request.param}")
    cases = Cases(request.param)
    yield cases
    assert cases.done, "the test never ran its cases"


def _attrs(op_name: str, attrs: dict | None) -> dict:
    out = {k: a.default for k, a in get_op(op_name).attrs.items()}
    out.update(attrs or {})
    return out


class Cases:
    """Op calls lowered one by one, compiled together, run and checked against the op's
    numpy reference."""

    def __init__(self, target: str):
        self.target = target
        self.cases: list[tuple] = []
        self.done = False

    def __call__(self, op_name: str, args: list, attrs: dict | None = None, n_out: int = 1,
                 tol: float | None = None) -> None:
        args = [None if a is None else np.asarray(a) for a in args]
        a = _attrs(op_name, attrs)
        name = f"k{len(self.cases)}_{op_name}"
        func, types = lower_call(get_op(op_name), a, args, n_out, name)
        verify(func)
        with np.errstate(all="ignore"):
            want = list(get_op(op_name).ref(EvalCtx(op_name, a, n_out, types), list(args)))
        self.cases.append((op_name, attrs, args, func, types, want[:n_out], tol))

    def run(self) -> None:
        from compiler.driver import codegen_for

        self.done = True
        kernels = codegen_for(self.target)([c[3] for c in self.cases])
        for op_name, attrs, args, func, types, want, tol in self.cases:
            got = [np.empty(t.shape, t.dtype.np) for t in types]
            kernels[func.name](*[x.copy() for x in args if x is not None], *got)
            for k, (w, g) in enumerate(zip(want, got, strict=True)):
                w = np.asarray(w)
                t = TOL.get(w.dtype, 0.0) if tol is None else tol
                d = compare(w, g, rtol=t, atol=t * 1e-2)
                shown = f"\ninputs {args}\nwant {w}\ngot  {g}" if w.size <= 64 else ""
                assert d, f"{op_name} {attrs or ''} output {k} on {self.target}: {d.reason}" \
                          + shown


def floats(*shape: int, dtype=np.float32, lo: float = -3.0, hi: float = 3.0) -> np.ndarray:
    return RNG.uniform(lo, hi, shape).astype(dtype)


def axes(*a: int) -> np.ndarray:
    return np.array(a, I64)


# ---------------------------------------------------------------------------------------
# reduce.py

REDUCE = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
          "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]


@pytest.mark.parametrize("dtype", [np.float32, F16, np.int32], ids=str)
def test_reduce(check, dtype):
    x = floats(2, 3, 4, lo=0.5).astype(dtype) if dtype != np.int32 else \
        RNG.integers(-9, 9, (2, 3, 4)).astype(dtype)
    for op in REDUCE:
        if op == "ReduceLogSum" and dtype == np.int32:
            continue  # log of negative sums: NaN to int is the reference's platform value
        check(op, [x, axes(1)])
        check(op, [x, axes(0, -1)], {"keepdims": 0})
        check(op, [x])
    for op in ("ReduceSum", "ReduceSumSquare", "ReduceLogSumExp"):
        check(op, [x, axes()], {"noop_with_empty_axes": 1})
        check(op, [x, axes()], {"keepdims": 0})
    check.run()


def test_reduce_edges(check):
    empty = np.zeros((2, 0, 3), np.float32)
    for op in REDUCE:
        check(op, [empty, axes(1)])
    check("ReduceMean", [np.zeros((0, 2), np.int64), axes(0)])
    nan = np.array([[1.0, np.nan, -np.inf], [np.inf, 2.0, -0.0]], np.float32)
    for op in ("ReduceMax", "ReduceMin", "ReduceLogSumExp", "ReduceSum"):
        check(op, [nan, axes(1)])
    b = np.array([[True, False], [False, False]])
    check("ReduceMax", [b, axes(1)])
    check("ReduceMin", [b, axes(0)], {"keepdims": 0})
    big = np.array([[3, -2**63 + 5, 2**63 - 1]], np.int64)  # int64 extremes as identities
    check("ReduceMin", [big, axes(1)])
    check("ReduceMax", [big.astype(np.uint64), axes(1)])
    check.run()


def test_arg(check):
    x = np.array([[1.0, 3.0, 3.0, -1.0], [np.nan, 2.0, np.nan, 5.0], [0.0, -0.0, 0.0, -0.0]],
                 np.float32)
    for op in ("ArgMax", "ArgMin"):
        for last in (0, 1):
            check(op, [x], {"axis": 1, "select_last_index": last})
            check(op, [x.astype(F16)], {"axis": 0, "keepdims": 0,
                                                "select_last_index": last})
        check(op, [RNG.integers(0, 3, (3, 4, 2)).astype(np.int8)], {"axis": -2})
    check.run()


def test_cumulative(check):
    x = floats(3, 5)
    xi = RNG.integers(-4, 5, (2, 4, 3)).astype(np.int32)
    for op in ("CumSum", "CumProd"):
        for ex in (0, 1):
            for rev in (0, 1):
                attrs = {"exclusive": ex, "reverse": rev}
                check(op, [x, np.array(1, I64)], attrs)
                check(op, [xi, np.array([-2], np.int32)], attrs)
        check(op, [x.astype(BF16), np.array(0, I64)])
    check.run()


def test_topk(check):
    x = np.array([[3.0, 1.0, 3.0, np.nan, -2.0, 1.0], [0.0, -0.0, 5.0, 5.0, np.nan, np.nan]],
                 np.float32)
    for largest in (1, 0):
        for k in (0, 1, 4, 6):
            check("TopK", [x, np.array([k], I64)], {"largest": largest}, n_out=2)
        check("TopK", [x.T.copy(), np.array([2], I64)],
              {"axis": 0, "largest": largest}, n_out=2)
    xi = RNG.integers(0, 4, (2, 3, 5)).astype(np.int64)
    check("TopK", [xi, np.array([3], I64)], {"axis": 2}, n_out=2)
    check.run()


# ---------------------------------------------------------------------------------------
# normalization.py


def test_batchnorm(check):
    x = floats(2, 3, 4, 2)
    s, b, m = floats(3), floats(3), floats(3)
    v = floats(3, lo=0.1, hi=2.0)
    check("BatchNormalization", [x, s, b, m, v], {"epsilon": 1e-2})
    check("BatchNormalization", [x.astype(F16), s, b, m, v])
    check("BatchNormalization", [x, s, b, m, v], {"training_mode": 1, "momentum": 0.7},
          n_out=3)
    check.run()


@pytest.mark.parametrize("dtype", [np.float32, F16], ids=str)
def test_layer_rms_norm(check, dtype):
    x = floats(2, 3, 4, dtype=dtype)
    for ax in (-1, 1, 0):
        shape = x.shape[ax % 3:]
        check("LayerNormalization", [x, floats(*shape, dtype=dtype),
                                             floats(*shape, dtype=dtype)], {"axis": ax}, n_out=3)
        check("RMSNormalization", [x, floats(*shape, dtype=dtype)], {"axis": ax})
    check("LayerNormalization", [x, floats(4, dtype=dtype)], {"stash_type": 11},
          n_out=3)
    check("RMSNormalization", [x, floats(4)])
    check.run()


def test_group_instance_norm(check):
    x = floats(2, 4, 3, 2)
    check("GroupNormalization", [x, floats(4), floats(4)], {"num_groups": 2})
    check("GroupNormalization", [x, floats(2), floats(2)],
          {"num_groups": 2, "scale_per_group": 1})
    check("GroupNormalization", [x.astype(F16), floats(4, dtype=F16),
                                         floats(4, dtype=F16)], {"num_groups": 4})
    check("InstanceNormalization", [x, floats(4), floats(4)])
    check("InstanceNormalization", [floats(2, 3, 5, dtype=F16), floats(3, dtype=F16),
                                            floats(3, dtype=F16)])
    check.run()


def test_other_norms(check):
    x = floats(2, 5, 3)
    for size in (1, 2, 3, 4):
        check("LRN", [x], {"size": size, "alpha": 0.1, "beta": 0.6, "bias": 2.0})
    z = x.copy()
    z[0, :, 1] = 0.0
    for p in (1, 2):
        check("LpNormalization", [z], {"p": p, "axis": 1})
        check("LpNormalization", [z.astype(F16)], {"p": p})
    check("MeanVarianceNormalization", [floats(2, 3, 2, 2)])
    check("MeanVarianceNormalization", [x], {"axes": [1]})
    check.run()


# ---------------------------------------------------------------------------------------
# softmax.py and loss.py


@pytest.mark.parametrize("dtype", [np.float32, F16, BF16, np.float64], ids=str)
def test_softmax(check, dtype):
    x = floats(2, 3, 4, lo=-6, hi=6, dtype=dtype)
    x[0, 0, :] = [1.0, 4.0, 4.0, -np.inf]
    for op in ("Softmax", "LogSoftmax", "Hardmax"):
        for ax in (-1, 0, 1):
            check(op, [x], {"axis": ax})
        check(op, [x], {"axis": 1, "coerce_2d": 1})
    check.run()


def test_losses(check):
    x = floats(3, 4, 2)
    t = np.array([[0, 3], [1, -1], [2, 2]], I64)
    w = floats(4, lo=0.1, hi=1.0)
    for red in ("none", "sum", "mean"):
        for weight in (None, w):
            for ignore in (None, -1):
                attrs = {"reduction": red, "ignore_index": ignore}
                args = [x, t if ignore is not None else np.abs(t)] + \
                    ([weight] if weight is not None else [])
                check("NegativeLogLikelihoodLoss", args, attrs)
                check("SoftmaxCrossEntropyLoss", args, attrs, n_out=2)
    check("SoftmaxCrossEntropyLoss", [x.astype(F16), np.abs(t).astype(np.int32)],
          n_out=2)
    check.run()


# ---------------------------------------------------------------------------------------
# misc.py


def test_det(check):
    for n in (1, 2, 3, 4, 6):
        check("Det", [floats(2, n, n)], tol=1e-5)
    sing = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 0.0]], np.float32)
    perm = np.array([[0.0, 0.0, 2.0], [0.0, 3.0, 0.0], [5.0, 0.0, 0.0]], np.float64)
    check("Det", [np.stack([sing, perm.astype(np.float32)])], tol=1e-5)
    check("Det", [perm], tol=1e-12)
    check.run()


def test_einsum(check):
    a, b, c = floats(2, 3), floats(3, 4), floats(2, 3, 3)
    check("Einsum", [a, b], {"equation": "ij,jk->ik"})
    check("Einsum", [a, b], {"equation": "ij,jk"})
    check("Einsum", [c], {"equation": "bii->bi"})
    check("Einsum", [c], {"equation": "bii"})
    check("Einsum", [c], {"equation": "...ij->...ji"})
    check("Einsum", [c, floats(1, 3, 2)], {"equation": "...ij,...jk->...ik"})
    check("Einsum", [a, floats(5)], {"equation": "ij,k->ikj"})
    check("Einsum", [a.astype(F16), b.astype(F16)], {"equation": "ij,jk->"})
    ai = RNG.integers(-5, 5, (3, 3)).astype(np.int32)
    check("Einsum", [ai, ai], {"equation": "ij,ij->i"})
    check.run()


def test_ml(check):
    x = np.array([[-1.0, 0.0, 0.5, np.nan], [2.0, 0.25, 3.0, -0.0]], np.float32)
    check("Binarizer", [x], {"threshold": 0.25})
    check("Binarizer", [np.array([-3, 0, 1, 7], np.int64)], {"threshold": 0.5})
    check("ArrayFeatureExtractor", [x, np.array([3, 0, 0], I64)])
    check("ArrayFeatureExtractor", [x[0], np.array([[1], [2]], I64)])
    check("ArrayFeatureExtractor", [floats(2, 2, 3), np.array(2, I64)])
    check.run()


def test_check_can_fail():
    """The harness notices a wrong kernel: a Softmax lowered as the identity fails."""
    op = get_op("Softmax")
    compute = op.compute
    op.compute = lambda ctx, ins: [te.compute("id", ins[0].shape, lambda *i: ins[0][i])]
    cases = Cases("lir")
    try:
        cases("Softmax", [floats(2, 3)])
        with pytest.raises(AssertionError, match="Softmax"):
            cases.run()
    finally:
        op.compute = compute
