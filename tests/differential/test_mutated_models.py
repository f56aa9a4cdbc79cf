"""Single-op node-test models with mutated input dims, attributes and dtypes (the mutator of
tests/property/test_bad_models.py): every mutant the interpreter accepts and runs must give
the same results compiled on llvm at -O2. Shapes and attribute values nobody wrote tests
for reach the lowering this way.

Skipped, by rule: random ops, string tensors (not supported natively), and integer results
of reductions computed through floats (`FLOAT_THROUGH`: a log(0) = -inf cast back to an int
is undefined behaviour in C and LLVM alike); compile errors only for the known native
limitations in `KNOWN_UNSUPPORTED`. `-m slow` runs many more mutants."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

from compiler.driver import compile as compile_model
from compiler.dtypes import DType
from compiler.errors import AnvilError, UnsupportedError
from compiler.frontend.onnx import import_model
from compiler.graph import interp
from compiler.graph.ir import Call
from compiler.graph.verifier import verify
from compiler.ops.base import get_op
from tests.property.test_bad_models import mutate, single_op_models

FLOAT_THROUGH = {"ReduceLogSum", "ReduceLogSumExp", "ReduceL2"}
# known native limitation: RoiAlign with sampling_ratio=0 sizes its sampling grid per roi at
# run time, which needs loop extents computed inside a kernel
KNOWN_UNSUPPORTED = ("sampling_ratio=0",)


def _inputs(module) -> list[np.ndarray]:
    gen = np.random.default_rng(0)
    out = []
    for p in module.main.params:
        shape = tuple(d if isinstance(d, int) else 2 for d in (p.type.shape or ()))
        out.append(gen.standard_normal(shape).astype(p.type.dtype.np) if p.type.dtype.is_float
                   else np.zeros(shape, p.type.dtype.np))
    return out


def _comparable(module, want: list[np.ndarray]) -> bool:
    calls = [b.expr for b in module.main.body if isinstance(b.expr, Call)]
    if any(get_op(c.op) is None or get_op(c.op).nondeterministic for c in calls):
        return False
    types = [p.type for p in module.main.params] + [o.type for b in module.main.body
                                                     for o in b.outs]
    if any(t.dtype.value == "string" for t in types):
        return False
    # integer results computed through floats (log(0) = -inf cast back to int is undefined)
    return not (calls and calls[0].op in FLOAT_THROUGH
                and any(w.dtype.kind in "iu" for w in want))


def check_mutants(seed: int, count: int) -> int:
    rng = random.Random(seed)
    models = single_op_models()
    compared = 0
    for _ in range(count):
        model = mutate(rng.choice(models), rng)
        try:
            module = import_model(model)
            verify(module)
            inputs = _inputs(module)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                want = [np.asarray(w) for w in interp.run(module, inputs)]
        except AnvilError:
            continue
        if not _comparable(module, want):
            continue
        try:
            with np.errstate(all="ignore"):
                got = compile_model(module, "llvm", opt_level=2).run(inputs)
        except UnsupportedError as err:
            if any(k in str(err) for k in KNOWN_UNSUPPORTED):
                continue
            raise
        op = model.graph.node[0].op_type
        for k, (w, g) in enumerate(zip(want, got, strict=True)):
            assert (g.shape, g.dtype) == (w.shape, w.dtype), (op, k)
            if DType.from_np(w.dtype).is_float:  # minifloats compare as float32 too
                w, g = w.astype(np.float64), g.astype(np.float64)
                scale = float(np.abs(w[np.isfinite(w)]).max(initial=0.0)) or 1.0
                np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64),
                                           rtol=1e-3, atol=1e-4 * scale, equal_nan=True,
                                           err_msg=f"{op} mutant (seed {seed}) output {k}")
            else:
                np.testing.assert_array_equal(g, w, err_msg=f"{op} mutant (seed {seed})")
        compared += 1
    return compared


def test_mutated_models_compile_to_the_same_results() -> None:
    assert check_mutants(0, 250) > 100


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 13))
def test_mutated_models_compile_to_the_same_results_slow(seed: int) -> None:
    assert check_mutants(seed, 1500) > 600
