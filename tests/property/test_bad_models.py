"""Every user error is one clean line, at the model level too: single-op ONNX node-test
models with mutated input dims, integer attributes and input dtypes either import, verify
and run on the interpreter, or are rejected with an AnvilError; never another exception (a
type relation that lets an invalid model through to a crashing reference is a bug).

`-m slow` runs many more mutants."""

from __future__ import annotations

import functools
import random
import warnings

import numpy as np
import onnx
import pytest

from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model
from compiler.graph import interp
from compiler.graph.verifier import verify
from oracles.conformance import load_cases


@functools.lru_cache(maxsize=1)
def single_op_models() -> tuple[onnx.ModelProto, ...]:
    return tuple(c.model for c in load_cases() if len(c.model.graph.node) == 1)


def mutate(model: onnx.ModelProto, rng: random.Random) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    for _ in range(rng.randint(1, 2)):
        r = rng.random()
        if r < 0.4 and g.input:
            dims = rng.choice(list(g.input)).type.tensor_type.shape.dim
            if dims:
                d = rng.choice(list(dims))
                d.dim_value = max(0, d.dim_value + rng.choice([-2, -1, 1, 2, 5]))
        elif r < 0.8:
            ints = [a for a in g.node[0].attribute
                    if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS)]
            if ints:
                a = rng.choice(ints)
                if a.type == onnx.AttributeProto.INT:
                    a.i += rng.choice([-3, -1, 1, 2, 7])
                elif a.ints:
                    a.ints[rng.randrange(len(a.ints))] += rng.choice([-3, -1, 1, 2])
        elif g.input:
            rng.choice(list(g.input)).type.tensor_type.elem_type = rng.choice([1, 6, 7, 9, 10,
                                                                               11])
    return out


def check_mutants(seed: int, count: int) -> None:
    rng = random.Random(seed)
    models = single_op_models()
    for _ in range(count):
        model = mutate(rng.choice(models), rng)
        try:
            module = import_model(model)
            verify(module)
            gen = np.random.default_rng(0)
            inputs = []
            for p in module.main.params:
                shape = tuple(d if isinstance(d, int) else 2 for d in (p.type.shape or ()))
                inputs.append(gen.standard_normal(shape).astype(p.type.dtype.np)
                              if p.type.dtype.is_float else np.zeros(shape, p.type.dtype.np))
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                interp.run(module, inputs)
        except AnvilError:
            pass
        except Exception as err:
            node = model.graph.node[0]
            raise AssertionError(f"{node.op_type} mutant (seed {seed}) raised "
                                 f"{type(err).__name__}: {err}") from err


@pytest.mark.parametrize("seed", range(4))
def test_bad_models_are_rejected_cleanly(seed: int) -> None:
    check_mutants(seed, 400)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4, 40))
def test_bad_models_are_rejected_cleanly_slow(seed: int) -> None:
    check_mutants(seed, 2000)
