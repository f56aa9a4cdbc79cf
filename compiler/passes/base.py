"""The pass registry: one pass per module, named after its file.

Every module under `compiler/passes/loop/` and `compiler/passes/graph/` defines exactly one
pass with the `loop_pass` / `graph_pass` decorator:

```python
@loop_pass("Unroll constant-extent loops.", Arg("max_extent", int, 8, "largest extent"))
def unroll(func: PrimFunc, max_extent: int) -> PrimFunc: ...
```

The registry name is the module's file name (`unroll.py` -> `unroll`); a name is unique
within its IR level (`simplify` exists at both levels, and a pipeline's level picks one).
A pass declares the IR level it consumes (`"loop"` or `"graph"`) and the one it produces
(the same, unless it lowers), a one-line `doc`, typed arguments with defaults, and
optionally `applies(unit, **args) -> bool`, a cheap test of whether it can change a unit.
Loop passes map one `PrimFunc` to another; graph passes map a graph-IR `Module` to another.

`discover()` imports every pass module once; `get_pass`, `all_passes` and `pass_names` call it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

LEVELS = ("graph", "loop")
ArgValue = int | float | bool | str
_ARG_TYPES: tuple[type, ...] = (bool, int, float, str)


@dataclass(frozen=True)
class Arg:
    """One typed pass argument. `low` is an inclusive lower bound for numbers; `choices`
    lists the only accepted values."""

    name: str
    type: type
    default: ArgValue
    doc: str = ""
    low: int | float | None = None
    choices: tuple[ArgValue, ...] | None = None

    def __post_init__(self) -> None:
        if self.type not in _ARG_TYPES:
            raise TypeError(f"argument {self.name}: unsupported type {self.type.__name__}")
        if self.check(self.default) is not None:
            raise TypeError(f"argument {self.name}: bad default {self.default!r}")

    def check(self, value: object) -> str | None:
        """None if `value` is acceptable, else why not."""
        if self.type is float and type(value) is int:
            value = float(value)
        if type(value) is not self.type:
            return f"expects {self.type.__name__}, got {type(value).__name__}"
        if self.low is not None and value < self.low:  # type: ignore[operator]
            return f"must be at least {self.low}, got {value}"
        if self.choices is not None and value not in self.choices:
            options = ", ".join(str(c) for c in self.choices)
            return f"must be one of {options}, got {value!r}"
        return None


@dataclass(frozen=True)
class PassInfo:
    """A registered pass."""

    name: str
    level: str
    doc: str
    args: tuple[Arg, ...]
    fn: Callable[..., Any] = field(repr=False)
    output_level: str
    applies_fn: Callable[..., bool] | None = field(default=None, repr=False)
    module: str = ""

    def arg(self, name: str) -> Arg | None:
        return next((a for a in self.args if a.name == name), None)

    def defaults(self) -> dict[str, ArgValue]:
        return {a.name: a.default for a in self.args}

    def run(self, unit: Any, args: dict[str, ArgValue] | None = None) -> Any:
        return self.fn(unit, **{**self.defaults(), **(args or {})})

    def applies(self, unit: Any, args: dict[str, ArgValue] | None = None) -> bool:
        """Whether the pass can change `unit`: its own `applies`, or else a trial run."""
        full = {**self.defaults(), **(args or {})}
        if self.applies_fn is not None:
            return bool(self.applies_fn(unit, **full))
        return self.fn(unit, **full) != unit

    def signature(self) -> str:
        """`name{arg=default, ...}`, for listings."""
        if not self.args:
            return self.name
        from compiler.passes.pipeline import format_value

        inner = ", ".join(f"{a.name}={format_value(a.default)}" for a in self.args)
        return f"{self.name}{{{inner}}}"


_REGISTRY: dict[tuple[str, str], PassInfo] = {}  # (level, name) -> pass
_DISCOVERED = False


def register(info: PassInfo) -> PassInfo:
    if info.level not in LEVELS or info.output_level not in LEVELS:
        raise ValueError(f"pass {info.name}: unknown IR level {info.level!r}")
    old = _REGISTRY.get((info.level, info.name))
    if old is not None and old.module != info.module:
        raise ValueError(f"pass {info.name} is registered twice ({old.module}, {info.module})")
    _REGISTRY[(info.level, info.name)] = info
    return info


PassFn = Callable[..., Any]


def _decorator(level: str, doc: str, args: Sequence[Arg], applies: Callable[..., bool] | None,
               output_level: str | None) -> Callable[[PassFn], PassFn]:
    if "\n" in doc or not doc.strip():
        raise ValueError("a pass doc is one non-empty line")

    def deco(fn: PassFn) -> PassFn:
        module = fn.__module__
        name = module.rsplit(".", 1)[-1]
        expected = f"compiler.passes.{level}."
        if not module.startswith(expected):
            raise ValueError(f"{level} pass {fn.__name__} must live in {expected}<name>")
        register(PassInfo(name, level, doc.strip(), tuple(args), fn, output_level or level,
                          applies, module))
        return fn

    return deco


def loop_pass(doc: str, *args: Arg, applies: Callable[..., bool] | None = None,
              output_level: str | None = None) -> Callable[[PassFn], PassFn]:
    """Register the decorated `fn(func: PrimFunc, **args) -> PrimFunc` as a loop pass."""
    return _decorator("loop", doc, args, applies, output_level)


def graph_pass(doc: str, *args: Arg, applies: Callable[..., bool] | None = None,
               output_level: str | None = None) -> Callable[[PassFn], PassFn]:
    """Register the decorated `fn(module, **args) -> module` as a graph pass."""
    return _decorator("graph", doc, args, applies, output_level)


def discover() -> None:
    """Import every pass module under compiler/passes/{loop,graph}/ (once)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    for level in LEVELS:
        package = importlib.import_module(f"compiler.passes.{level}")
        for mod in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if not mod.name.startswith("_"):
                importlib.import_module(f"compiler.passes.{level}.{mod.name}")
    _DISCOVERED = True


def get_pass(name: str, level: str | None = None) -> PassInfo | None:
    """The pass `name` of IR `level`; without a level, the loop pass of that name if there is
    one, else the graph pass (names may repeat across levels: `simplify`, `cse`, `dce`)."""
    discover()
    if level is not None:
        return _REGISTRY.get((level, name))
    return _REGISTRY.get(("loop", name)) or _REGISTRY.get(("graph", name))


def all_passes(level: str | None = None) -> list[PassInfo]:
    """Registered passes (of one level), sorted by name."""
    discover()
    return sorted((p for p in _REGISTRY.values() if level is None or p.level == level),
                  key=lambda p: p.name)


def pass_names(level: str | None = None) -> list[str]:
    return [p.name for p in all_passes(level)]


def format_pass_list(level: str | None = None) -> str:
    """One line per pass, `level  name{args}  doc`: the text of `anvil opt --list`."""
    rows = [(p.level, p.signature(), p.doc) for p in all_passes(level)]
    if not rows:
        return ""
    width = max(len(r[1]) for r in rows)
    return "\n".join(f"{lv:<5}  {sig:<{width}}  {doc}" for lv, sig, doc in rows)
