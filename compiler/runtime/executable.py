"""The Executable: compiled kernels, a static memory plan, and one entry point.

Kernels are specialised to concrete input shapes: the first run at a new shape signature
lowers and compiles each call (kernels are cached by op, attributes, shapes and shape-input
values) and records a liveness-based memory plan; later runs at that signature reuse both,
writing intermediates into one preallocated arena. Ops marked `host` (data-dependent
shapes, control flow) run their numpy reference on the host, explicitly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from compiler.errors import ExecutionError, UnsupportedError
from compiler.graph.interp import check_input
from compiler.graph.ir import Call, Const, Function, Module, Var
from compiler.loop.ir import PrimFunc
from compiler.lower.lowering import kernel_key, lower_call
from compiler.ops.base import EvalCtx, get_op
from compiler.runtime.memory import Interval, plan

# codegen: list of PrimFuncs -> {name: callable(*arrays)}
Codegen = Callable[[Sequence[PrimFunc]], dict[str, Callable[..., None]]]


def kernel_suffix(op_name: str) -> str:
    """The op's part of a kernel name (a C identifier: `anvil.Fused` -> `Fused`)."""
    return op_name.rsplit(".", 1)[-1]


@dataclass
class Stats:
    launches: int = 0  # kernel calls in the last run
    host_calls: int = 0  # host-function calls in the last run
    kernels: int = 0  # distinct compiled kernels
    compile_s: float = 0.0


@dataclass
class _Plan:
    offsets: dict[tuple[int, int], int]  # (binding index, output index) -> byte offset
    arena: np.ndarray


