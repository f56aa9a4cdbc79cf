"""Random well-formed graphs (compiler/graph/random_graph.py) compiled at every opt level
(llvm; c at -O3) must compute what the graph interpreter computes: the whole stack at once
(graph passes, fusion and layout lowering, loop passes, codegen), on programs nobody wrote by
hand.

`-m slow` runs many more seeds."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.driver import compile as compile_model
from compiler.graph import interp
from compiler.graph.random_graph import random_inputs, random_module

FAST_SEEDS = range(12)
SLOW_SEEDS = range(12, 200)


def _check(seed: int, level: int, target: str = "llvm") -> None:
    module = random_module(seed)
    inputs = random_inputs(module, seed)
    want = interp.run(module, inputs)
    got = compile_model(module, target, opt_level=level).run(inputs)
    assert len(got) == len(want)
    for k, (w, g) in enumerate(zip(want, got, strict=True)):
        assert g.dtype == w.dtype and g.shape == w.shape, (seed, k)
        if w.dtype.kind == "f":
            scale = float(np.abs(w[np.isfinite(w)]).max(initial=0.0)) or 1.0
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * scale,
                                       err_msg=f"seed {seed} -O{level} output {k}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"seed {seed} -O{level} output {k}")


@pytest.mark.parametrize("target, level", [("llvm", 0), ("llvm", 3), ("c", 3)])
@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_random_graph(seed: int, target: str, level: int) -> None:
    _check(seed, level, target)


@pytest.mark.slow
@pytest.mark.parametrize("target, level", [("llvm", 0), ("llvm", 1), ("llvm", 2), ("llvm", 3),
                                           ("c", 3)])
@pytest.mark.parametrize("seed", SLOW_SEEDS)
def test_random_graph_slow(seed: int, target: str, level: int) -> None:
    _check(seed, level, target)
