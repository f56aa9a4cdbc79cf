"""The `anvil` command: user errors are one stderr line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "corpus" / "models" / "tiny_cnn.onnx"


def anvil(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fuzz.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or ROOT, timeout=300)


def _clean_error(r):
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("anvil: error: "), r.stderr
    return lines[0]


def test_truncated_model(tmp_path):
    p = tmp_path / "bad.onnx"
    p.write_bytes(MODEL.read_bytes()[:200])
    assert "bad.onnx" in _clean_error(anvil("run", p))


def test_garbage_and_missing_model(tmp_path):
    p = tmp_path / "g.onnx"
    p.write_bytes(b"not a model at all")
    _clean_error(anvil("run", p))
    _clean_error(anvil("run", tmp_path / "missing.onnx"))


def test_wrong_rank_inputs(tmp_path):
    npz = tmp_path / "x.npz"
    np.savez(npz, x=np.zeros((3, 32, 32), np.float32))
    assert "rank" in _clean_error(anvil("run", MODEL, "--inputs", npz))


def test_inputs_missing_name(tmp_path):
    npz = tmp_path / "x.npz"
    np.savez(npz, y=np.zeros((1, 3, 32, 32), np.float32))
    assert "lacks input" in _clean_error(anvil("run", MODEL, "--inputs", npz))


def test_unknown_target():
    assert "unknown target" in _clean_error(anvil("run", MODEL, "--target", "tpu"))


def test_run_matches_onnxruntime(tmp_path):
    r = anvil("run", MODEL, "--compare", "ort")
    assert r.returncode == 0, r.stderr
    assert "vs ort: match" in r.stdout


def test_compile_emits_parseable_graph():
    from compiler.graph.parser import parse
    from compiler.graph.verifier import verify

    r = anvil("compile", MODEL, "--emit", "graph")
    assert r.returncode == 0, r.stderr
    verify(parse(r.stdout))


def test_compile_emits_loop_ir_that_parses():
    from compiler.loop.parser import parse_module
    from compiler.loop.verifier import verify

    r = anvil("compile", MODEL, "--emit", "loop", "--bind", "N=2")
    assert r.returncode == 0, r.stderr
    funcs = parse_module(r.stdout)
    assert len(funcs) == 9  # one kernel per graph op of tiny_cnn
    for f in funcs:
        verify(f)


def test_compile_emits_c_and_llvm():
    r = anvil("compile", MODEL, "--emit", "c")
    assert r.returncode == 0 and "#include <math.h>" in r.stdout, r.stderr
    r = anvil("compile", MODEL, "--emit", "llvm")
    assert r.returncode == 0 and "define" in r.stdout, r.stderr
    assert "bad --bind" in _clean_error(anvil("compile", MODEL, "--emit", "loop",
                                               "--bind", "N"))


def test_run_native_targets_match_onnxruntime():
    for target in ("llvm", "c"):
        r = anvil("run", MODEL, "--target", target, "--compare", "ort,interp")
        assert r.returncode == 0, r.stderr
        assert r.stdout.count(": match") == 2, r.stdout


def test_opt_runs_a_pipeline_and_rejects_unknown_passes(tmp_path):
    from compiler.loop.parser import parse_module

    lir = tmp_path / "k.lir"
    r = anvil("compile", MODEL, "--emit", "loop", "-o", lir)
    assert r.returncode == 0, r.stderr
    r = anvil("opt", lir, "--passes", "simplify,loop_partition")
    assert r.returncode == 0, r.stderr
    assert len(parse_module(r.stdout)) == 9
    assert "did you mean 'simplify'" in _clean_error(anvil("opt", lir, "--passes", "simplfy"))
    r = anvil("opt", "--list")
    assert r.returncode == 0 and "vectorize" in r.stdout


def test_optimisation_levels_agree_with_onnxruntime():
    for level in ("-O1", "-O3"):
        r = anvil("run", MODEL, "--target", "llvm", level, "--compare", "ort")
        assert r.returncode == 0 and ": match" in r.stdout, r.stderr


def test_compile_runs_the_graph_pipeline_of_its_level(tmp_path):
    from compiler.graph.parser import parse

    plain = anvil("compile", MODEL, "--bind", "N=2")
    fused = anvil("compile", MODEL, "-O2", "--bind", "N=2")
    assert plain.returncode == 0 and fused.returncode == 0, fused.stderr
    assert "BatchNormalization" in plain.stdout and "anvil.Fused" not in plain.stdout
    assert "BatchNormalization" not in fused.stdout and "anvil.Fused" in fused.stdout
    assert "float32[2, 3, 32, 32]" in parse(fused.stdout).main.params[0].type.__str__()
    gir = tmp_path / "m.gir"
    gir.write_text(plain.stdout)
    r = anvil("opt", gir, "--passes", "fold_batchnorm,fuse_ops")
    assert r.returncode == 0 and "anvil.Fused" in r.stdout, r.stderr
    line = _clean_error(anvil("compile", MODEL, "--passes", "unroll"))
    assert "works on loop IR, not graph IR" in line
    line = _clean_error(anvil("compile", MODEL, "--bind", "M=2"))
    assert "M" in line


def test_conformance_at_an_opt_level():
    r = anvil("conformance", "--target", "llvm", "-O3", "-k", "test_relu*")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 failed, 0 errors" in r.stdout


def test_graph_text_may_omit_default_attributes(tmp_path):
    gir = tmp_path / "m.gir"
    gir.write_text("func @main(%x: float32[2, 3]) {\n  %s = const int64[2] [3, 2]\n"
                   "  %y = Reshape(%x, %s) : float32[3, 2]\n  %z = Flatten(%y) : float32[3, 2]\n"
                   "  return %z\n}\n")
    r = anvil("opt", gir, "--passes", "remove_identity")
    assert r.returncode == 0, r.stderr
    assert "Reshape" in r.stdout and "Flatten" not in r.stdout
