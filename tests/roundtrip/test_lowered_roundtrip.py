"""parse(print(f)) == f, and the verifier accepts f, for every kernel lowered ahead of time
from the ONNX node tests and the light models. (Kernels whose specialisation needs run-time
values are covered where the native conformance suites run them.)"""

from __future__ import annotations

from compiler.driver import compile as compile_model
from compiler.errors import AnvilError
from compiler.loop.parser import parse_module
from compiler.loop.printer import print_module
from compiler.loop.verifier import verify
from oracles.conformance import load_cases
from oracles.models import LIGHT_MODELS, load_light


def _check(funcs) -> None:
    text = print_module(funcs)
    back = parse_module(text)
    assert tuple(back) == tuple(funcs)
    for f in funcs:
        verify(f)


def test_node_test_kernels_roundtrip():
    checked = 0
    for case in load_cases():
        try:
            funcs = compile_model(case.model, target="lir").lower_static()
        except AnvilError:
            continue  # needs run-time values, or unsupported natively: see the conformance suites
        if funcs:
            _check(funcs)
            checked += 1
    assert checked > 1000, f"only {checked} node-test models lowered"


def test_light_model_kernels_roundtrip():
    for name in LIGHT_MODELS:
        model, _ = load_light(name)
        funcs = compile_model(model, target="lir").lower_static()
        assert len(funcs) > 5
        _check(funcs)
