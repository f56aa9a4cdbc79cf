"""The nine real ImageNet architectures of onnx's light test data, end to end.

Each model runs twice: as shipped (constant weights; compared with its `_output_0.pb`) and
with random He-scaled weights and no final Softmax (compared with onnxruntime), because the
shipped constant weights make the softmax uniform and hide broken kernels.
"""

from __future__ import annotations

import numpy as np
import pytest

from compiler.backend import prepare
from oracles.compare import compare
from oracles.models import LIGHT_MODELS, light_input, load_light, randomize_light_model
from oracles.reference import run_onnxruntime

RTOL = 1e-4
FAST_NATIVE = {"squeezenet", "shufflenet", "bvlc_alexnet"}  # the rest take minutes unfused


def _params():
    for name in LIGHT_MODELS:
        yield pytest.param(name, "interp", 0, id=f"{name}-interp")
        for target in ("llvm", "c"):
            marks = () if name in FAST_NATIVE else (pytest.mark.slow,)
            yield pytest.param(name, target, 0, id=f"{name}-{target}", marks=marks)
        for level in (1, 2, 3):  # every opt level stays correct (slow: all but -O3 of the fast)
            marks = () if name in FAST_NATIVE and level == 3 else (pytest.mark.slow,)
            yield pytest.param(name, "llvm", level, id=f"{name}-llvm-O{level}", marks=marks)


def _close(expected: np.ndarray, actual: np.ndarray) -> None:
    """Within RTOL of the output's scale: |a - e| <= RTOL * max|e| elementwise."""
    scale = float(np.abs(expected).max()) or 1.0
    d = compare(expected, actual, rtol=RTOL, atol=RTOL * scale)
    assert d, d.reason


@pytest.mark.parametrize("name, target, level", _params())
def test_light_model(name, target, level):
    options = {"opt_level": level} if target != "interp" else {}
    model, reference = load_light(name)
    (y,) = prepare(model, target=target, **options).run(light_input(model))
    _close(reference, y)

    rnd = randomize_light_model(model, seed=1)
    x = light_input(rnd, seed=1)
    (y,) = prepare(rnd, target=target, **options).run(x)
    (expected,) = run_onnxruntime(rnd, x)
    assert float(np.std(expected)) > 1e-3, "random weights should give non-flat logits"
    _close(expected, y)
