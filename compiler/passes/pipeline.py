"""Pipelines as one line of text: `simplify,unroll{max_extent=8},vectorize{width=8}`.

Grammar (whitespace is allowed between tokens):

```
pipeline := [item ("," item)*]
item     := NAME ["{" [arg ("," arg)*] "}"]
arg      := NAME "=" value
value    := integer | float | true | false | "json string" | bare-word
```

An item may also be a named pipeline (`O0`..`O3`), which expands to its passes. Arguments are
checked against the pass's declared types; `str(parse_pipeline(t))` prints each pass with
only its non-default arguments, in declaration order, and `parse_pipeline(str(p)) == p`.
Every error is one `PipelineError` line naming the column.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from compiler.errors import AnvilError
from compiler.passes.base import ArgValue, PassInfo, get_pass, pass_names


class PipelineError(AnvilError):
    kind = "pipeline error"


# The named pipelines of each IR level. O0 does nothing; O3 is the full sequence.
_LOOP_O1 = "simplify,remove_noop,inline_let,dce"
_LOOP_O2 = ("reduce_interchange,loop_canonicalize,simplify,loop_partition,simplify,inline_let,"
            "licm,hoist_if,cse,dead_store_elim,dce,compact_alloc,storage_rewrite,parallelize,"
            "hoist_alloc,remove_noop")
_LOOP_O3 = ("reduce_interchange,loop_canonicalize,simplify,loop_partition,simplify,inline_let,"
            "licm,hoist_if,cse,dead_store_elim,dce,compact_alloc,storage_rewrite,lower_intrinsics,"
            "loop_fusion,if_to_select,parallelize,vectorize{width=16,min_lanes=4},hoist_alloc,"
            "simplify,strength_reduce,narrow_index,cse,remove_noop")
_GRAPH_O1 = "fold_constant,remove_identity,simplify,dce"
_GRAPH_O2 = ("canonicalize,fold_constant,remove_identity,simplify,fold_batchnorm,fold_scale,cse,"
             "dce,fuse_ops")
_GRAPH_O3 = ("canonicalize,fold_constant,remove_identity,simplify,fold_batchnorm,fold_scale,cse,"
             "dce,layout,fuse_ops")
NAMED_PIPELINES: dict[str, dict[str, str]] = {
    "loop": {"O0": "", "O1": _LOOP_O1, "O2": _LOOP_O2, "O3": _LOOP_O3},
    "graph": {"O0": "", "O1": _GRAPH_O1, "O2": _GRAPH_O2, "O3": _GRAPH_O3},
}

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_RE = re.compile(r"[A-Za-z0-9_.+\-]+")
_INT_RE = re.compile(r"[+-]?\d+")


def format_value(value: ArgValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else json.dumps(str(value))
    if isinstance(value, int):
        return str(value)
    if _NAME_RE.fullmatch(value) and value not in ("true", "false"):
        return value
    return json.dumps(value)


@dataclass(frozen=True)
class PassSpec:
    """One pass of a pipeline with every argument resolved (defaults included)."""

    name: str
    args: tuple[tuple[str, ArgValue], ...] = ()
    level: str = "loop"

    @property
    def info(self) -> PassInfo:
        info = get_pass(self.name, self.level)
        if info is None:
            raise PipelineError(f"unknown pass '{self.name}'")
        return info

    def arg_dict(self) -> dict[str, ArgValue]:
        return dict(self.args)

    def __str__(self) -> str:
        defaults = self.info.defaults()
        shown = [(k, v) for k, v in self.args if v != defaults.get(k)
                 or type(v) is not type(defaults.get(k))]
        if not shown:
            return self.name
        return self.name + "{" + ",".join(f"{k}={format_value(v)}" for k, v in shown) + "}"


@dataclass(frozen=True)
class Pipeline:
    passes: tuple[PassSpec, ...] = ()

    def __str__(self) -> str:
        return ",".join(str(p) for p in self.passes)

    def __len__(self) -> int:
        return len(self.passes)

    def names(self) -> list[str]:
        return [p.name for p in self.passes]

    def __add__(self, other: Pipeline) -> Pipeline:
        return Pipeline(self.passes + other.passes)

    def check_levels(self, level: str) -> str:
        """Check that each pass consumes the level its predecessor produces, starting from
        `level`; returns the final level."""
        for k, spec in enumerate(self.passes):
            info = spec.info
            if info.level != level:
                raise PipelineError(f"pass '{spec.name}' (#{k + 1}) works on {info.level} IR, "
                                    f"but receives {level} IR")
            level = info.output_level
        return level


def make_spec(name: str, level: str | None = None, **args: ArgValue) -> PassSpec:
    """A PassSpec from Python values, checked like parsed text."""
    info = get_pass(name, level)
    if info is None:
        raise PipelineError(f"unknown pass '{name}'{_did_you_mean(name, pass_names())}")
    resolved = info.defaults()
    for key, value in args.items():
        arg = info.arg(key)
        if arg is None:
            raise PipelineError(_unknown_arg(info, key))
        problem = arg.check(value)
        if problem is not None:
            raise PipelineError(f"argument '{key}' of pass '{name}' {problem}")
        resolved[key] = float(value) if arg.type is float else value
    return PassSpec(name, tuple(resolved.items()), info.level)


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _unknown_arg(info: PassInfo, key: str) -> str:
    names = [a.name for a in info.args]
    if not names:
        return f"pass '{info.name}' takes no arguments, got '{key}'"
    return (f"pass '{info.name}' has no argument '{key}'{_did_you_mean(key, names)}; "
            f"its arguments are {', '.join(names)}")


class _Parser:
    def __init__(self, text: str, level: str) -> None:
        self.text = text
        self.pos = 0
        self.level = level

    def fail(self, message: str, pos: int | None = None) -> PipelineError:
        col = (self.pos if pos is None else pos) + 1
        return PipelineError(f"{message} at column {col} of pipeline {self.text!r}")

    def ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            got = repr(self.peek()) if self.peek() else "end of text"
            raise self.fail(f"expected '{char}', got {got}")
        self.pos += 1

    def name(self, what: str) -> tuple[str, int]:
        self.ws()
        m = _NAME_RE.match(self.text, self.pos)
        if m is None:
            got = repr(self.peek()) if self.peek() else "end of text"
            raise self.fail(f"expected a {what}, got {got}")
        self.pos = m.end()
        return m.group(), m.start()

    def parse(self) -> Pipeline:
        specs: list[PassSpec] = []
        if self.peek() == "":
            return Pipeline()
        while True:
            specs.extend(self.item())
            if self.peek() == "":
                return Pipeline(tuple(specs))
            self.expect(",")

    def item(self) -> list[PassSpec]:
        name, start = self.name("pass name")
        named = NAMED_PIPELINES.get(self.level, {})
        if name in named:
            if self.peek() == "{":
                raise self.fail(f"named pipeline '{name}' takes no arguments")
            return list(parse_pipeline(named[name], self.level).passes)
        info = get_pass(name, self.level)
        if info is None:
            other = get_pass(name)
            if other is not None:
                raise self.fail(f"pass '{name}' works on {other.level} IR, not {self.level} "
                                f"IR", start)
            options = [*pass_names(self.level), *named]
            raise self.fail(f"unknown pass '{name}'{_did_you_mean(name, options)}", start)
        resolved = info.defaults()
        seen: set[str] = set()
        if self.peek() == "{":
            self.pos += 1
            if self.peek() == "}":
                self.pos += 1
                return self.done(info, resolved)
            while True:
                key, kstart = self.name("argument name")
                arg = info.arg(key)
                if arg is None:
                    raise self.fail(_unknown_arg(info, key), kstart)
                if key in seen:
                    raise self.fail(f"argument '{key}' of pass '{name}' is given twice", kstart)
                seen.add(key)
                self.expect("=")
                vstart = self.pos
                raw, quoted = self.value()
                value = self.convert(info, key, raw, quoted, vstart)
                resolved[key] = value
                if self.peek() == "}":
                    self.pos += 1
                    break
                if self.peek() != ",":
                    got = repr(self.peek()) if self.peek() else "end of text"
                    raise self.fail(f"expected ',' or '}}', got {got}")
                self.pos += 1
        return self.done(info, resolved)

    def done(self, info: PassInfo, resolved: dict[str, ArgValue]) -> list[PassSpec]:
        spec = PassSpec(info.name, tuple(resolved.items()), self.level)
        self.level = info.output_level
        return [spec]

    def value(self) -> tuple[str, bool]:
        self.ws()
        if self.peek() == '"':
            decoder = json.JSONDecoder()
            try:
                value, end = decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError:
                raise self.fail("unterminated or malformed string") from None
            self.pos = end
            return str(value), True
        m = _BARE_RE.match(self.text, self.pos)
        if m is None:
            got = repr(self.peek()) if self.peek() else "end of text"
            raise self.fail(f"expected a value, got {got}")
        self.pos = m.end()
        return m.group(), False

    def convert(self, info: PassInfo, key: str, raw: str, quoted: bool, pos: int) -> ArgValue:
        arg = info.arg(key)
        assert arg is not None
        value: ArgValue
        bad = self.fail(f"argument '{key}' of pass '{info.name}' expects "
                        f"{arg.type.__name__}, got {raw!r}", pos)
        if arg.type is str:
            value = raw
        elif quoted and arg.type is not float:
            raise bad
        elif arg.type is bool:
            if raw not in ("true", "false"):
                raise bad
            value = raw == "true"
        elif arg.type is int:
            if not _INT_RE.fullmatch(raw):
                raise bad
            value = int(raw)
        else:
            try:
                value = float(raw)
            except ValueError:
                raise bad from None
        problem = arg.check(value)
        if problem is not None:
            raise self.fail(f"argument '{key}' of pass '{info.name}' {problem}", pos)
        return value


def parse_pipeline(text: str, level: str = "loop") -> Pipeline:
    """Parse one line of pipeline text; `level` picks the meaning of `O0`..`O3`."""
    if not isinstance(text, str):
        raise PipelineError(f"a pipeline is text, not {type(text).__name__}")
    return _Parser(text, level).parse()


def named_pipeline(name: str | int, level: str = "loop") -> Pipeline:
    """`O0`..`O3` (or 0..3) of an IR level."""
    key = f"O{name}" if isinstance(name, int) else name
    table = NAMED_PIPELINES.get(level, {})
    if key not in table:
        raise PipelineError(f"no named pipeline {key!r} for {level} IR (have "
                            f"{', '.join(table) or 'none'})")
    return parse_pipeline(table[key], level)
