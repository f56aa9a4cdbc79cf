"""Pass-manager instruments: verification, timing, IR dumps, and interpretation after each
pass so a miscompile names its culprit.

- `VerifyEach()`: run the verifier after every pass (added by `PassManager(verify=True)`).
- `Timing()`: wall time per pass; `records` and `report()`.
- `Dump(directory=..., callback=..., before=..., after=...)`: the IR text before/after each
  pass, as `NN_<pass>.{before,after}.lir` (`.gir` for graph IR) files and/or
  `callback(stage, index, spec, text)`.
- `InterpretEach(args=None, seed=0, rtol=1e-4, atol=None)`: run the IR on fixed inputs
  before the pipeline and after every pass, and fail the first pass that changes the outputs.
  Loop level: each function, bit for bit (introducing undefined behaviour is a change too);
  without `args`, arguments come from `random_args(func, seed)`, and functions whose
  reference run is undefined are skipped. Graph level: `main` through the graph
  interpreter, integers and booleans exactly, floats within `rtol` and `atol` (default
  1e-5 times the largest finite magnitude of the reference output), NaN and infinities in
  the same places; without `args` (a list of arrays, or a dict from parameter name to
  array), inputs come from `random_inputs(module, seed)`, and modules whose parameters are
  not statically shaped are skipped.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compiler.dtypes import DType
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


def _float_dtype(dtype: np.dtype) -> bool:
    if dtype.kind in "OUS":
        return False
    try:
        return DType.from_np(dtype).is_float
    except (KeyError, ValueError, TypeError):
        return np.issubdtype(dtype, np.floating)


def _differing(want: np.ndarray, have: np.ndarray, rtol: float, atol: float | None
               ) -> np.ndarray:
    """A mask of the positions where `have` is not close enough to `want` (same shape)."""
    if not _float_dtype(want.dtype):
        return np.asarray(want != have, dtype=bool).reshape(want.shape)
    if rtol == 0 and atol == 0:  # bit for bit
        bits = np.dtype(f"u{want.dtype.itemsize}")
        return want.view(bits) != have.view(bits)
    w, h = want.astype(np.float64), have.astype(np.float64)
    finite = np.isfinite(w)
    if atol is None:
        atol = 1e-5 * float(np.abs(w[finite]).max()) if finite.any() else 0.0
    nan_w, nan_h = np.isnan(w), np.isnan(h)
    both = finite & np.isfinite(h)
    with np.errstate(invalid="ignore"):
        far = np.abs(w - h) > atol + rtol * np.abs(w)
    return (nan_w != nan_h) | (both & far) | (~finite & ~nan_w & (w != h)) | \
        (finite & ~np.isfinite(h))


def compare_graph_outputs(ref: Sequence[np.ndarray], got: Sequence[np.ndarray],
                          rtol: float = 1e-4, atol: float | None = None) -> str | None:
    """None if `got` matches `ref` output by output, else how the first mismatch differs.
    Integers and booleans compare exactly; floats within `atol + rtol * |ref|` (`atol` None:
    1e-5 times the largest finite |ref| of that output), with NaN and infinities in the
    same places; `rtol = atol = 0` compares floats bit for bit."""
    if len(ref) != len(got):
        return f"{len(got)} outputs, expected {len(ref)}"
    for i, (want, have) in enumerate(zip(ref, got, strict=True)):
        want, have = np.asarray(want), np.asarray(have)
        if want.dtype != have.dtype:
            return f"output {i} has dtype {have.dtype}, expected {want.dtype}"
        if want.shape != have.shape:
            return f"output {i} has shape {list(have.shape)}, expected {list(want.shape)}"
        bad = np.argwhere(_differing(want, have, rtol, atol))
        if len(bad):
            at = tuple(int(k) for k in bad[0])
            return (f"output {i} at {list(at)} differs: expected {want[at].item()!r}, got "
                    f"{have[at].item()!r} ({len(bad)} of {want.size} elements)")
    return None


class InterpretEach(Instrument):
    """`args`: loop level, one argument dict (for a single function) or `{func_name:
    argument dict}`; graph level, `main`'s inputs as a list or `{param_name: array}`.
    `rtol`/`atol` are the float tolerances of the graph level (the loop level is exact)."""

    def __init__(self, args: Mapping[str, Any] | Sequence[np.ndarray] | None = None,
                 seed: int = 0, rtol: float = 1e-4, atol: float | None = None) -> None:
        self.args = args
        self.seed = seed
        self.rtol = rtol
        self.atol = atol
        self.inputs: dict[str, Any] = {}
        self.reference: dict[str, Any] = {}
        self.skipped: list[str] = []
        self.level = ""  # the level the reference was taken at

    def _args_for(self, func: PrimFunc, single: bool) -> dict[str, Any] | None:
        if self.args is not None:
            assert isinstance(self.args, Mapping), "loop-level arguments are a dict"
            if single and func.name not in self.args:
                return dict(self.args)
            value = self.args.get(func.name)
            return dict(value) if value is not None else None
        from compiler.loop.random_program import random_args

        try:
            return random_args(func, self.seed)
        except (KeyError, AttributeError, ValueError):
            return None

    def _graph_inputs(self, module: Any) -> list[np.ndarray] | None:
        params = module.main.params
        if self.args is None:
            if not all(p.type.is_static for p in params):
                return None
            from compiler.graph.random_graph import random_inputs

            return random_inputs(module, self.seed)
        if isinstance(self.args, Mapping):
            if any(p.name not in self.args for p in params):
                return None
            return [np.asarray(self.args[p.name]) for p in params]
        return [np.asarray(a) for a in self.args]

    def _run_graph(self, module: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
        from compiler.graph.interp import run as run_graph

        return run_graph(module, [a.copy() for a in inputs])

    def before_pipeline(self, pipeline: Pipeline, ir: Any, level: str) -> None:
        self.inputs, self.reference, self.skipped = {}, {}, []
        self.level = level
        if level == "graph":
            name = ir.main.name
            inputs = self._graph_inputs(ir)
            try:
                if inputs is None:
                    raise AnvilError("no inputs")
                self.reference[name] = self._run_graph(ir, inputs)
                self.inputs[name] = inputs
            except AnvilError:
                self.skipped.append(name)
            return
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

    def _after_graph(self, module: Any) -> None:
        from compiler.graph.interp import TypeMismatch

        name = module.main.name
        inputs = self.inputs.get(name)
        if inputs is None:
            return
        try:
            got = self._run_graph(module, inputs)
        except (AnvilError, TypeMismatch) as err:
            raise InstrumentError(f"@{name} no longer runs: {err}", "mismatch") from err
        problem = compare_graph_outputs(self.reference[name], got, self.rtol, self.atol)
        if problem is not None:
            raise InstrumentError(f"@{name} changed meaning: {problem}", "mismatch")

    def after_pass(self, spec: PassSpec, index: int, ir: Any, level: str) -> None:
        if level != self.level:  # lowered past the level of the reference
            return
        if level == "graph":
            self._after_graph(ir)
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
