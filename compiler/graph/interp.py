"""The graph interpreter: the numpy meaning of a graph IR function.

Each binding runs its op's numpy reference. Results are checked against the declared types,
so a wrong type relation is caught at the first binding where it matters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from compiler.dtypes import DType
from compiler.errors import AnvilError, ExecutionError
from compiler.graph.ir import Call, Const, Function, Module, TensorType, Var
from compiler.ops.base import EvalCtx, get_op


class TypeMismatch(AssertionError):
    """A value disagrees with its declared type: a bug in a type relation or a reference."""


def check_input(v: Var, x: np.ndarray, where: str) -> np.ndarray:
    t = v.type
    want = t.dtype
    x = np.asarray(x) if not isinstance(x, np.ndarray) else x
    got = DType.from_np(x.dtype) if x.dtype != object else DType.string
    if got != want:
        raise ExecutionError(f"input %{v.name} expects dtype {want}, got {got}", where)
    if t.shape is not None:
        if x.ndim != len(t.shape):
            raise ExecutionError(
                f"input %{v.name} expects rank {len(t.shape)} {t}, got shape {list(x.shape)}",
                where,
            )
        for d, n in zip(t.shape, x.shape, strict=True):
            if isinstance(d, int) and d != n:
                raise ExecutionError(f"input %{v.name} expects shape {t}, got {list(x.shape)}",
                                     where)
    return x


def _check_output(t: TensorType, x: np.ndarray, op: str, k: int, where: str) -> None:
    got = DType.from_np(x.dtype) if x.dtype != object else DType.string
    if got != t.dtype:
        raise TypeMismatch(f"{where}: {op} output {k} has dtype {got}, declared {t.dtype}")
    if t.shape is None:
        return
    if x.ndim != len(t.shape) or any(
        isinstance(d, int) and d != n for d, n in zip(t.shape, x.shape, strict=False)
    ):
        raise TypeMismatch(f"{where}: {op} output {k} has shape {list(x.shape)}, declared {t}")


class Interpreter:
    def __init__(self, check_types: bool = True, seed: int = 0):
        self.check_types = check_types
        self.rng = np.random.default_rng(seed)

    def run_function(
        self,
        fn: Function,
        args: Sequence[np.ndarray],
        outer: Mapping[Var, np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        if len(args) != len(fn.params):
            raise ExecutionError(f"@{fn.name} takes {len(fn.params)} inputs, got {len(args)}")
        env: dict[Var, np.ndarray] = dict(outer or {})
        for p, a in zip(fn.params, args, strict=True):
            env[p] = check_input(p, a, f"@{fn.name}")
        for i, b in enumerate(fn.body):
            e = b.expr
            if isinstance(e, Const):
                env[b.outs[0]] = e.value.array
                continue
            assert isinstance(e, Call)
            vals = self.eval_call(e, b.outs, env, f"@{fn.name} binding {i} ({e.op})")
            for o, v in zip(b.outs, vals, strict=False):
                env[o] = v
        return [env[r] for r in fn.results]

    def eval_call(self, e: Call, outs, env, where: str) -> list[np.ndarray]:
        op = get_op(e.op)
        if op is None:
            raise AnvilError(f"unknown op {e.op!r}", where)
        inputs = [env[a] if a is not None else None for a in e.args]
        ctx = EvalCtx(
            op=e.op,
            attrs=e.attr_dict,
            num_outputs=len(outs),
            out_types=[o.type for o in outs],
            run_subgraph=lambda f, xs: self.run_function(f, xs, env),
            rng=self.rng,
        )
        with np.errstate(all="ignore"):
            vals = list(op.ref(ctx, inputs))
        if len(vals) < len(outs):
            raise TypeMismatch(f"{where}: {e.op} returned {len(vals)} values, {len(outs)} bound")
        res = []
        for k, (o, v) in enumerate(zip(outs, vals, strict=False)):
            v = np.asarray(v) if not isinstance(v, np.ndarray) else v
            if self.check_types:
                _check_output(o.type, v, e.op, k, where)
            res.append(v)
        return res


def run(module: Module | Function, inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray],
        check_types: bool = True) -> list[np.ndarray]:
    fn = module.main if isinstance(module, Module) else module
    if isinstance(inputs, Mapping):
        missing = [p.name for p in fn.params if p.name not in inputs]
        if missing:
            raise ExecutionError(f"missing input(s): {', '.join(missing)}")
        args = [inputs[p.name] for p in fn.params]
    else:
        args = list(inputs)
    return Interpreter(check_types).run_function(fn, args)
