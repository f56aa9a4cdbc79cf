"""The `anvil` command line. Every user error is one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

EXIT_USER_ERROR = 2
EXIT_MISMATCH = 1


def _die(msg: str) -> int:
    print(f"anvil: error: {msg}", file=sys.stderr)
    return EXIT_USER_ERROR


def random_inputs(fn, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic inputs for a function's parameters; symbolic dims become 1."""
    rng = np.random.default_rng(seed)
    out = {}
    for p in fn.params:
        if p.type.shape is None:
            raise _UserError(f"input %{p.name} has unknown rank; pass --inputs")
        shape = tuple(d if isinstance(d, int) else 1 for d in p.type.shape)
        dt = p.type.dtype
        if dt.is_float:
            out[p.name] = rng.standard_normal(shape).astype(dt.np)
        elif dt.value == "bool":
            out[p.name] = rng.random(shape) < 0.5
        elif dt.is_int:
            out[p.name] = rng.integers(0, 8, shape).astype(dt.np)
        else:
            raise _UserError(f"cannot make random {dt} input for %{p.name}; pass --inputs")
    return out


class _UserError(Exception):
    pass


def _load_inputs(path: str | None, fn, seed: int) -> dict[str, np.ndarray]:
    if path is None:
        return random_inputs(fn, seed)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise _UserError(f"no such file: {path}") from None
    except Exception as e:
        raise _UserError(f"cannot read {path} as .npz ({type(e).__name__})") from None
    names = [p.name for p in fn.params]
    if set(data) != set(names) and len(data) == len(names) and all(
        k.startswith("arr_") for k in data
    ):
        data = {n: data[f"arr_{i}"] for i, n in enumerate(names)}
    missing = [n for n in names if n not in data]
    if missing:
        raise _UserError(f"{path} lacks input(s) {', '.join(missing)} (has {', '.join(data)})")
    return data


def _summary(x: np.ndarray) -> str:
    x = np.asarray(x)
    head = np.array2string(x.reshape(-1)[:6], precision=5, separator=", ")
    stats = ""
    if x.dtype.kind == "f" and x.size:
        stats = f" min={np.nanmin(x):.5g} max={np.nanmax(x):.5g} mean={np.nanmean(x):.5g}"
    return f"{x.dtype}{list(x.shape)}{stats} {head}{' ...' if x.size > 6 else ''}"


def cmd_run(args) -> int:
    from compiler.backend import AnvilRep, check_target
    from compiler.frontend.onnx import import_model, load
    from oracles.compare import compare

    check_target(args.target)
    model = load(args.model)
    module = import_model(model)
    inputs = _load_inputs(args.inputs, module.main, args.seed)
    options = {"opt_level": args.opt_level} if args.target != "interp" else {}
    outs = AnvilRep(module, args.target, **options).run(inputs)
    names = [o.name for o in model.graph.output]
    refs: dict[str, list[np.ndarray]] = {}
    for ref in filter(None, (args.compare or "").split(",")):
        if ref == "ort":
            from oracles.reference import run_onnxruntime

            refs[ref] = run_onnxruntime(model, inputs)
        elif ref == "interp":
            refs[ref] = list(AnvilRep(module, "interp").run(inputs))
        else:
            raise _UserError(f"unknown reference {ref!r} (known: ort, interp)")
    worst = 0
    for i, (name, y) in enumerate(zip(names, outs, strict=False)):
        print(f"{name}: {_summary(y)}")
        for ref, ys in refs.items():
            d = compare(ys[i], y, rtol=args.rtol, atol=args.atol)
            verdict = "match" if d else "MISMATCH"
            detail = d.reason or f"max abs {d.max_abs:.3g}, max rel {d.max_rel:.3g}"
            print(f"  vs {ref}: {verdict} ({detail})")
            worst = max(worst, 0 if d else EXIT_MISMATCH)
    if args.save:
        np.savez(args.save, **{n: np.asarray(y) for n, y in zip(names, outs, strict=False)})
    return worst


def cmd_compile(args) -> int:
    from compiler.frontend.onnx import import_model
    from compiler.graph.printer import print_module
    from compiler.graph.verifier import verify

    module = import_model(args.model)
    verify(module)
    if args.emit == "graph":
        from compiler.driver import optimize_graph

        passes = _graph_passes(args, _parse_binds(args.bind))
        text = print_module(optimize_graph(module, args.opt_level, passes))
    else:
        text = _emit_native(module, args)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _parse_binds(items: list[str] | None) -> dict[str, int]:
    out = {}
    for item in items or ():
        name, _, value = item.partition("=")
        if not name or not value.isdigit():
            raise _UserError(f"bad --bind {item!r} (expected SYMBOL=INT)")
        out[name] = int(value)
    return out


def _graph_passes(args, dims: dict[str, int]) -> str | None:
    """The graph pipeline of `anvil compile`: --passes (default: the -O level's), preceded by
    bind_shapes when dims are bound, so static-shape passes (fusion, layout) apply."""
    if not dims and args.passes is None:
        return None
    from compiler.passes import named_pipeline

    passes = args.passes if args.passes is not None else str(named_pipeline(args.opt_level,
                                                                            "graph"))
    if dims:
        spec = ",".join(f"{k}={v}" for k, v in dims.items())
        passes = f'bind_shapes{{dims="{spec}"}}' + (f",{passes}" if passes else "")
    return passes


