"""Pass-manager instruments: verification, timing, IR dumps, and interpretation after each
pass so a miscompile names its culprit.

- `VerifyEach()`: run the verifier after every pass (added by `PassManager(verify=True)`).
- `Timing()`: wall time per pass; `records` and `report()`.
- `Dump(directory=..., callback=..., before=..., after=...)`: the IR text before/after each
  pass, as `NN_<pass>.{before,after}.lir` (`.gir` for graph IR) files and/or
  `callback(stage, index, spec, text)`.
- `InterpretEach(args=None, seed=0)`: run each loop function on fixed arguments before the
  pipeline and after every pass, and fail the first pass whose outputs differ bit for bit
  (or that introduces undefined behaviour). Without `args`, arguments come from
  `random_args(func, seed)`. Functions whose reference run is undefined are skipped.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from compiler.errors import AnvilError, VerifyError
from compiler.loop.interp import UndefinedBehavior, run
from compiler.loop.ir import PrimFunc
from compiler.loop.printer import print_module
from compiler.passes.manager import Instrument, InstrumentError, verify_ir
from compiler.passes.pipeline import PassSpec, Pipeline


class VerifyEach(Instrument):
    def after_pass(self, spec: PassSpec, index: int, ir: Any, level: str) -> None:
        try:
            verify_ir(ir, level)
        except VerifyError as err:
            raise InstrumentError(f"output does not verify: {err}", "verify") from err


class Timing(Instrument):
    def __init__(self) -> None:
        self.records: list[tuple[str, float]] = []
        self._start = 0.0

    def before_pipeline(self, pipeline: Pipeline, ir: Any, level: str) -> None:
        self.records = []

    def before_pass(self, spec: PassSpec, index: int, ir: Any, level: str) -> None:
        self._start = time.perf_counter()

    def after_pass(self, spec: PassSpec, index: int, ir: Any, level: str) -> None:
        self.records.append((str(spec), time.perf_counter() - self._start))

    def total(self) -> float:
        return sum(t for _, t in self.records)

    def report(self) -> str:
        lines = [f"{t * 1e3:9.3f} ms  {name}" for name, t in self.records]
        lines.append(f"{self.total() * 1e3:9.3f} ms  total")
        return "\n".join(lines)


def print_ir(ir: Any, level: str) -> str:
    if level == "loop":
        return print_module(list(ir))
    from compiler.graph.printer import print_module as print_graph

    return print_graph(ir)


class Dump(Instrument):
    def __init__(self, directory: str | Path | None = None,
                 callback: Callable[[str, int, PassSpec, str], None] | None = None,
                 before: bool = True, after: bool = True) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.callback = callback
        self.before = before
        self.after = after
        self.pipeline = ""

    def before_pipeline(self, pipeline: Pipeline, ir: Any, level: str) -> None:
        self.pipeline = str(pipeline)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    def _emit(self, stage: str, spec: PassSpec, index: int, ir: Any, level: str) -> None:
        text = print_ir(ir, level)
        if self.callback is not None:
            self.callback(stage, index, spec, text)
        if self.directory is not None:
            header = f"# pipeline: {self.pipeline}\n# {stage} pass {index}: {spec}\n"
            ext = "lir" if level == "loop" else "gir"
            path = self.directory / f"{index:02d}_{spec.name}.{stage}.{ext}"
            path.write_text(header + text)

    def before_pass(self, spec: PassSpec, index: int, ir: Any, level: str) -> None:
        if self.before:
            self._emit("before", spec, index, ir, level)

    def after_pass(self, spec: PassSpec, index: int, ir: Any, level: str) -> None:
        if self.after:
            self._emit("after", spec, index, ir, level)


Outcome = dict[str, np.ndarray] | str  # outputs, or the message of undefined behaviour


def execute(func: PrimFunc, args: Mapping[str, Any]) -> Outcome:
    """Run `func` on deep copies of `args`: its outputs, or the UB message as a string."""
    try:
        return run(func, copy.deepcopy(dict(args)))
    except UndefinedBehavior as err:
        return f"undefined behavior: {err}"


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def compare_outcomes(ref: Outcome, got: Outcome) -> str | None:
    """None if `got` matches `ref` (a UB reference matches anything), else how it differs."""
    if isinstance(ref, str):
        return None
    if isinstance(got, str):
        return f"introduced {got}"
    for name, want in ref.items():
        have = got.get(name)
        if have is None:
            return f"output {name} is missing"
        if not same_bits(want, have):
            diff = np.argwhere(np.frombuffer(want.tobytes(), np.uint8).reshape(want.shape + (-1,))
                               != np.frombuffer(have.tobytes(), np.uint8)
                               .reshape(have.shape + (-1,)))
            at = tuple(int(i) for i in diff[0][:-1]) if len(diff) else ()
            return (f"output {name}{list(at)} differs: expected {want[at]!r}, got "
                    f"{have[at]!r}")
    return None


class InterpretEach(Instrument):
    """`args`: one argument dict (for a single function) or `{func_name: argument dict}`."""

    def __init__(self, args: Mapping[str, Any] | None = None, seed: int = 0) -> None:
        self.args = args
        self.seed = seed
        self.inputs: dict[str, dict[str, Any]] = {}
        self.reference: dict[str, Outcome] = {}
        self.skipped: list[str] = []

    def _args_for(self, func: PrimFunc, single: bool) -> dict[str, Any] | None:
        if self.args is not None:
            if single and func.name not in self.args:
                return dict(self.args)
            value = self.args.get(func.name)
            return dict(value) if value is not None else None
        from compiler.loop.random_program import random_args

        try:
            return random_args(func, self.seed)
        except (KeyError, AttributeError, ValueError):
            return None

    def before_pipeline(self, pipeline: Pipeline, ir: Any, level: str) -> None:
        self.inputs, self.reference, self.skipped = {}, {}, []
        if level != "loop":
            return
        for f in ir:
            args = self._args_for(f, len(ir) == 1)
            if args is None:
                self.skipped.append(f.name)
                continue
            try:
                outcome = execute(f, args)
            except AnvilError:
                self.skipped.append(f.name)
                continue
            self.inputs[f.name] = args
            self.reference[f.name] = outcome

    def after_pass(self, spec: PassSpec, index: int, ir: Any, level: str) -> None:
        if level != "loop":
            return
        for f in ir:
            args = self.inputs.get(f.name)
            if args is None:
                continue
            try:
                got = execute(f, args)
            except AnvilError as err:
                raise InstrumentError(f"@{f.name} no longer runs: {err}", "mismatch") from err
            problem = compare_outcomes(self.reference[f.name], got)
            if problem is not None:
                raise InstrumentError(f"@{f.name} changed meaning: {problem}", "mismatch")
