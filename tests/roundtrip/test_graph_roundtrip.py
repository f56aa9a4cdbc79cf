"""parse(print(m)) == m for every imported ONNX test model and for random modules."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.dtypes import DType
from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model
from compiler.graph.ir import Binding, Call, Const, Function, Module, Tensor, TensorType, Var
from compiler.graph.parser import parse
from compiler.graph.printer import print_module
from oracles.conformance import load_cases


def test_every_node_test_model_roundtrips():
    imported = 0
    for case in load_cases():
        try:
            m = import_model(case.model)
        except AnvilError:
            continue  # unsupported here; counted by the conformance suite
        text = print_module(m)
        assert parse(text) == m, case.name
        assert print_module(parse(text)) == text, case.name
        imported += 1
    assert imported > 1000, f"only {imported} node-test models imported"


# -- random modules ----------------------------------------------------------------------

DTYPES = [d for d in DType if d not in (DType.complex64, DType.complex128)]
names = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,8}", fullmatch=True),
    st.text(alphabet="ab/:-0 \"\\é", min_size=1, max_size=6),
)
dims = st.one_of(st.integers(0, 5), st.sampled_from(["N", "batch", "?"]))
shapes = st.one_of(st.none(), st.lists(dims, max_size=4).map(tuple))
types = st.builds(TensorType, shapes, st.sampled_from(DTYPES))


@st.composite
def tensors(draw, dtype=None):
    dt = dtype or draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    n = int(np.prod(shape))
    if dt is DType.string:
        vals = draw(st.lists(st.text(max_size=4), min_size=n, max_size=n))
        return Tensor(np.array(vals, dtype=object).reshape(shape))
    raw = draw(st.binary(min_size=n * dt.np.itemsize, max_size=n * dt.np.itemsize))
    arr = np.frombuffer(raw, dtype=dt.np).reshape(shape) if n else np.zeros(shape, dt.np)
    if dt is DType.bool:
        arr = arr.view(np.uint8).astype(bool)
    return Tensor(arr)


floats = st.floats(allow_nan=False).filter(lambda x: not (x == 0 and math.copysign(1, x) < 0))
attr_values = st.one_of(
    st.integers(-(2**63), 2**63 - 1), floats, st.text(max_size=6),
    st.lists(st.integers(-9, 9), max_size=4).map(tuple),
    st.lists(floats, min_size=1, max_size=3).map(tuple),
    st.lists(st.text(max_size=3), min_size=1, max_size=3).map(tuple),
    tensors(),
)


@st.composite
def functions(draw, depth=0, outer=()):
    used: set[str] = {v.name for v in outer}

    def fresh():
        n = draw(names.filter(lambda s: s not in used))
        used.add(n)
        return n

    params = [Var(fresh(), draw(types)) for _ in range(draw(st.integers(0, 3)))]
    visible = list(outer) + params
    body = []
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()) or not visible:
            t = draw(tensors())
            v = Var(fresh(), t.type)
            body.append(Binding((v,), Const(t)))
            visible.append(v)
            continue
        args = tuple(draw(st.one_of(st.none(), st.sampled_from(visible)))
                     for _ in range(draw(st.integers(0, 3))))
        attrs = dict(draw(st.dictionaries(names, attr_values, max_size=3)))
        if depth < 1 and draw(st.booleans()):
            attrs["body"] = draw(functions(depth + 1, tuple(visible)))
        outs = tuple(Var(fresh(), draw(types)) for _ in range(draw(st.integers(1, 2))))
        body.append(Binding(outs, Call(draw(names), args, tuple(sorted(attrs.items())))))
        visible.extend(outs)
    results = tuple(draw(st.lists(st.sampled_from(visible), max_size=2))) if visible else ()
    return Function(draw(names), tuple(params), tuple(body), results)


@settings(max_examples=300, deadline=None)
@given(functions(), st.integers(0, 26))
def test_random_module_roundtrips(fn, opset):
    m = Module((fn,), opset=opset)
    text = print_module(m)
    assert parse(text) == m
