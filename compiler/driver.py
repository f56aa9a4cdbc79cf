"""`compile(model, target=..., opt_level=...) -> Executable`: the one public entry point."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import onnx

from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model
from compiler.graph.ir import Module
from compiler.graph.verifier import verify
from compiler.loop.ir import PrimFunc
from compiler.runtime.executable import Executable

NATIVE_TARGETS = ("llvm", "c", "lir")


def _lir_codegen(funcs: Sequence[PrimFunc]) -> dict[str, Callable[..., None]]:
    """The loop-IR interpreter as a target: slow, but the semantic reference."""
    from compiler.loop import interp

    def runner(f: PrimFunc) -> Callable[..., None]:
        # inputs may be read-only (constants); outputs are always fresh writable arrays
        return lambda *args: interp.run(f, [a if not isinstance(a, np.ndarray) or
                                            a.flags.writeable else a.copy() for a in args])

    return {f.name: runner(f) for f in funcs}


def _llvm_codegen(opt_level: int) -> Callable:
    from compiler.codegen import llvm

    def cg(funcs):
        mod = llvm.compile_funcs(funcs, opt_level=min(opt_level + 1, 3))
        return {f.name: mod.kernel(f.name) for f in funcs}

    return cg


def _c_codegen(opt_level: int) -> Callable:
    from compiler.codegen import c

    def cg(funcs):
        mod = c.compile_funcs(funcs, opt_level=min(opt_level + 1, 3))
        return {f.name: mod.kernel(f.name) for f in funcs}

    return cg


def codegen_for(target: str, opt_level: int = 0) -> Callable:
    if target == "lir":
        return _lir_codegen
    if target == "llvm":
        return _llvm_codegen(opt_level)
    if target == "c":
        return _c_codegen(opt_level)
    raise AnvilError(f"unknown target {target!r} (known: {', '.join(NATIVE_TARGETS)})")


def optimize_graph(module: Module, opt_level: int = 0, passes: str | None = None,
                   verify_each: bool = False) -> Module:
    """Run the graph pipeline: `passes` if given, else the named pipeline `O<opt_level>`."""
    from compiler.passes import PassManager, named_pipeline, parse_pipeline

    pipeline = parse_pipeline(passes, "graph") if passes is not None else \
        named_pipeline(opt_level, "graph")
    if not pipeline.passes:
        return module
    return PassManager(pipeline, verify=verify_each).run(module)


def compile(model: onnx.ModelProto | str | os.PathLike | Module, target: str = "llvm",
            opt_level: int = 0, graph_passes: str | None = None,
            loop_passes: str | None = None) -> Executable:
    """Import (unless given a Module), verify, run the graph pipeline, and make an Executable
    whose kernels go through the loop pipeline. The pipelines default to the named `O<n>`
    pipelines of each level; `graph_passes` / `loop_passes` replace them."""
    if not 0 <= opt_level <= 3:
        raise AnvilError(f"opt level {opt_level} is not one of 0..3")
    module = model if isinstance(model, Module) else import_model(model)
    verify(module)
    from compiler.passes import named_pipeline, parse_pipeline

    graph = parse_pipeline(graph_passes, "graph") if graph_passes is not None else \
        named_pipeline(opt_level, "graph")
    loop = parse_pipeline(loop_passes, "loop") if loop_passes is not None else \
        named_pipeline(opt_level, "loop")
    module = optimize_graph(module, passes=str(graph))
    static = all(p.type.is_static for p in module.main.params)
    # symbolic inputs: the graph pipeline runs again per input-shape signature, at run time
    return Executable(module, target, codegen_for(target, opt_level), loop_pipeline=str(loop),
                      graph_pipeline="" if static else str(graph))
