"""Checks shared by the graph-pass tests: exact equality of interpreter outputs, and one run of
a pass over the light models and the ONNX node-test models."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model
from compiler.graph.interp import run
from compiler.graph.ir import Call, Module, walk_functions
from compiler.graph.parser import parse
from compiler.passes.graph_util import is_pure
from compiler.passes.manager import run_pipeline
from oracles.conformance import _arrays, load_cases
from oracles.models import LIGHT_MODELS, load_light


def gir(text: str) -> Module:
    return parse("module opset=17\n\n" + text)


def apply(module: Module, pipeline: str) -> Module:
    """The pipeline's result, verified after every pass by the pass manager."""
    return run_pipeline(module, pipeline)


def ops(module: Module) -> list[str]:
    """The ops called in `main` (not in subgraphs), in binding order."""
    return [b.expr.op for b in module.main.body if isinstance(b.expr, Call)]


def all_ops(module: Module) -> list[str]:
    """The ops called in `main` and every subgraph."""
    return [b.expr.op for f in walk_functions(module.main) for b in f.body
            if isinstance(b.expr, Call)]


def deterministic(module: Module) -> bool:
    return all(is_pure(b.expr) for f in walk_functions(module.main) for b in f.body
               if isinstance(b.expr, Call))


def assert_identical(a: np.ndarray, b: np.ndarray) -> None:
    """Same dtype, shape and bits (so NaNs of every float type compare equal to themselves)."""
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
    if a.dtype == object:
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_array_equal(np.ascontiguousarray(a).view(np.uint8),
                                      np.ascontiguousarray(b).view(np.uint8))


def assert_same_outputs(before: Module, after: Module, inputs: Sequence[np.ndarray]) -> None:
    want, got = run(before, inputs), run(after, inputs)
    assert len(want) == len(got)
    for w, g in zip(want, got, strict=True):
        assert_identical(w, g)


@functools.lru_cache(maxsize=1)
def node_models() -> tuple[tuple[str, Module, tuple[np.ndarray, ...]], ...]:
    """(name, module, first input set) of every node test the importer accepts."""
    out = []
    for case in load_cases():
        try:
            module = import_model(case.model)
        except AnvilError:
            continue
        out.append((case.name, module, tuple(_arrays(case.data_sets[0][0]))))
    return tuple(out)


def check_corpus(pipeline: str) -> int:
    """The pipeline keeps every light model verifying, and every deterministic node-test
    model computing exactly what it computed before. Returns how many node-test models it
    changed."""
    for name in LIGHT_MODELS:
        apply(import_model(load_light(name)[0]), pipeline)
    models = node_models()
    assert len(models) > 1000
    compared = changed = 0
    for name, module, inputs in models:
        out = apply(module, pipeline)
        changed += out != module
        assert [p.name for p in out.main.params] == [p.name for p in module.main.params], name
        assert len(out.main.results) == len(module.main.results), name
        if deterministic(module):
            try:
                assert_same_outputs(module, out, inputs)
            except AssertionError as err:
                raise AssertionError(f"{name}: {err}") from None
            compared += 1
    assert compared > 1000
    return changed
