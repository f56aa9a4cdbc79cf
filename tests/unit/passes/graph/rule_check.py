"""Shared by the tests of rule-table graph passes (simplify, remove_identity): small cases
written as graph-IR text, edge-value inputs, and the checks every rule case gets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import Function, Module
from tests.unit.passes.graph.corpus_check import apply, assert_same_outputs, gir, ops

FLOAT_VALUES = [-0.0, 0.0, np.nan, np.inf, -np.inf, 1.5, -2.25, 1e-30, -7.0, 3.0e9, 0.1, -1.0]
INT_VALUES = [0, -1, 1, 127, -128, 2**31 - 1, -(2**31), 2**53 + 1, -(2**63), 2**63 - 1, 5, -7]


def special_inputs(fn: Function) -> list[np.ndarray]:
    """Inputs for `fn`'s params (symbolic dims of size 3) cycling through edge values."""
    out = []
    for p in fn.params:
        t = p.type
        shape = tuple(d if isinstance(d, int) else 3 for d in (t.shape or ()))
        if t.dtype.is_float:
            out.append(np.resize(np.array(FLOAT_VALUES), shape).astype(t.dtype.np))
        elif t.dtype == DType.bool:
            out.append(np.resize(np.array([True, False, False]), shape))
        else:
            info = np.iinfo(t.dtype.np)
            vals = [v for v in INT_VALUES if info.min <= v <= info.max]
            out.append(np.resize(np.array(vals, dtype=object), shape).astype(t.dtype.np))
    return out


def rewritten(text: str, pipeline: str) -> tuple[Module, Module]:
    """The module in `text` before and after `pipeline`, checked to compute the same bits on
    edge-value inputs."""
    before = gir(text)
    after = apply(before, pipeline)
    assert_same_outputs(before, after, special_inputs(before.main))
    return before, after


@dataclass
class Case:
    name: str
    body: str  # the lines between the signature and the return
    params: str  # the signature's parameters
    after: list[str]  # the ops main calls after the pass
    results: str = "%y"

    def text(self) -> str:
        return f"func @main({self.params}) {{\n{self.body}\n  return {self.results}\n}}\n"


def check_case(case: Case, pipeline: str) -> None:
    """The pass leaves exactly `case.after`; a case rewritten away returns the parameter."""
    before, after = rewritten(case.text(), pipeline)
    assert ops(after) == case.after, ops(after)
    if not case.after:
        assert after.main.results == (before.main.params[0],)


def uncovered_rules(cases: Sequence[Case], rules: Iterable[str]) -> list[str]:
    """Rule ops with no case in which a call of that op is rewritten away."""
    fired = {op for c in cases if len(c.after) < c.body.count(" = ") for op in rules
             if f"= {op}(" in c.body}
    return sorted(set(rules) - fired)
