"""PassManager: levels, verification, instruments, failure messages, applicable()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler.errors import UnsupportedError, VerifyError
from compiler.loop import IntImm, PrimFunc, parse, print_func, transform
from compiler.loop.ir import BufferStore, FloatImm
from compiler.passes import (
    Dump,
    InterpretEach,
    PassFailed,
    PassInfo,
    PassManager,
    PipelineError,
    Timing,
    applicable,
    base,
    get_pass,
    parse_pipeline,
    run_pipeline,
)

SRC = """\
func @f(A: float32[8], B: float32[8]) {
  for i in serial(0, 8) {
    B[i] = A[i] * 2.0 + 0.0 * 1.0
  }
}
"""
FUNC = parse(SRC)


def _register(monkeypatch: pytest.MonkeyPatch, name: str, fn: Any, level: str = "loop",
              output_level: str | None = None) -> None:
    info = PassInfo(name, level, f"test pass {name}", (), fn, output_level or level,
                    module=f"tests.{name}")
    monkeypatch.setitem(base._REGISTRY, (level, name), info)


def test_runs_a_pipeline() -> None:
    out = run_pipeline(FUNC, "simplify,unroll{max_extent=8}")
    assert isinstance(out, PrimFunc)
    assert "for" not in print_func(out)


def test_module_in_module_out() -> None:
    g = parse(SRC.replace("@f", "@g"))
    out = PassManager("simplify").run([FUNC, g])
    assert isinstance(out, list) and [f.name for f in out] == ["f", "g"]
    out_t = PassManager("simplify").run((FUNC,))
    assert isinstance(out_t, tuple)


def test_crash_names_the_pass_and_its_history(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(func: PrimFunc) -> PrimFunc:
        raise ZeroDivisionError("boom")

    _register(monkeypatch, "broken", broken)
    with pytest.raises(PassFailed) as info:
        PassManager("simplify,unroll{max_extent=2},broken,dce").run(FUNC)
    err = info.value
    assert str(err) == ("pass broken failed after [simplify, unroll{max_extent=2}]: "
                        "ZeroDivisionError: boom")
    assert err.pass_name == "broken" and err.stage == "crash"
    assert err.history == ["simplify", "unroll{max_extent=2}"]
    assert isinstance(err.__cause__, ZeroDivisionError)


def test_ill_formed_output_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def bad(func: PrimFunc) -> PrimFunc:
        return transform(func, lambda n: BufferStore(n.buffer, IntImm(1), n.indices)
                         if isinstance(n, BufferStore) else None)  # type: ignore[return-value]

    _register(monkeypatch, "bad_types", bad)
    with pytest.raises(PassFailed, match=r"^pass bad_types failed after \[simplify\]: output "
                                         r"does not verify: @f: stored value is int32") as info:
        PassManager("simplify,bad_types").run(FUNC)
    assert info.value.stage == "verify"
    PassManager("simplify,bad_types", verify=False).run(FUNC)  # unchecked when asked


def test_miscompile_names_its_culprit(monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong(func: PrimFunc) -> PrimFunc:
        return transform(func, lambda n: FloatImm(3.0) if n == FloatImm(2.0) else None)  # type: ignore[return-value]

    _register(monkeypatch, "wrong", wrong)
    with pytest.raises(PassFailed) as info:
        PassManager("simplify,wrong,dce", instruments=[InterpretEach()]).run(FUNC)
    err = info.value
    assert err.stage == "mismatch" and err.pass_name == "wrong"
    assert str(err).startswith("pass wrong failed after [simplify]: @f changed meaning: "
                               "output B[0] differs")


def test_introduced_undefined_behaviour_is_a_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    def oob(func: PrimFunc) -> PrimFunc:
        return transform(func, lambda n: BufferStore(n.buffer, n.value, (IntImm(99),))
                         if isinstance(n, BufferStore) else None)  # type: ignore[return-value]

    _register(monkeypatch, "oob", oob)
    args = {"A": np.arange(8, dtype=np.float32), "B": np.zeros(8, np.float32)}
    with pytest.raises(PassFailed, match="introduced undefined behavior: .*out-of-bounds store"):
        PassManager("oob", instruments=[InterpretEach(args)]).run(FUNC)
    assert args["B"].sum() == 0  # the instrument works on copies


def test_clean_rejection_is_a_pipeline_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def picky(func: PrimFunc) -> PrimFunc:
        raise UnsupportedError("cannot handle this", "@f")

    _register(monkeypatch, "picky", picky)
    with pytest.raises(PipelineError, match=r"^pass picky failed after \[dce\]: @f: cannot "
                                            r"handle this$"):
        PassManager("dce,picky").run(FUNC)


def test_wrong_return_type(monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "returns_none", lambda func: None)
    with pytest.raises(PassFailed, match="returned NoneType, not loop IR") as info:
        PassManager("returns_none").run(FUNC)
    assert info.value.stage == "level"


def test_levels_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "graph_thing", lambda m: m, level="graph")
    with pytest.raises(PipelineError, match="pass 'graph_thing' works on graph IR, not loop IR "
                                            "at column 10"):
        PassManager("simplify,graph_thing").run(FUNC)
    graph_pipeline = parse_pipeline("graph_thing", "graph")
    with pytest.raises(PipelineError, match="pass 'graph_thing' .#1. works on graph IR, but "
                                            "receives loop IR"):
        PassManager(graph_pipeline).run(FUNC)
    with pytest.raises(PipelineError, match="cannot run passes over a str"):
        PassManager("simplify").run("not IR")


def test_graph_level_runs_graph_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    from compiler.dtypes import DType
    from compiler.graph.ir import Binding, Call, Function, Module, TensorType, Var

    t = TensorType((2,), DType.float32)
    x, y = Var("x", t), Var("y", t)
    module = Module((Function("main", (x,), (Binding((y,), Call("Relu", (x,))),), (y,)),))
    seen = []
    _register(monkeypatch, "graph_id", lambda m: seen.append(m) or m, level="graph")
    assert PassManager("graph_id", instruments=[Timing()]).run(module) is module
    assert seen == [module]
    assert applicable(module) == []  # no graph passes are registered yet


def test_input_must_verify() -> None:
    bad = parse(SRC)
    bad = PrimFunc(bad.name, bad.params[:1], bad.body)  # B is no longer defined
    with pytest.raises(VerifyError, match="undefined buffer 'B'"):
        PassManager("simplify").run(bad)


def test_disabled_passes_are_skipped() -> None:
    pm = PassManager("simplify,unroll", disabled=["unroll"])
    out = pm.run(FUNC)
    assert "for i" in print_func(out) and pm.history == ["simplify"]


def test_timing_and_dump(tmp_path: Path) -> None:
    timing = Timing()
    seen: list[tuple[str, int, str]] = []
    dump = Dump(tmp_path / "dump", callback=lambda stage, k, spec, text: seen.append(
        (stage, k, spec.name)))
    PassManager("simplify,unroll{max_extent=8}", instruments=[timing, dump]).run(FUNC)

    assert [name for name, _ in timing.records] == ["simplify", "unroll"]  # 8 is the default
    assert all(t >= 0 for _, t in timing.records) and "total" in timing.report()
    assert seen == [("before", 0, "simplify"), ("after", 0, "simplify"),
                    ("before", 1, "unroll"), ("after", 1, "unroll")]
    files = sorted(p.name for p in (tmp_path / "dump").iterdir())
    assert files == ["00_simplify.after.lir", "00_simplify.before.lir",
                     "01_unroll.after.lir", "01_unroll.before.lir"]
    text = (tmp_path / "dump" / "01_unroll.after.lir").read_text()
    assert text.startswith("# pipeline: simplify,unroll\n# after pass 1: unroll\n")
    parse(text)  # dumps are readable IR text


def test_interpret_each_with_given_args() -> None:
    args = {"A": np.arange(8, dtype=np.float32), "B": np.zeros(8, np.float32)}
    inst = InterpretEach({"f": args})
    PassManager("simplify,vectorize", instruments=[inst]).run([FUNC])
    assert inst.reference["f"]["B"][3] == np.float32(6.0)


def test_applicable() -> None:
    names = applicable(FUNC)
    assert {"simplify", "unroll", "vectorize", "split"} <= set(names)
    assert "thread_bind" in names and "sync_insert" not in names
    # an 8-iteration loop is too little work for a parallel region, unless asked
    assert "parallelize" not in names
    assert get_pass("parallelize", "loop").applies(FUNC, {"min_work": 8})
    assert "flatten_buffer" not in names  # no allocations to flatten
    done = run_pipeline(FUNC, "simplify")
    assert "simplify" not in applicable(done)


def test_passes_are_deterministic() -> None:
    a = run_pipeline(FUNC, "O3")
    b = run_pipeline(parse(SRC), "O3")
    assert a == b and print_func(a) == print_func(b)