def _emit_native(module, args) -> str:
    from compiler.driver import compile as compile_module

    target = args.target if args.target != "interp" else {"c": "c"}.get(args.emit, "llvm")
    dims = _parse_binds(args.bind)
    symbols = sorted({d for p in module.main.params for d in (p.type.shape or ())
                      if isinstance(d, str) and d != "?"})
    for s in symbols:
        dims.setdefault(s, 1)
    exe = compile_module(module, target=target, opt_level=args.opt_level,
                         graph_passes=_graph_passes(args, dims), loop_passes=args.loop_passes)
    funcs = exe.lower_static()
    if args.emit == "loop":
        from compiler.loop.printer import print_module as print_loop

        return print_loop(funcs)
    if args.emit == "llvm":
        from compiler.codegen.llvm import emit_llvm_ir

        return emit_llvm_ir(funcs)
    if args.emit == "c":
        from compiler.codegen.c import emit_c

        return emit_c(funcs)
    raise _UserError(f"unknown --emit {args.emit}")


def cmd_opt(args) -> int:
    from compiler.passes import PassManager, Timing, format_pass_list, parse_pipeline

    if args.list:
        print(format_pass_list())
        return 0
    if not args.file:
        raise _UserError("opt needs FILE.gir or FILE.lir (or --list)")
    path = Path(args.file)
    try:
        text = path.read_text()
    except OSError as e:
        raise _UserError(f"cannot read {path}: {e.strerror}") from None
    if path.suffix == ".lir":
        from compiler.loop.parser import parse_module
        from compiler.loop.printer import print_module as print_ir

        ir, level = list(parse_module(text, source=str(path))), "loop"
    elif path.suffix == ".gir":
        from compiler.graph.parser import parse
        from compiler.graph.printer import print_module as print_ir

        ir, level = parse(text), "graph"
    else:
        raise _UserError(f"{path}: expected a .gir (graph IR) or .lir (loop IR) file")
    pipeline = parse_pipeline(args.passes or "", level=level)
    timing = Timing()
    out = PassManager(pipeline, instruments=[timing] if args.time else []).run(ir)
    header = [f"pipeline: {pipeline}"] if level == "loop" else []
    sys.stdout.write(print_ir(out, header) if level == "loop" else print_ir(out))
    if args.time:
        print(timing.report(), file=sys.stderr)
    return 0


def cmd_conformance(args) -> int:
    from oracles.conformance import main as conf_main

    argv = ["--target", args.target, "-O", str(args.opt_level)]
    if args.pattern:
        argv += ["-k", args.pattern]
    if args.verbose:
        argv.append("-v")
    return conf_main(argv)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="anvil", description="Anvil: a deep-learning compiler "
                                 "with a coverage-guided fuzzer, differential oracles and triage.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("run", help="run a model and print (or compare) its outputs")
    p.add_argument("model")
    p.add_argument("--inputs", help=".npz of inputs by name (default: seeded random)")
    p.add_argument("--target", default="interp", help="interp | lir | llvm | c")
    p.add_argument("-O", dest="opt_level", type=int, default=0, choices=[0, 1, 2, 3],
                   help="optimisation level for native targets (-O0..-O3)")
    p.add_argument("--compare", help="comma-separated references: ort, interp")
    p.add_argument("--rtol", type=float, default=1e-4)
    p.add_argument("--atol", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", help="write outputs to this .npz")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("compile", help="import and compile a model; print the chosen IR")
    p.add_argument("model")
    p.add_argument("--target", default="interp")
    p.add_argument("--emit", default="graph", choices=["graph", "loop", "llvm", "c"])
    p.add_argument("-O", dest="opt_level", type=int, default=0, choices=[0, 1, 2, 3],
                   help="optimisation level (-O0..-O3)")
    p.add_argument("--bind", action="append", metavar="SYM=N",
                   help="bind a symbolic input dimension (bind_shapes; --emit loop/llvm/c bind "
                        "the rest to 1)")
    p.add_argument("--passes", help="graph pipeline (default: the -O level's named pipeline)")
    p.add_argument("--loop-passes", help="loop pipeline run over every kernel (default: the "
                   "-O level's)")
    p.add_argument("-o", "--output")
    p.set_defaults(fn=cmd_compile)

    p = sub.add_parser("opt", help="run a pass pipeline over IR text and print the result")
    p.add_argument("file", nargs="?", help="FILE.gir (graph IR) or FILE.lir (loop IR)")
    p.add_argument("--passes", help="pipeline, e.g. 'simplify,unroll{max_extent=8}' or O2")
    p.add_argument("--list", action="store_true", help="list the registered passes")
    p.add_argument("--time", action="store_true", help="print per-pass timings to stderr")
    p.set_defaults(fn=cmd_opt)

    p = sub.add_parser("conformance", help="ONNX backend node tests: per-op pass table")
    p.add_argument("--target", default="interp")
    p.add_argument("-k", "--pattern", help="fnmatch glob over case names")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("-O", dest="opt_level", type=int, default=0, choices=[0, 1, 2, 3],
                   help="optimisation level for native targets (-O0..-O3)")
    p.set_defaults(fn=cmd_conformance)
    return ap


def main(argv: list[str] | None = None) -> int:
    from compiler.errors import AnvilError

    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (AnvilError, _UserError) as e:
        return _die(str(e))
    except KeyboardInterrupt:
        return _die("interrupted")
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
