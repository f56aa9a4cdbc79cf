"""Every user error is one clean line: mutated graph-IR text, loop-IR text and pipeline text
(random deletions, substitutions and insertions in printed random programs) either parse,
verify and go through passes, or are rejected with an AnvilError, never another exception.

`-m slow` runs many more mutants."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from compiler.errors import AnvilError
from compiler.graph.parser import parse as parse_graph
from compiler.graph.printer import print_module
from compiler.graph.random_graph import random_module
from compiler.graph.verifier import verify as verify_graph
from compiler.loop import parse as parse_loop
from compiler.loop import print_func
from compiler.loop import verify as verify_loop
from compiler.loop.random_program import random_primfunc
from compiler.passes import PassManager, parse_pipeline

ALPHABET = "0123456789[](){}%@,:=-._ abcxyziN?*\"\\\n<>+/#"
PIPELINES = ["simplify,unroll{max_extent=8},vectorize{width=8}", "O3", "tile{x=4},split{factor=2}",
             'bind_shapes{dims="N=1"}', "fold_constant,fuse_ops{max_size=4}"]


def mutate(text: str, rng: random.Random, edits: int = 3) -> str:
    t = list(text)
    for _ in range(rng.randint(1, edits)):
        i = rng.randrange(len(t)) if t else 0
        r = rng.random()
        if r < 0.4 and t:
            del t[i]
        elif r < 0.8 and t:
            t[i] = rng.choice(ALPHABET)
        else:
            t.insert(i, rng.choice(ALPHABET))
    return "".join(t)


def _mutants(text: str, seed: int, count: int, check: Callable[[str], object]) -> None:
    rng = random.Random(seed)
    for _ in range(count):
        try:
            check(mutate(text, rng))
        except AnvilError:
            pass


def _graph_check(text: str) -> None:
    module = parse_graph(text)
    verify_graph(module)
    PassManager("fold_constant,simplify,cse,dce,fuse_ops").run(module)


def _loop_check(text: str) -> None:
    func = parse_loop(text)
    verify_loop(func)
    PassManager("simplify,licm,vectorize").run(func)


def graph_mutants(seed: int, count: int) -> None:
    _mutants(print_module(random_module(seed)), seed, count, _graph_check)


def loop_mutants(seed: int, count: int) -> None:
    _mutants(print_func(random_primfunc(seed)), seed, count, _loop_check)


def pipeline_mutants(seed: int, count: int) -> None:
    rng = random.Random(seed)
    for _ in range(count):
        text = mutate(rng.choice(PIPELINES), rng, 2)
        for level in ("loop", "graph"):
            try:
                parse_pipeline(text, level)
            except AnvilError:
                pass


@pytest.mark.parametrize("seed", range(8))
def test_bad_text_is_rejected_cleanly(seed: int) -> None:
    graph_mutants(seed, 25)
    loop_mutants(seed, 25)
    pipeline_mutants(seed, 100)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8, 200))
def test_bad_text_is_rejected_cleanly_slow(seed: int) -> None:
    graph_mutants(seed, 40)
    loop_mutants(seed, 40)
    pipeline_mutants(seed, 200)
