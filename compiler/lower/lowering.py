"""Lowering one graph-IR call, at concrete shapes, to a loop-IR PrimFunc.

The op's `compute` builds tensor expressions over placeholders for the present inputs; the
values of its `shape_inputs` are known (they are part of the kernel's specialisation key).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.errors import UnsupportedError
from compiler.graph.ir import TensorType
from compiler.loop.ir import SUPPORTED_DTYPES, PrimFunc
from compiler.lower import te
from compiler.ops.base import InferCtx, OpDef


@dataclass
class LowerCtx:
    op: str
    attrs: dict[str, Any]
    in_types: list[TensorType | None]
    out_types: list[TensorType]
    values: dict[int, np.ndarray] = field(default_factory=dict)
    where: str = ""

    def value(self, i: int) -> np.ndarray | None:
        return self.values.get(i)

    def fail(self, message: str) -> UnsupportedError:
        return UnsupportedError(f"{self.op}: {message}", self.where or None)


def concrete_type(x: np.ndarray) -> TensorType:
    from compiler.dtypes import DType

    return TensorType(tuple(int(d) for d in x.shape), DType.from_np(x.dtype))


def attrs_key(attrs: tuple) -> bytes:
    """A byte string that identifies attribute values exactly: tensors by their bytes,
    subgraphs by their printed text (which carries their constants)."""
    from compiler.graph.ir import Function, Tensor
    from compiler.graph.printer import print_module

    def enc(v: Any) -> str:
        if isinstance(v, Tensor):
            digest = hashlib.blake2b(v._key(), digest_size=16).hexdigest()
            return f"Tensor({v.array.dtype},{v.shape},{digest})"
        if isinstance(v, Function):
            from compiler.graph.ir import Module

            return print_module(Module((v,)))
        if isinstance(v, tuple):
            return "(" + ",".join(enc(x) for x in v) + ")"
        return repr(v)

    return enc(attrs).encode()


def kernel_key(op: OpDef, attrs: tuple, args: Sequence[np.ndarray | None]) -> str:
    """Specialisation key: op, attributes, input shapes/dtypes, values of shape inputs."""
    h = hashlib.blake2b(digest_size=16)
    h.update(op.name.encode())
    h.update(attrs_key(attrs))
    for i, a in enumerate(args):
        if a is None:
            h.update(b"none;")
            continue
        h.update(f"{a.dtype}{a.shape};".encode())
        if i in op.shape_inputs:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def lower_call(op: OpDef, attrs: dict[str, Any], args: Sequence[np.ndarray | None],
               num_outputs: int, name: str, where: str = "") -> tuple[PrimFunc, list[TensorType]]:
    """The kernel for one call at the concrete shapes of `args`, and its output types.

    Kernel params: the present inputs (shape inputs included), then the outputs.
    """
    if op.compute is None:
        raise UnsupportedError(f"op {op.name} has no compute definition", where or None)
    in_types = [concrete_type(a) if a is not None else None for a in args]
    values = {i: args[i] for i in op.shape_inputs if i < len(args) and args[i] is not None}
    ictx = InferCtx(op.name, where, attrs, in_types,
                    [values.get(i) for i in range(len(args))], num_outputs)
    out_types = list(op.infer(ictx))[:num_outputs]
    for k, t in enumerate(out_types):
        if not t.is_static:
            raise UnsupportedError(f"{op.name} output {k} has no static shape ({t}) at "
                                   f"compile time", where or None)
    for t in [*in_types, *out_types]:
        if t is not None and t.dtype not in SUPPORTED_DTYPES:
            raise UnsupportedError(f"{op.name}: dtype {t.dtype} is not supported by native "
                                   f"targets", where or None)
    ctx = LowerCtx(op.name, attrs, in_types, out_types, values, where)
    holders = [te.placeholder(f"in{i}", t.shape, t.dtype) if t is not None else None
               for i, t in enumerate(in_types)]
    outs = list(op.compute(ctx, holders))[:num_outputs]
    fixed = []
    for k, (o, t) in enumerate(zip(outs, out_types, strict=True)):
        if o.shape != t.shape or o.dtype != t.dtype:
            raise AssertionError(f"{op.name} compute output {k} is {o.shape} {o.dtype}, "
                                 f"type relation says {t}")
        if o.is_placeholder or any(o is h for h in holders):
            src = o
            o = te.compute(f"out{k}", o.shape, lambda *i, s=src: s[i])
        fixed.append(o)
    func = te.lower_stages(name, [h for h in holders if h is not None], fixed)
    return func, out_types
