"""Kernel launches and run time of a light model at -O0..-O3 on one native target, beside
onnxruntime on the same model and input.

    python benchmarks/opt_levels.py [--model resnet50] [--target llvm] [--runs 10]
                                    [--levels 0,3] [--no-ort] [--json OUT]

Each level is compiled once (random He-scaled weights, the same input for every level) and
checked against the first level's outputs. onnxruntime runs with all graph optimisations and
as many intra-op threads as Anvil's parallel loops use (`--threads`, default 2). Runs are timed
in blocks of `--block` runs per configuration, the block order alternating between rounds with
a pause between blocks (onnxruntime's pool keeps spinning after a run and would steal the
cores from whatever runs next); the median of all `--runs` runs per configuration is
reported, with its speed relative to the first level and the kernel launches per run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compiler.driver import compile as compile_model  # noqa: E402
from compiler.frontend.onnx import import_model  # noqa: E402
from oracles.models import light_input, load_light, randomize_light_model  # noqa: E402
from oracles.reference import ort_session  # noqa: E402


def measure(model_name: str, target: str, levels: list[int], runs: int, block: int,
            pause: float, ort: bool = True, threads: int = 2) -> list[dict]:
    model = randomize_light_model(load_light(model_name)[0])
    module = import_model(model)
    feeds = light_input(model)
    x = list(feeds.values())
    runners, rows = {}, {}
    for level in levels:
        t0 = time.perf_counter()
        exe = compile_model(module, target, opt_level=level)
        out = exe.run(x)[0]
        first = time.perf_counter() - t0
        runners[f"-O{level}"] = lambda exe=exe: exe.run(x)
        rows[f"-O{level}"] = {"config": f"-O{level}", "launches": exe.stats.launches,
                              "kernels": exe.stats.kernels,
                              "compile_s": round(exe.stats.compile_s, 2),
                              "first_run_s": round(first, 2), "out": out, "times": []}
        print(f"-O{level}: compiled {exe.stats.kernels} kernels in {first:.1f}s, "
              f"{exe.stats.launches} launches per run", file=sys.stderr)
    if ort:
        sess = ort_session(model, optimize=True, threads=threads)
        runners["onnxruntime"] = lambda: sess.run(None, feeds)
        rows["onnxruntime"] = {"config": "onnxruntime", "launches": None, "kernels": None,
                               "compile_s": None, "first_run_s": None,
                               "out": sess.run(None, feeds)[0], "times": []}
    ref = rows[f"-O{levels[0]}"]["out"]
    scale = float(np.abs(ref).max()) or 1.0
    for r in rows.values():
        r["max_rel_err_vs_first"] = float(np.abs(r.pop("out") - ref).max() / scale)
    order = list(rows)
    while any(len(r["times"]) < runs for r in rows.values()):
        for key in order:
            for _ in range(min(block, runs - len(rows[key]["times"]))):
                t0 = time.perf_counter()
                runners[key]()
                rows[key]["times"].append(time.perf_counter() - t0)
            time.sleep(pause)
        order.reverse()
    base = statistics.median(rows[f"-O{levels[0]}"]["times"])
    for r in rows.values():
        r["median_s"] = statistics.median(r["times"])
        r["speedup_vs_first"] = base / r["median_s"]
    return list(rows.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--target", default="llvm")
    ap.add_argument("--levels", default="0,1,2,3")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--block", type=int, default=5)
    ap.add_argument("--pause", type=float, default=1.0)
    ap.add_argument("--no-ort", dest="ort", action="store_false",
                    help="leave onnxruntime out")
    ap.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    levels = [int(v) for v in args.levels.split(",")]
    rows = measure(args.model, args.target, levels, args.runs, args.block, args.pause,
                   args.ort, args.threads)
    print(f"{args.model} on {args.target}, median of {args.runs} runs")
    print(f"{'config':>11} {'launches':>9} {'kernels':>8} {'compile s':>10} {'median ms':>10} "
          f"{'vs -O' + str(levels[0]):>8} {'max rel err':>12}")

    def cell(v, fmt: str) -> str:
        return format(v, fmt) if v is not None else "-"

    for r in rows:
        print(f"{r['config']:>11} {cell(r['launches'], '9'):>9} {cell(r['kernels'], '8'):>8} "
              f"{cell(r['compile_s'], '10.2f'):>10} {r['median_s'] * 1e3:10.1f} "
              f"{r['speedup_vs_first']:7.2f}x {r['max_rel_err_vs_first']:12.2e}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "target": args.target,
                                               "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