@dataclass
class Executable:
    module: Module
    target: str
    codegen: Codegen
    kernels: dict[str, tuple[Callable[..., None], PrimFunc]] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    plans: dict[tuple, _Plan] = field(default_factory=dict)
    loop_pipeline: str = ""  # loop passes run over each lowered kernel (see compiler/passes)
    # A model with symbolic input dims is specialised per input-shape signature: its graph is
    # re-typed at the concrete shapes and `graph_pipeline` runs again, so passes that need
    # static shapes (fusion, layout) apply; each signature gets its own Executable.
    graph_pipeline: str = ""
    specialized: dict[tuple, Executable] = field(default_factory=dict)

    def run(self, args: Sequence[np.ndarray]) -> list[np.ndarray]:
        fn = self.module.main
        if len(args) != len(fn.params):
            raise ExecutionError(f"model takes {len(fn.params)} inputs, got {len(args)}")
        args = [check_input(p, a, "input") for p, a in zip(fn.params, args, strict=True)]
        self.stats.launches = self.stats.host_calls = 0
        sig = tuple((a.shape, str(a.dtype)) for a in args)
        if self.graph_pipeline and not all(p.type.is_static for p in fn.params):
            return self._run_specialized(sig, args)
        p = self.plans.get(sig)
        if p is None and not self.plans and not self.kernels:
            self._compile_ahead(args)
        record: list | None = [] if p is None else None
        outs = self._run_function(fn, args, {}, p, record)
        if record is not None:
            self.plans[sig] = self._make_plan(fn, record)
        return [np.array(o, copy=True) if p is not None else o for o in outs]

    def _run_specialized(self, sig: tuple, args: list[np.ndarray]) -> list[np.ndarray]:
        sub = self.specialized.get(sig)
        if sub is None:
            from compiler.graph.ir import TensorType
            from compiler.passes import PassManager
            from compiler.passes.graph.bind_shapes import retype_all

            fn = self.module.main
            params = tuple(Var(p.name, TensorType(tuple(a.shape), p.type.dtype))
                           for p, a in zip(fn.params, args, strict=True))
            main = retype_all(fn, params)
            module = Module((main, *self.module.functions[1:]), self.module.opset)
            module = PassManager(self.graph_pipeline, verify=False).run(module)
            sub = Executable(module, self.target, self.codegen,
                             loop_pipeline=self.loop_pipeline)
            self.specialized[sig] = sub
        outs = sub.run(args)
        self.stats = sub.stats
        return outs

    # -- execution -------------------------------------------------------------------
    def _run_function(self, fn: Function, args, outer, p: _Plan | None,
                      record: list | None) -> list[np.ndarray]:
        env: dict[Var, np.ndarray] = dict(outer)
        for prm, a in zip(fn.params, args, strict=True):
            env[prm] = a
        for i, b in enumerate(fn.body):
            e = b.expr
            if isinstance(e, Const):
                env[b.outs[0]] = e.value.array
                continue
            assert isinstance(e, Call)
            where = f"@{fn.name} binding {i} ({e.op})"
            op = get_op(e.op)
            if op is None:
                raise UnsupportedError(f"unknown op {e.op!r}", where)
            ins = [env[a] if a is not None else None for a in e.args]
            if not op.host:
                ins = [x if x is None or (isinstance(x, np.ndarray) and x.flags.c_contiguous)
                       else np.ascontiguousarray(x).reshape(np.shape(x)) for x in ins]
            if op.host:
                ctx = EvalCtx(e.op, e.attr_dict, len(b.outs), [o.type for o in b.outs],
                              lambda f, xs, env=env: self._run_function(f, xs, env, None,
                                                                        None))
                with np.errstate(all="ignore"):
                    vals = [np.array(v, copy=True) for v in op.ref(ctx, ins)]
                self.stats.host_calls += 1
            else:
                kernel, types = self._kernel(op, e, ins, len(b.outs), where)
                vals = []
                for k, t in enumerate(types):
                    off = p.offsets.get((i, k)) if p is not None else None
                    if off is not None:
                        n = int(np.prod(t.shape)) * t.dtype.np.itemsize
                        vals.append(np.frombuffer(p.arena, t.dtype.np, n // t.dtype.np.itemsize
                                                  if n else 0, off).reshape(t.shape))
                    else:
                        vals.append(np.empty(t.shape, t.dtype.np))
                kernel(*[x for x in ins if x is not None], *vals)
                self.stats.launches += 1
            for o, v in zip(b.outs, vals, strict=False):
                env[o] = v
            if record is not None and fn is self.module.main:
                record.append((i, b, [a for a in e.args if a is not None], vals, op.host))
        return [env[r] for r in fn.results]

    def _kernel(self, op, e: Call, ins, n_out: int, where: str):
        key = kernel_key(op, e.attrs, ins)
        hit = self.kernels.get(key)
        if hit is not None:
            kernel, func = hit
            return kernel, self._types[key]
        t0 = time.perf_counter()
        name = f"k{len(self.kernels)}_{kernel_suffix(op.name)}"
        func, types = lower_call(op, e.attr_dict, ins, n_out, name, where)
        func = self.optimize(func)
        compiled = self.codegen([func])
        kernel = compiled[func.name]
        self.kernels[key] = (kernel, func)
        self._types[key] = types
        self.stats.kernels = len(self.kernels)
        self.stats.compile_s += time.perf_counter() - t0
        return kernel, types

    def __post_init__(self) -> None:
        self._types: dict[str, list] = {}

    def _compile_ahead(self, args: Sequence[np.ndarray]) -> None:
        """When every kernel can be lowered before running (static shapes, constant shape
        inputs), compile them all as one module: one JIT module / one shared object."""
        fn = self.module.main
        if any(tuple(p.type.shape or ()) != a.shape for p, a in zip(fn.params, args,
                                                                      strict=True)):
            return
        t0 = time.perf_counter()
        try:
            funcs = self.lower_static()
        except UnsupportedError:
            return  # some kernel depends on run-time values: compile lazily instead
        if funcs:
            compiled = self.codegen(funcs)
            for key, func in self._static_keys.items():
                self.kernels[key] = (compiled[func.name], func)
        self.stats.kernels = len(self.kernels)
        self.stats.compile_s += time.perf_counter() - t0

    def optimize(self, func: PrimFunc) -> PrimFunc:
        if not self.loop_pipeline:
            return func
        from compiler.passes import PassManager, parse_pipeline

        return PassManager(parse_pipeline(self.loop_pipeline), verify=False).run(func)

    # -- memory planning -------------------------------------------------------------
    def _make_plan(self, fn: Function, record: list) -> _Plan:
        results = set(fn.results)
        last_use: dict[Var, int] = {}
        for step, (_, _, args, _, _) in enumerate(record):
            for a in args:
                last_use[a] = step
        intervals, keys = [], []
        for step, (i, b, _, vals, host) in enumerate(record):
            if host:
                continue
            for k, (o, v) in enumerate(zip(b.outs, vals, strict=False)):
                if o in results:
                    continue
                intervals.append(Interval(step, last_use.get(o, step), v.nbytes))
                keys.append((i, k))
        offsets, total = plan(intervals)
        return _Plan(dict(zip(keys, offsets, strict=True)), np.empty(total, np.uint8))

    def kernel_funcs(self) -> list[PrimFunc]:
        own = [f for _, f in self.kernels.values()]
        return own + [f for sub in self.specialized.values() for f in sub.kernel_funcs()]

    def lower_static(self, dims: dict[str, int] | None = None) -> list[PrimFunc]:
        """Lower every call of a statically shaped model without running it (for --emit and
        ahead-of-time compilation); fails cleanly where a kernel depends on runtime values."""
        from compiler.graph.ir import TensorType

        fn = self.module.main
        types: dict[Var, TensorType] = {}
        values: dict[Var, np.ndarray] = {}
        for prm in fn.params:
            t = prm.type
            if t.shape is not None and dims:
                t = TensorType(tuple(dims.get(d, d) if isinstance(d, str) else d
                                     for d in t.shape), t.dtype)
            if not t.is_static:
                raise UnsupportedError(f"input %{prm.name} has no static shape ({t}); bind its "
                                       f"symbols (e.g. --bind N=1)")
            types[prm] = t
        funcs: list[PrimFunc] = []
        keyed: dict[str, PrimFunc] = {}
        self._static_keys = keyed
        for i, b in enumerate(fn.body):
            e = b.expr
            if isinstance(e, Const):
                types[b.outs[0]] = e.value.type
                values[b.outs[0]] = e.value.array
                continue
            where = f"@{fn.name} binding {i} ({e.op})"
            op = get_op(e.op)
            if op is None or op.host:
                raise UnsupportedError(f"{e.op} runs on the host; its output shapes are known "
                                       f"only at run time", where)
            fake = []
            for k, a in enumerate(e.args):
                if a is None:
                    fake.append(None)
                elif k in op.shape_inputs:
                    if a not in values:
                        raise UnsupportedError(f"input {k} of {e.op} is computed at run time",
                                               where)
                    fake.append(values[a])
                else:
                    t = types[a]
                    fake.append(np.broadcast_to(np.zeros((), t.dtype.np), t.shape))
            key = kernel_key(op, e.attrs, fake)
            func, outs = lower_call(op, e.attr_dict, fake, len(b.outs),
                                    f"k{len(funcs)}_{kernel_suffix(op.name)}", where)
            self._types[key] = outs
            if key not in keyed:
                keyed[key] = self.optimize(func)
                funcs.append(keyed[key])
            for o, t in zip(b.outs, outs, strict=False):
                types[o] = t
        return funcs
