"""Operator definitions. Importing this package registers every op in `base.REGISTRY`.

Each module below defines a family of ops; an op lives in exactly one module.
"""

import importlib

from compiler.ops.base import REGISTRY, Kind, OpDef, get_op, register  # noqa: F401

_MODULES = (
    "elementwise",
    "activation",
    "cast",
    "reduce",
    "normalization",
    "softmax",
    "loss",
    "shape",
    "pad_slice",
    "index",
    "generate",
    "resize",
    "conv",
    "pool",
    "matmul",
    "rnn",
    "attention",
    "quant",
    "signal",
    "detection",
    "control",
    "misc",
    "layout",
    "internal",
)

for _m in _MODULES:
    try:
        importlib.import_module(f"compiler.ops.{_m}")
    except ModuleNotFoundError as e:  # a family not written yet
        if e.name != f"compiler.ops.{_m}":
            raise
