"""The pass manager: runs a pipeline over loop IR (a PrimFunc, or a module: a sequence of
PrimFuncs) or graph IR, with instruments.

```python
pm = PassManager("simplify,unroll{max_extent=8}", instruments=[Timing(), InterpretEach()])
func = pm.run(func)
```

- The input must verify (its `VerifyError` propagates: the input is the caller's).
- Each pass's input level is checked against the current IR level, and its output against
  the level it declares.
- With `verify=True` (the default) a `VerifyEach` instrument checks the IR after each pass.
- A failure says `pass X failed after [a, b, c]: <reason>`. A pass that crashes, produces
  ill-formed IR or changes the program's meaning raises `PassFailed` (a bug in Anvil,
  with the original exception as `__cause__`); a pass that cleanly rejects its input with an
  `AnvilError`, or a pipeline applied to the wrong level, raises `PipelineError`.
- `disabled` names passes to skip (for bisection).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from compiler.errors import AnvilError
from compiler.loop.ir import PrimFunc
from compiler.loop.verifier import verify
from compiler.passes.base import all_passes
from compiler.passes.pipeline import PassSpec, Pipeline, PipelineError, parse_pipeline


class PassFailed(RuntimeError):
    """A pass misbehaved: `stage` is "crash", "verify", "mismatch" or "level"."""

    def __init__(self, pass_name: str, history: Sequence[str], reason: str,
                 stage: str = "crash") -> None:
        self.pass_name = pass_name
        self.history = list(history)
        self.reason = " ".join(reason.split())
        self.stage = stage
        super().__init__(failure_message(pass_name, history, self.reason))


class InstrumentError(Exception):
    """Raised by an instrument's check; the manager turns it into a `PassFailed`."""

    def __init__(self, reason: str, stage: str) -> None:
        self.reason = reason
        self.stage = stage
        super().__init__(reason)


def failure_message(pass_name: str, history: Sequence[str], reason: str) -> str:
    return f"pass {pass_name} failed after [{', '.join(history)}]: {reason}"


class Instrument:
    """Hooks around a pipeline run. `ir` is a tuple of PrimFuncs (loop level) or a graph
    Module. Raise `InstrumentError` to fail the current pass."""

    def before_pipeline(self, pipeline: Pipeline, ir: Any, level: str) -> None:
        pass

    def before_pass(self, spec: PassSpec, index: int, ir: Any, level: str) -> None:
        pass

    def after_pass(self, spec: PassSpec, index: int, ir: Any, level: str) -> None:
        pass

    def after_pipeline(self, ir: Any, level: str) -> None:
        pass


def ir_level(ir: Any) -> str:
    """"loop" for a PrimFunc or a sequence of them, "graph" for a graph-IR Module."""
    if isinstance(ir, PrimFunc):
        return "loop"
    if isinstance(ir, (list, tuple)) and all(isinstance(f, PrimFunc) for f in ir):
        return "loop"
    from compiler.graph.ir import Module

    if isinstance(ir, Module):
        return "graph"
    raise PipelineError(f"cannot run passes over a {type(ir).__name__}")


def _is_level(ir: Any, level: str) -> bool:
    try:
        return ir_level(ir) == level
    except PipelineError:
        return False


def verify_ir(ir: Any, level: str) -> None:
    if level == "loop":
        for f in ir:
            verify(f)
    else:
        from compiler.graph.verifier import verify as verify_graph

        verify_graph(ir)


class PassManager:
    def __init__(self, pipeline: Pipeline | str, instruments: Sequence[Instrument] = (),
                 verify: bool = True, disabled: Iterable[str] = ()) -> None:
        # text is parsed against the level of the IR it runs on (`simplify` exists at both)
        self.text = pipeline if isinstance(pipeline, str) else None
        self.pipeline = pipeline if isinstance(pipeline, Pipeline) else Pipeline()
        from compiler.passes.instruments import VerifyEach

        self.instruments = ([VerifyEach()] if verify else []) + list(instruments)
        self.disabled = frozenset(disabled)
        self.history: list[str] = []

    def run(self, ir: Any) -> Any:
        """Run the pipeline; returns IR of the same shape (PrimFunc, list, tuple, Module)."""
        level = ir_level(ir)
        single = isinstance(ir, PrimFunc)
        container = type(ir) if isinstance(ir, (list, tuple)) else tuple
        unit: Any = (ir,) if single else (tuple(ir) if level == "loop" else ir)
        if self.text is not None:
            self.pipeline = parse_pipeline(self.text, level)
        self.pipeline.check_levels(level)
        verify_ir(unit, level)
        self.history = []
        for inst in self.instruments:
            inst.before_pipeline(self.pipeline, unit, level)
        for index, spec in enumerate(self.pipeline.passes):
            if spec.name in self.disabled:
                continue
            unit, level = self._run_one(spec, index, unit, level)
            self.history.append(str(spec))
        for inst in self.instruments:
            inst.after_pipeline(unit, level)
        if level == "loop":
            return unit[0] if single and len(unit) == 1 else container(unit)
        return unit

    __call__ = run

    def _run_one(self, spec: PassSpec, index: int, unit: Any, level: str) -> tuple[Any, str]:
        info = spec.info
        where = str(spec)
        for inst in self.instruments:
            self._guard(where, lambda i=inst: i.before_pass(spec, index, unit, level))
        args = spec.arg_dict()
        try:
            if level == "loop":
                out: Any = tuple(info.run(f, args) for f in unit)
            else:
                out = info.run(unit, args)
        except AnvilError as err:
            raise PipelineError(failure_message(where, self.history, err.line())) from err
        except Exception as err:  # a crash inside a pass is a bug; keep its traceback
            reason = f"{type(err).__name__}: {err}"
            raise PassFailed(where, self.history, reason, "crash") from err
        new_level = info.output_level
        if level == "loop" and new_level == "loop":
            ok = all(isinstance(f, PrimFunc) for f in out)
        else:
            ok = _is_level(out, new_level)
        if not ok:
            bad = next((f for f in out if not isinstance(f, PrimFunc)), out) \
                if isinstance(out, tuple) else out
            raise PassFailed(where, self.history, f"returned {type(bad).__name__}, not "
                             f"{new_level} IR", "level")
        for inst in self.instruments:
            self._guard(where, lambda i=inst: i.after_pass(spec, index, out, new_level))
        return out, new_level

    def _guard(self, where: str, call: Any) -> None:
        try:
            call()
        except InstrumentError as err:
            raise PassFailed(where, self.history, err.reason, err.stage) from err.__cause__


def run_pipeline(ir: Any, pipeline: Pipeline | str, **kwargs: Any) -> Any:
    return PassManager(pipeline, **kwargs).run(ir)


def applicable(ir: Any, level: str | None = None) -> list[str]:
    """Names of the registered passes that would change `ir` with default arguments (each
    pass's own `applies` test, or a trial run)."""
    level = level or ir_level(ir)
    units: Sequence[Any]
    if level == "loop":
        units = (ir,) if isinstance(ir, PrimFunc) else tuple(ir)
    else:
        units = (ir,)
    out = []
    for info in all_passes(level):
        try:
            if any(info.applies(u) for u in units):
                out.append(info.name)
        except AnvilError:
            continue
    return out
