"""parse(print(f)) == f, and the verifier accepts f, for every kernel lowered from the ONNX
node tests and the light models: those lowered ahead of time (`lower_static`), and those
whose specialisation needs run-time values (shape inputs computed at run time, host ops such
as NonZero feeding kernels, subgraphs), which are lowered by running the model on its own
inputs with the loop interpreter as codegen."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from compiler.driver import compile as compile_model
from compiler.errors import AnvilError
from compiler.loop.parser import parse_module
from compiler.loop.printer import print_module
from compiler.loop.verifier import verify
from oracles.conformance import _arrays, load_cases, read_xfail, xfail_reason
from oracles.models import LIGHT_MODELS, load_light


def _check(funcs, where: str = "") -> None:
    text = print_module(funcs)
    back = parse_module(text)
    assert tuple(back) == tuple(funcs), where
    for f in funcs:
        verify(f)


def test_node_test_kernels_roundtrip():
    checked = 0
    for case in load_cases():
        try:
            funcs = compile_model(case.model, target="lir").lower_static()
        except AnvilError:
            continue  # needs run-time values (test_run_time_kernels_roundtrip), or unsupported
        if funcs:
            _check(funcs, case.name)
            checked += 1
    assert checked > 1000, f"only {checked} node-test models lowered"


def _is_expanded(name: str) -> bool:
    return name.endswith("_expanded") or "_expanded_" in name


def _run_time_kernels(select: Callable[[str], bool]) -> tuple[int, int]:
    """Round-trip the kernels of every selected node-test case that `lower_static` cannot
    lower, after running it on its inputs: (models checked, kernels checked). Cases xfailed
    for the lir target are skipped; any other error, at run time included, fails."""
    xfails = read_xfail(target="lir")
    models = kernels = 0
    for case in load_cases():
        if not select(case.name) or xfail_reason(case.name, xfails) is not None:
            continue
        try:
            exe = compile_model(case.model, target="lir")
        except AnvilError:
            continue  # not compilable at all: the conformance suites cover these
        try:
            exe.lower_static()
            continue  # covered by test_node_test_kernels_roundtrip
        except AnvilError:
            pass
        for inputs, _ in case.data_sets:
            exe.run(_arrays(inputs))
        funcs = exe.kernel_funcs()
        if funcs:
            _check(funcs, case.name)
            models += 1
            kernels += len(funcs)
    return models, kernels


def test_run_time_kernels_roundtrip():
    """Single-op cases (the `_expanded` function bodies are in the slow test below)."""
    models, kernels = _run_time_kernels(lambda name: not _is_expanded(name))
    assert models >= 250 and kernels >= 260, f"only {models} models ({kernels} kernels)"


@pytest.mark.slow
def test_run_time_kernels_of_expanded_functions_roundtrip():
    models, kernels = _run_time_kernels(_is_expanded)
    assert models >= 290 and kernels >= 7500, f"only {models} models ({kernels} kernels)"


def test_light_model_kernels_roundtrip():
    for name in LIGHT_MODELS:
        model, _ = load_light(name)
        funcs = compile_model(model, target="lir").lower_static()
        assert len(funcs) > 5
        _check(funcs, name)
