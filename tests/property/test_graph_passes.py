"""Every registered graph pass preserves meaning: random well-formed modules (from
`random_module`, built to contain the patterns graph passes rewrite) verify after the pass,
interpret to the same outputs before and after on random inputs (bit for bit for the passes
in `EXACT`, within a float tolerance for the others), keep `main`'s signature, and running
the pass twice on the same input gives equal modules. Parametrised over the registry, so a
new pass is covered as soon as it exists; the named graph pipelines O1..O3 are checked the
same way.

`-m slow` runs the same properties with many more examples.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.graph.interp import run
from compiler.graph.ir import Binding, Call, Const, Function, Module, walk_functions
from compiler.graph.random_graph import GraphGenConfig, random_inputs, random_module
from compiler.graph.verifier import verify
from compiler.passes import (
    InterpretEach,
    PassFailed,
    PassInfo,
    PassManager,
    Pipeline,
    all_passes,
    base,
    make_spec,
    named_pipeline,
)
from compiler.passes.graph_util import map_functions, remove_unused
from compiler.passes.instruments import compare_graph_outputs

GRAPH_PASSES = all_passes("graph")
IDS = [p.name for p in GRAPH_PASSES]
# Passes that only remove, share, evaluate (with the reference ops) or re-type computations:
# the outputs must stay bit-identical. Every other pass may reassociate float arithmetic.
EXACT = frozenset({"dce", "cse", "fold_constant", "simplify", "remove_identity", "bind_shapes"})
RTOL = 1e-4
FAST = settings(max_examples=8, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


def tolerance(name: str) -> tuple[float, float | None]:
    """(rtol, atol) for `compare_graph_outputs`: exact, or rtol and 1e-5 * output scale."""
    return (0.0, 0.0) if name in EXACT else (RTOL, None)


def random_pass_args(info: PassInfo, rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in info.args:
        if a.choices is not None:
            out[a.name] = rng.choice(a.choices)
        elif a.type is bool:
            out[a.name] = rng.choice((True, False))
        elif a.type is int and a.name.startswith("max"):
            out[a.name] = rng.choice((a.default, int(a.low or 0), 1 << 20))
        elif a.type is int:
            out[a.name] = rng.randint(int(a.low or 0), int(a.low or 0) + 8)
        else:
            out[a.name] = a.default
    return out


def check_preserves(info: PassInfo, module: Module, args: dict[str, Any],
                    seeds: list[int]) -> None:
    """The property, for one module: raises AssertionError naming what went wrong."""
    inputs = [random_inputs(module, s) for s in seeds]
    before = [run(module, x) for x in inputs]
    pipeline = Pipeline((make_spec(info.name, "graph", **args),))
    out = PassManager(pipeline).run(module)  # verifies the input and the output
    verify(out)
    again = PassManager(pipeline).run(module)
    assert again == out, f"{info.name} is not deterministic"
    main, new = module.main, out.main
    assert [p.name for p in new.params] == [p.name for p in main.params], \
        f"{info.name} changed main's parameters"
    assert [r.type.dtype for r in new.results] == [r.type.dtype for r in main.results], \
        f"{info.name} changed main's results"
    rtol, atol = tolerance(info.name)
    for k, (x, want) in enumerate(zip(inputs, before, strict=True)):
        problem = compare_graph_outputs(want, run(out, x), rtol, atol)
        assert problem is None, f"{info.name}{args} changed meaning on inputs {k}: {problem}"


def check_seeds(info: PassInfo, seeds: range) -> None:
    for seed in seeds:
        rng = random.Random(seed)
        module = random_module(rng)
        args = info.defaults() if seed % 2 == 0 else random_pass_args(info, rng)
        try:
            check_preserves(info, module, args, [seed, seed + 1])
        except (AssertionError, PassFailed) as err:
            raise AssertionError(f"seed {seed}: {err}") from None


def _property(info: PassInfo):  # type: ignore[no-untyped-def]
    @given(rng=st.randoms(use_true_random=False), defaults=st.booleans())
    def prop(rng: random.Random, defaults: bool) -> None:
        module = random_module(rng)
        args = info.defaults() if defaults else random_pass_args(info, rng)
        check_preserves(info, module, args, [rng.randrange(1 << 30)])

    return prop


@pytest.mark.parametrize("info", GRAPH_PASSES, ids=IDS)
def test_pass_preserves_meaning(info: PassInfo) -> None:
    """Seeded modules: the same representative sample on every run."""
    check_seeds(info, range(24))


@pytest.mark.parametrize("info", GRAPH_PASSES, ids=IDS)
def test_pass_preserves_meaning_hypothesis(info: PassInfo) -> None:
    """Hypothesis-drawn modules (shrunk to a small seed on failure)."""
    FAST(_property(info))()


@pytest.mark.slow
@pytest.mark.parametrize("info", GRAPH_PASSES, ids=IDS)
def test_pass_preserves_meaning_slow(info: PassInfo) -> None:
    check_seeds(info, range(24, 600))
    SLOW(_property(info))()


@pytest.mark.parametrize("level", ["O1", "O2", "O3"])
def test_named_pipelines_preserve_meaning(level: str) -> None:
    pipe = named_pipeline(level, "graph")
    for seed in range(12):
        module = random_module(seed)
        inst = InterpretEach(seed=seed)
        out = PassManager(pipe, instruments=[inst]).run(module)
        verify(out)
        assert inst.skipped == []
        x = random_inputs(module, seed + 1)
        problem = compare_graph_outputs(run(module, x), run(out, x), RTOL)
        assert problem is None, f"{level} on seed {seed}: {problem}"


# -- the generator and the harness -----------------------------------------------------------

PATTERNS = ("Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool",
            "Flatten", "Gemm", "MatMul", "Sum", "Mean", "Max", "Min", "Reshape", "Transpose",
            "Squeeze", "Unsqueeze", "Concat", "Slice", "Identity", "Dropout", "Cast", "Shape",
            "Gather", "ReduceSum", "ReduceMean", "ReduceMax", "Softmax", "If", "Where", "Add",
            "Sub", "Mul", "Div", "Sigmoid", "Tanh", "Exp", "Neg", "Abs", "Sqrt", "Log", "Clip")


def _features(module: Module) -> Counter:
    """Op counts plus the structural patterns the graph passes look for."""
    counts: Counter = Counter()
    main = module.main
    for fn in walk_functions(main):
        seen_calls: set[tuple] = set()
        seen_consts: set[Any] = set()
        for b in fn.body:
            if isinstance(b.expr, Const):
                counts["const"] += 1
                if b.expr.value in seen_consts:
                    counts["duplicate const"] += 1
                seen_consts.add(b.expr.value)
                continue
            e = b.expr
            counts[e.op] += 1
            key = (e.op, e.args, e.attrs)
            if key in seen_calls:
                counts["duplicate call"] += 1
            seen_calls.add(key)
    consts = {b.outs[0] for b in main.body if isinstance(b.expr, Const)}
    producer = {o: b for b in main.body for o in b.outs}
    for b in main.body:
        e = b.expr
        if not isinstance(e, Call):
            continue
        if e.args and all(a in consts for a in e.args if a is not None) and e.op != "If":
            counts["call on constants"] += 1
        src = producer.get(e.args[0]) if e.args and e.args[0] is not None else None
        if src is not None and isinstance(src.expr, Call):
            counts[f"{src.expr.op}->{e.op}"] += 1
        if e.op == "If" and e.args[0] in consts:
            counts["If on a constant"] += 1
        if e.op == "If" and any(v.name not in {o.name for b2 in f.body for o in b2.outs}
                                for _, f in e.attrs if isinstance(f, Function)
                                for v in f.results):
            counts["If capturing"] += 1
        if e.op in ("Mul", "Div", "Add", "Sub") and len(e.args) == 2 and e.args[1] in consts:
            c = dict((b2.outs[0], b2.expr.value.array) for b2 in main.body
                     if isinstance(b2.expr, Const))[e.args[1]]
            if c.size == 1 and float(c.reshape(())) in (0.0, 1.0):
                counts["identity"] += 1
            if c.ndim == 3 and c.shape[1:] == (1, 1):
                counts["per-channel"] += 1
    if len(remove_unused(main).body) < len(main.body):
        counts["dead"] += 1
    return counts


def test_generator_produces_every_pattern() -> None:
    total: Counter = Counter()
    for seed in range(50):
        total += _features(random_module(seed))
    wanted = PATTERNS + ("duplicate const", "duplicate call", "call on constants", "dead",
                         "If on a constant", "If capturing", "identity", "per-channel",
                         "Conv->BatchNormalization", "BatchNormalization->Relu",
                         "Flatten->Gemm", "Shape->Gather", "Gather->Unsqueeze",
                         "Unsqueeze->Concat", "Transpose->Transpose", "Abs->Sqrt")
    missing = [p for p in wanted if total[p] == 0]
    assert not missing, f"50 modules never contain {missing}"


@pytest.mark.parametrize("config", [GraphGenConfig(), GraphGenConfig(max_bindings=12),
                                    GraphGenConfig(if_chance=1.0, extra_params=False)],
                         ids=["default", "small", "branchy"])
def test_generated_modules_verify_and_interpret(config: GraphGenConfig) -> None:
    for seed in range(60):
        module = random_module(seed, config)
        verify(module)
        assert module == random_module(seed, config), "the generator is not deterministic"
        assert len(module.main.body) <= config.max_bindings
        assert 1 <= len(module.main.results) <= config.max_results
        for b in module.main.body:
            for o in b.outs:
                if o.type.is_static:
                    assert int(np.prod(o.type.shape)) <= config.max_elements
        x = random_inputs(module, random.Random(seed))
        for p, a in zip(module.main.params, x, strict=True):
            assert a.shape == p.type.shape and a.dtype == p.type.dtype.np
        for k, out in enumerate(run(module, x)):
            assert out.dtype.kind != "f" or np.isfinite(out).all(), \
                f"seed {seed}: output {k} is not finite"


def _local_pass(name: str, fn: Any) -> PassInfo:
    return PassInfo(name, "graph", f"test pass {name}", (), fn, "graph", module=f"tests.{name}")


def _add_to_sub(module: Module) -> Module:
    def rewrite(fn: Function) -> Function:
        body = tuple(Binding(b.outs, Call("Sub", b.expr.args, b.expr.attrs), b.origin)
                     if isinstance(b.expr, Call) and b.expr.op == "Add" else b
                     for b in fn.body)
        return Function(fn.name, fn.params, body, fn.results)

    return map_functions(module, rewrite)


def _scale_results(module: Module) -> Module:
    """Multiplies float results by 1 + 1e-6: within tolerance, but not bit-identical."""
    from compiler.passes.graph_util import Emitter

    main = module.main
    em = Emitter(main)
    results = tuple(em.call("Mul", [r, em.const(np.float32(1 + 1e-6))])[0]
                    if r.type.dtype.is_float else r for r in main.results)
    fn = Function(main.name, main.params, main.body + tuple(em.take()), results)
    return Module((fn,) + module.functions[1:], module.opset)


def test_harness_accepts_a_correct_pass_and_catches_wrong_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The property itself can fail: a wrong pass is caught, a right one passes."""
    passes = {}
    for name, fn in (("local_dce", lambda m: map_functions(m, remove_unused)),
                     ("local_add_to_sub", _add_to_sub), ("local_scale", _scale_results)):
        passes[name] = _local_pass(name, fn)
        monkeypatch.setitem(base._REGISTRY, ("graph", name), passes[name])
    check_seeds(passes["local_dce"], range(10))
    with pytest.raises(AssertionError, match="changed meaning"):
        check_seeds(passes["local_add_to_sub"], range(10))
    check_seeds(passes["local_scale"], range(10))  # within tolerance
    monkeypatch.setitem(globals(), "EXACT", EXACT | {"local_scale"})
    with pytest.raises(AssertionError, match="local_scale.* changed meaning"):
        check_seeds(passes["local_scale"], range(10))
