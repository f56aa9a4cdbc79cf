"""remove_identity: drop calls that return their input unchanged; collapse reshape chains.

- `Identity(x)` -> x;
- `Dropout(x, ratio, training_mode)` in inference form (no training_mode, a constant false
  one, or a constant zero ratio) whose mask output is unused -> x;
- a chain of reshape-like ops (Reshape, Flatten, Squeeze, Unsqueeze) whose final type is
  static -> one `Reshape` of the chain's input to that constant shape (each of them only
  reinterprets the row-major order), or the input itself when its type is the final one;
- a reshape-like op whose result type equals its input's -> its input.

Uses the rule engine of `simplify`; like it, every replacement keeps the exact type.
"""

from __future__ import annotations

import numpy as np

from compiler.graph.ir import Module, Var
from compiler.passes.base import graph_pass
from compiler.passes.graph.simplify import (
    RESHAPE_LIKE,
    Rule,
    Site,
    rewrite_module,
    same_type_reshape,
)


def identity(s: Site) -> Var | None:
    return s.arg(0)


def dropout(s: Site) -> Var | None:
    outs = s.binding.outs
    if len(outs) > 1 and s.uses[outs[1]]:
        return None
    if s.arg(2) is not None:
        training = s.value(s.arg(2))
        ratio = s.value(s.arg(1))
        off = training is not None and not training.any()
        if not off and (ratio is None or not np.all(ratio == 0)):
            return None
    return s.arg(0)


def collapse_chain(s: Site) -> Var | None:
    out = s.out
    if not out.type.is_static or s.producer(s.arg(0), *RESHAPE_LIKE) is None:
        return None
    x = s.arg(0)
    while (p := s.producer(x, *RESHAPE_LIKE)) is not None and p.args[0] is not None:
        x = p.args[0]
    if x is None:
        return None
    if x.type == out.type:
        return x
    shape = out.type.shape or ()
    target = s.const(np.array(shape, dtype=np.int64))
    return s.emit("Reshape", [x, target], {"allowzero": int(0 in shape)})


RULES: dict[str, tuple[Rule, ...]] = {
    "Identity": (identity,),
    "Dropout": (dropout,),
    **{op: (same_type_reshape, collapse_chain) for op in RESHAPE_LIKE},
}


@graph_pass("Remove Identity, inference Dropout and no-op reshapes; collapse reshape chains.")
def remove_identity(module: Module) -> Module:
    return rewrite_module(module, RULES, "remove_identity")
