"""Graph IR: typed SSA functions over tensors.

A `Function` is an ordered tuple of `Binding`s. Each binding defines one or more `Var`s from
an expression: a `Call` of a registered op, or a `Const`. Arguments are always `Var`s (or
`None` for an absent optional input), so every value has a name and a type. Nodes are
frozen dataclasses with structural equality; subgraphs (If/Loop/Scan bodies) are
`Function`s stored as attributes and may refer to variables of enclosing functions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from compiler.dtypes import DType

Dim = int | str  # an int, a named symbol, or "?" for an unknown extent
UNKNOWN: str = "?"


@dataclass(frozen=True, slots=True)
class TensorType:
    """shape None means unknown rank; a dim is an int, a symbol name, or "?"."""

    shape: tuple[Dim, ...] | None
    dtype: DType

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def is_static(self) -> bool:
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)

    def __str__(self) -> str:
        from compiler.graph.printer import format_type

        return format_type(self)


Type = TensorType


class Tensor:
    """An immutable tensor value (constants, tensor attributes) with bitwise equality."""

    __slots__ = ("array", "_hash")

    def __init__(self, array: np.ndarray):
        arr = np.array(array, copy=True) if not isinstance(array, np.ndarray) else array.copy()
        if arr.dtype.kind in "US":
            arr = arr.astype(object)
        arr.flags.writeable = False
        object.__setattr__(self, "array", arr)
        object.__setattr__(self, "_hash", None)

    def __setattr__(self, name, value):
        raise AttributeError("Tensor is immutable")

    @property
    def dtype(self) -> DType:
        return DType.from_np(self.array.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def type(self) -> TensorType:
        return TensorType(self.shape, self.dtype)

    def numpy(self) -> np.ndarray:
        return self.array

    def _key(self) -> bytes:
        if self.array.dtype == object:
            return repr(self.array.tolist()).encode()
        return np.ascontiguousarray(self.array).tobytes()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tensor):
            return NotImplemented
        return (
            self.array.dtype == other.array.dtype
            and self.array.shape == other.array.shape
            and self._key() == other._key()
        )

    def __hash__(self) -> int:
        if self._hash is None:
            digest = hashlib.blake2b(self._key(), digest_size=8).digest()
            h = hash((str(self.array.dtype), self.array.shape, digest))
            object.__setattr__(self, "_hash", h)
        return self._hash

    def __repr__(self) -> str:
        return f"Tensor({self.type})"


@dataclass(frozen=True, slots=True)
class Var:
    name: str
    type: TensorType

    def __str__(self) -> str:
        return f"%{self.name}"


AttrValue = Union[int, float, str, tuple, Tensor, "Function"]


@dataclass(frozen=True, slots=True)
class Call:
    op: str
    args: tuple[Var | None, ...]
    attrs: tuple[tuple[str, AttrValue], ...] = ()

    @property
    def attr_dict(self) -> dict[str, AttrValue]:
        """The attributes, with the op's default for each one the call leaves out (the
        importer writes every attribute; hand-written IR text may omit defaults)."""
        from compiler.ops.base import get_op

        op = get_op(self.op)
        return {**op.default_attrs(), **dict(self.attrs)} if op is not None else dict(self.attrs)


@dataclass(frozen=True, slots=True)
class Const:
    value: Tensor


Expr = Call | Const


@dataclass(frozen=True, slots=True)
class Binding:
    outs: tuple[Var, ...]
    expr: Expr
    origin: str = field(default="", compare=False)  # provenance: ONNX node name or pass


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    params: tuple[Var, ...]
    body: tuple[Binding, ...]
    results: tuple[Var, ...]

    def bindings(self) -> Iterator[Binding]:
        return iter(self.body)


@dataclass(frozen=True, slots=True)
class Module:
    functions: tuple[Function, ...]
    opset: int = 0  # the ONNX opset the module was imported from (informational)

    @property
    def main(self) -> Function:
        return self.functions[0]

    def __str__(self) -> str:
        from compiler.graph.printer import print_module

        return print_module(self)


def make_attrs(d: dict[str, AttrValue]) -> tuple[tuple[str, AttrValue], ...]:
    return tuple(sorted(d.items()))


def subfunctions(call: Call) -> Iterator[Function]:
    for _, v in call.attrs:
        if isinstance(v, Function):
            yield v


def walk_functions(fn: Function) -> Iterator[Function]:
    """`fn` and every subgraph nested inside it, outermost first."""
    yield fn
    for b in fn.body:
        if isinstance(b.expr, Call):
            for sub in subfunctions(b.expr):
                yield from walk_functions(sub)


def map_bindings(fn: Function, f) -> Function:
    """Rebuild `fn` with each binding replaced by `f(binding)` (a binding, a list, or None)."""
    out: list[Binding] = []
    for b in fn.body:
        r = f(b)
        if r is None:
            continue
        if isinstance(r, Binding):
            out.append(r)
        else:
            out.extend(r)
    return Function(fn.name, fn.params, tuple(out), fn.results)
