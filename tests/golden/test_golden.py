"""Golden tests: each `tests/golden/loop/<pass>/<name>.lir` is run through the pipeline in
its `# pipeline:` header (verified and interpreted after every pass) and must equal
`<name>.expected.lir` structurally. Each `tests/golden/graph/<pass>/<name>.gir` likewise
(verified after every pass) must equal `<name>.expected.gir` as a Module, and its interpreter
outputs on random inputs must not change. `python tests/golden/regen.py` shows (or, with
`--write`, rewrites) the expected files; review every change by hand."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from compiler.graph import parser as graph_parser
from compiler.graph import verifier as graph_verifier
from compiler.graph.printer import print_module
from compiler.loop import first_difference, parse, print_func, verify
from compiler.passes import pass_names, pipeline
from tests.golden.golden_util import (
    ROOT,
    expected_path,
    header_pipeline,
    inputs,
    level_of,
    output_difference,
    run_golden,
    run_graph_golden,
)

CASES = inputs("loop")
GRAPH_CASES = inputs("graph")


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden(path: Path) -> None:
    _, got = run_golden(path)
    exp_file = expected_path(path)
    assert exp_file.exists(), f"missing {exp_file.name} (see regen.py)"
    expected = parse(exp_file.read_text(), str(exp_file))
    verify(expected)
    diff = first_difference(got, expected)
    if diff is not None:
        text = "\n".join(difflib.unified_diff(
            print_func(expected).splitlines(), print_func(got).splitlines(), "expected", "got",
            lineterm=""))
        pytest.fail(f"{path.name}: structural mismatch at {diff}\n{text}")


@pytest.mark.parametrize("path", CASES + GRAPH_CASES,
                         ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.stem}")
def test_golden_names_its_pass(path: Path) -> None:
    pipe = pipeline.parse_pipeline(header_pipeline(path.read_text(), path), level_of(path))
    assert path.parent.name in pipe.names() or path.parent.name == "pipelines"


@pytest.mark.parametrize("level", ["loop", "graph"])
def test_every_pass_has_a_golden(level: str) -> None:
    covered = {p.parent.name for p in (CASES if level == "loop" else GRAPH_CASES)}
    missing = [name for name in pass_names(level) if name not in covered]
    assert not missing, f"{level} passes without golden tests: {missing}"


@pytest.mark.parametrize("level", ["loop", "graph"])
def test_golden_dirs_are_passes(level: str) -> None:
    dirs = {p.name for p in (ROOT / level).iterdir() if p.is_dir()}
    unknown = dirs - set(pass_names(level)) - {"pipelines"}
    assert not unknown, f"golden directories that name no pass: {sorted(unknown)}"


@pytest.mark.parametrize("path", GRAPH_CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_graph_golden(path: Path) -> None:
    run = run_graph_golden(path)
    exp_file = expected_path(path)
    assert exp_file.exists(), f"missing {exp_file.name} (see regen.py)"
    expected = graph_parser.parse(exp_file.read_text())
    graph_verifier.verify(expected)
    if run.output != expected:
        text = "\n".join(difflib.unified_diff(
            print_module(expected).splitlines(), print_module(run.output).splitlines(),
            "expected", "got", lineterm=""))
        pytest.fail(f"{path.name}: output differs from {exp_file.name}\n{text}")
    problem = output_difference(run.before, run.after, run.rtol, run.atol)
    assert problem is None, f"{path.name}: {run.pipeline} changed the outputs: {problem}"


def test_graph_golden_dirs_are_passes() -> None:
    dirs = {p.name for p in (ROOT / "graph").iterdir() if p.is_dir()}
    unknown = dirs - set(pass_names("graph")) - {"pipelines"}
    assert not unknown, f"golden directories that name no pass: {sorted(unknown)}"
