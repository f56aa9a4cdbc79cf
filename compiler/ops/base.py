"""The op registry. Each operator is defined once, in one file of this package.

An `OpDef` carries the attribute schema, the type relation (`infer`), the numpy reference
(`ref`), the fusion pattern kind, and an optional `upgrade` hook that rewrites an older-opset
ONNX node into the op's canonical (newest-opset) form at import time. Later layers attach the
compute definition (lowering to loops) to the same object.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.dtypes import DType
from compiler.errors import TypeInferenceError
from compiler.graph.ir import UNKNOWN, Dim, Function, TensorType


class Kind(enum.IntEnum):
    """Fusion pattern kinds, ordered as in FuseOps: lower fuses more freely."""

    ELEMWISE = 0
    BROADCAST = 1
    INJECTIVE = 2
    REDUCTION = 3
    COMPLEX_OUT_FUSABLE = 4
    OPAQUE = 8


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

ATTR_KINDS = ("int", "float", "string", "ints", "floats", "strings", "tensor", "graph", "any")


@dataclass(frozen=True)
class Attr:
    kind: str
    default: Any = REQUIRED


@dataclass
class InferCtx:
    """What a type relation sees. `consts[i]` is input i's value when known at compile time."""

    op: str
    where: str
    attrs: dict[str, Any]
    inputs: list[TensorType | None]
    consts: list[np.ndarray | None]
    num_outputs: int
    infer_subgraph: Callable[[Function, list[TensorType]], list[TensorType]] | None = None

    def const(self, i: int) -> np.ndarray | None:
        return self.consts[i] if i < len(self.consts) else None

    def input(self, i: int) -> TensorType | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def fail(self, message: str) -> TypeInferenceError:
        """Return (for `raise ctx.fail(...)`) a clean error naming the op and node."""
        return TypeInferenceError(f"{self.op}: {message}", where=self.where or None)


@dataclass
class EvalCtx:
    """What a numpy reference sees besides its inputs."""

    op: str
    attrs: dict[str, Any]
    num_outputs: int
    out_types: list[TensorType] = field(default_factory=list)
    run_subgraph: Callable[[Function, list[np.ndarray]], list[np.ndarray]] | None = None
    rng: np.random.Generator | None = None


@dataclass
class OpDef:
    name: str
    infer: Callable[[InferCtx], Sequence[TensorType]]
    ref: Callable[[EvalCtx, list[np.ndarray | None]], Sequence[np.ndarray]]
    attrs: dict[str, Attr] = field(default_factory=dict)
    kind: Kind = Kind.OPAQUE
    inputs: tuple[int, int | None] = (1, 1)  # (min, max); max None = variadic
    outputs: tuple[int, int] = (1, 1)
    domain: str = ""
    upgrade: Callable[[Any], None] | None = None  # ImportCtx -> None, see frontend/onnx.py
    doc: str = ""
    nondeterministic: bool = False
    # Lowering (compiler/lower): `compute(LowerCtx, list[te.Tensor | None]) -> list[te.Tensor]`
    # declares the op as tensor expressions. `shape_inputs` are the inputs whose *values*
    # the compute needs at compile time (shapes, axes, repeats...). `host` marks ops that
    # run as host functions (their numpy reference) in compiled code: data-dependent output
    # shapes (NonZero, Unique, ...) and control flow.
    compute: Callable[..., Sequence[Any]] | None = None
    shape_inputs: tuple[int, ...] = ()
    host: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def default_attrs(self) -> dict[str, Any]:
        """What each omitted optional attribute means: its default (None-default attributes
        stay absent)."""
        return {k: a.default for k, a in self.attrs.items()
                if a.default is not REQUIRED and a.default is not None}


REGISTRY: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    if op.name in REGISTRY:
        raise ValueError(f"op {op.name} registered twice")
    for k, a in op.attrs.items():
        assert a.kind in ATTR_KINDS, (op.name, k, a.kind)
    REGISTRY[op.name] = op
    return op


def get_op(name: str) -> OpDef | None:
    _load_all()
    return REGISTRY.get(name)


_LOADED = False


def _load_all() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        import compiler.ops  # noqa: F401  (imports every op module)


# ---------------------------------------------------------------------------------------
# Shape helpers shared by type relations


def dim_eq(a: Dim, b: Dim) -> bool | None:
    """True/False when decidable, None when a symbol makes it unknown."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if a == b and a != UNKNOWN:
        return True
    return None


def broadcast_shapes(ctx: InferCtx, *shapes: tuple[Dim, ...] | None) -> tuple[Dim, ...] | None:
    """Numpy-style multidirectional broadcasting with symbolic dims."""
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        known = {d for d in dims if isinstance(d, int) and d != 1}
        if len(known) > 1:
            raise ctx.fail(f"cannot broadcast shapes {' and '.join(map(_fmt, shapes))}")
        if known:
            out.append(known.pop())
            continue
        syms = {d for d in dims if not isinstance(d, int)}
        if not syms:
            out.append(1)
        elif len(syms) == 1 and UNKNOWN not in syms:
            out.append(syms.pop())
        else:
            out.append(UNKNOWN)
    return tuple(out)


def _fmt(s: tuple[Dim, ...] | None) -> str:
    return "[*]" if s is None else "[" + ", ".join(map(str, s)) + "]"


def norm_axis(ctx: InferCtx, axis: int, rank: int, *, inclusive: bool = False) -> int:
    """Normalise a possibly negative axis; `inclusive` allows axis == rank (insert positions)."""
    hi = rank + 1 if inclusive else rank
    if not -hi <= axis < hi:
        raise ctx.fail(f"axis {axis} out of range for rank {rank}")
    return axis + hi if axis < 0 else axis


def same_as_input(i: int = 0, dtype: DType | None = None):
    """Type relation: output 0 has the type of input i (optionally another dtype)."""

    def infer(ctx: InferCtx) -> list[TensorType]:
        t = ctx.inputs[i]
        if t is None:
            raise ctx.fail(f"input {i} is required")
        return [TensorType(t.shape, dtype or t.dtype)]

    return infer


def check_dtype(ctx: InferCtx, t: TensorType, allowed: Sequence[DType],
                what: str = "input") -> None:
    if t.dtype not in allowed:
        raise ctx.fail(f"{what} dtype {t.dtype} not supported")


def unknown_shape(rank: int | None) -> tuple[Dim, ...] | None:
    return None if rank is None else (UNKNOWN,) * rank


def numel(shape: tuple[Dim, ...] | None) -> int | None:
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return int(np.prod(shape, dtype=np.int64))
