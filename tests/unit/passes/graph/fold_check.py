"""Checks shared by the tests of the passes that fold constants into weights (and so change
float rounding): small ONNX models, tolerance comparison scaled to the output magnitude,
and randomized light models (seeded weights, so folding is tested on real values)."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from compiler.frontend.onnx import import_model
from compiler.graph.interp import run
from compiler.graph.ir import Call, Module
from oracles.models import LIGHT_MODELS, light_input, load_light, randomize_light_model


def light_params(default: Sequence[str] = ("squeezenet", "shufflenet", "resnet50")) -> list:
    """The light model names, those not in `default` marked slow."""
    return [pytest.param(n, marks=() if n in default else pytest.mark.slow)
            for n in LIGHT_MODELS]


LIGHT = light_params()


def onnx_module(nodes: Sequence[onnx.NodeProto], inputs: Mapping[str, np.ndarray],
                outputs: Sequence[str], inits: Mapping[str, np.ndarray],
                opset: int = 17) -> Module:
    """A graph of `nodes` with `inputs` typed like the given example arrays and constant
    initializers."""
    ins = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in inputs.items()]
    outs = [helper.make_tensor_value_info(k, onnx.TensorProto.UNDEFINED, None) for k in outputs]
    inits_ = [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()]
    graph = helper.make_graph(list(nodes), "g", ins, outs, inits_)
    return import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


def op_counts(module: Module) -> Counter:
    return Counter(b.expr.op for b in module.main.body if isinstance(b.expr, Call))


def assert_close(want: Sequence[np.ndarray], got: Sequence[np.ndarray], rtol: float = 1e-5,
                 scale: float = 1e-6) -> None:
    """Same dtypes and shapes; values within rtol, plus `scale` times the largest magnitude of
    the reference output (folding changes the order of roundings, not the values)."""
    assert len(want) == len(got)
    for w, g in zip(want, got, strict=True):
        assert w.dtype == g.dtype and w.shape == g.shape, (w.dtype, w.shape, g.dtype, g.shape)
        w64, g64 = w.astype(np.float64), g.astype(np.float64)
        atol = scale * float(np.abs(w64).max(initial=0.0))
        np.testing.assert_allclose(g64, w64, rtol=rtol, atol=atol)


def check_rewrite(before: Module, after: Module, inputs: Mapping[str, np.ndarray],
                  rtol: float = 1e-5, scale: float = 1e-6) -> None:
    assert [p.name for p in after.main.params] == [p.name for p in before.main.params]
    assert len(after.main.results) == len(before.main.results)
    assert_close(run(before, inputs), run(after, inputs), rtol, scale)


@functools.lru_cache(maxsize=2)
def light_case(name: str) -> tuple[Module, dict[str, np.ndarray], tuple[np.ndarray, ...]]:
    """A randomized light model, its input and its interpreter outputs."""
    model = randomize_light_model(load_light(name)[0], seed=3)
    module = import_model(model)
    inputs = light_input(model, seed=3)
    return module, inputs, tuple(run(module, inputs))


def check_light(name: str, after: Module) -> None:
    """`after` (a rewrite of the light model) computes its outputs within 1e-4 of the output
    scale."""
    module, inputs, want = light_case(name)
    assert [p.name for p in after.main.params] == [p.name for p in module.main.params]
    assert_close(want, run(after, inputs), rtol=0, scale=1e-4)
