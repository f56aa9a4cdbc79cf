"""Every registered loop pass preserves meaning: random well-formed, UB-free programs (from
`random_primfunc` and the kernel-shaped generator in `kernels.py`) interpret bit-identically
before and after the pass (no new undefined behaviour), the output verifies, and running the
pass twice gives the same output. Pass arguments are drawn too. Parametrised over the
registry, so a new pass is covered as soon as it exists.

`-m slow` runs the same properties with many more examples.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.loop import PrimFunc, verify
from compiler.loop.random_program import GenConfig, random_args, random_primfunc
from compiler.passes import InterpretEach, PassInfo, PassManager, all_passes, named_pipeline
from compiler.passes.instruments import compare_outcomes, execute
from tests.property.kernels import random_kernel

LOOP_PASSES = all_passes("loop")
IDS = [p.name for p in LOOP_PASSES]
FAST = settings(max_examples=6, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def arg_strategy(info: PassInfo) -> st.SearchStrategy[dict[str, Any]]:
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for a in info.args:
        if a.choices is not None:
            parts[a.name] = st.sampled_from(a.choices)
        elif a.type is bool:
            parts[a.name] = st.booleans()
        elif a.type is int:
            low = int(a.low) if a.low is not None else 0
            parts[a.name] = st.integers(low, low + 8) | st.just(a.default)
        else:
            parts[a.name] = st.just(a.default)
    return st.fixed_dictionaries(parts)


def make_program(rng: random.Random, kernel: bool) -> PrimFunc:
    if kernel:
        return random_kernel(rng)
    return random_primfunc(rng, config=GenConfig(max_depth=rng.choice((2, 3))))


def check_preserves(info: PassInfo, func: PrimFunc, args: dict[str, Any], seeds: list[int]) -> None:
    inputs = [random_args(func, s) for s in seeds]
    before = [execute(func, a) for a in inputs]
    ub = [b for b in before if isinstance(b, str)]
    assert not ub, f"the generator produced a program with {ub[0]}"
    out = info.run(func, args)
    verify(out)
    assert info.run(func, args) == out, f"{info.name} is not deterministic"
    for a, b in zip(inputs, before, strict=True):
        problem = compare_outcomes(b, execute(out, a))
        assert problem is None, f"{info.name}{args} changed meaning: {problem}"


def _property(info: PassInfo, kernel: bool):  # type: ignore[no-untyped-def]
    @given(rng=st.randoms(use_true_random=False), args=arg_strategy(info))
    def prop(rng: random.Random, args: dict[str, Any]) -> None:
        func = make_program(rng, kernel)
        check_preserves(info, func, args, [rng.randrange(1 << 30) for _ in range(2)])

    return prop


def random_pass_args(info: PassInfo, rng: random.Random) -> dict[str, Any]:
    return {
        a.name: (rng.choice(a.choices) if a.choices is not None else
                 rng.choice((True, False)) if a.type is bool else
                 rng.randint(int(a.low or 0), int(a.low or 0) + 8) if a.type is int else
                 a.default)
        for a in info.args}


def check_seeds(info: PassInfo, kernel: bool, seeds: range) -> None:
    for seed in seeds:
        rng = random.Random(seed)
        func = make_program(rng, kernel)
        args = info.defaults() if seed % 2 == 0 else random_pass_args(info, rng)
        try:
            check_preserves(info, func, args, [seed, seed + 1])
        except AssertionError as err:
            raise AssertionError(f"seed {seed} ({'kernel' if kernel else 'random'}): "
                                 f"{err}") from None


@pytest.mark.parametrize("info", LOOP_PASSES, ids=IDS)
@pytest.mark.parametrize("kernel", [False, True], ids=["random", "kernel"])
def test_pass_preserves_meaning(info: PassInfo, kernel: bool) -> None:
    """Seeded programs: the same representative sample on every run."""
    check_seeds(info, kernel, range(16))


@pytest.mark.parametrize("info", LOOP_PASSES, ids=IDS)
@pytest.mark.parametrize("kernel", [False, True], ids=["random", "kernel"])
def test_pass_preserves_meaning_hypothesis(info: PassInfo, kernel: bool) -> None:
    """Hypothesis-driven programs (shrunk to a small reproducer on failure)."""
    FAST(_property(info, kernel))()


@pytest.mark.slow
@pytest.mark.parametrize("info", LOOP_PASSES, ids=IDS)
@pytest.mark.parametrize("kernel", [False, True], ids=["random", "kernel"])
def test_pass_preserves_meaning_slow(info: PassInfo, kernel: bool) -> None:
    check_seeds(info, kernel, range(16, 300))
    SLOW(_property(info, kernel))()


@pytest.mark.parametrize("level", ["O1", "O2", "O3"])
def test_named_pipelines_preserve_meaning(level: str) -> None:
    pipe = named_pipeline(level)
    for seed in range(6):
        rng = random.Random(seed)
        func = make_program(rng, kernel=seed % 2 == 1)
        out = PassManager(pipe, instruments=[InterpretEach(seed=seed)]).run(func)
        verify(out)
