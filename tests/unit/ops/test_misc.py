"""compiler/ops/misc.py: the Einsum equation parser and type relation, Einsum/Det against
onnxruntime, and the ai.onnx.ml ops Binarizer and ArrayFeatureExtractor."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

from compiler.backend import prepare
from compiler.dtypes import DType
from compiler.errors import AnvilError
from compiler.frontend.onnx import import_model
from compiler.ops.misc import EinsumError, parse_einsum

RNG = np.random.default_rng(4)
ML = "ai.onnx.ml"


def f32(*shape) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def one_node(op, inputs, attrs=None, *, opset=13, domain="", shapes=None):
    names = [f"x{i}" for i in range(len(inputs))]
    node = helper.make_node(op, names, ["y"], domain=domain, **(attrs or {}))
    vis = [helper.make_tensor_value_info(n, DType.from_np(a.dtype).onnx,
                                         shapes[i] if shapes else a.shape)
           for i, (n, a) in enumerate(zip(names, inputs, strict=True))]
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(
        helper.make_graph([node], "g", vis, [helper.make_empty_tensor_value_info("y")]),
        opset_imports=opsets)
    model.ir_version = 8
    return model


def check_ort(op, inputs, attrs=None, rtol=1e-5, **kw):
    model = one_node(op, inputs, attrs, **kw)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, {f"x{i}": a for i, a in enumerate(inputs)})
    (got,) = prepare(model).run(inputs)
    assert (got.dtype, got.shape) == (want.dtype, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-5)


def type_error(op, inputs, attrs=None, **kw) -> str:
    with pytest.raises(AnvilError) as e:
        import_model(one_node(op, inputs, attrs, **kw))
    return str(e.value)


# ---------------------------------------------------------------------------------------
# Einsum


def test_parse_explicit_and_implicit():
    e = parse_einsum(" bij , bjk -> bik ")
    assert e.inputs == (tuple("bij"), tuple("bjk")) and e.output == tuple("bik")
    assert parse_einsum("ij,jk").output == ("i", "k")
    assert parse_einsum("ba").output == ("a", "b")
    assert parse_einsum("Ba").output == ("B", "a")  # upper case sorts first
    assert parse_einsum("...ii").output == ("...",)
    assert str(parse_einsum("a...b,b->...a")) == "a...b,b->...a"


@pytest.mark.parametrize("eq,why", [
    ("i.j", "not part of an ellipsis"), ("i......", "more than one ellipsis"),
    ("ij1", "unexpected character"), ("i->j", "does not occur"), ("ij->ii", "more than once"),
    ("i->i->i", "more than one '->'"), ("ij->...", "no input term does"),
])
def test_parse_errors(eq, why):
    with pytest.raises(EinsumError, match=why):
        parse_einsum(eq)


@pytest.mark.parametrize("eq,shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("bij,bjk", [(5, 2, 3), (5, 3, 4)]),
    ("...ij,...jk->...ik", [(5, 2, 3), (1, 3, 4)]), ("ii->i", [(3, 3)]), ("ij->", [(3, 4)]),
    ("i,j->ij", [(3,), (4,)]), ("a...b->...", [(2, 3, 4)]), ("i,i", [(1,), (3,)]),
])
def test_einsum_matches_ort(eq, shapes):
    check_ort("Einsum", [f32(*s) for s in shapes], {"equation": eq}, opset=12)


def test_einsum_integers_match_ort():
    a, b = (RNG.integers(-5, 5, size=s).astype(np.int64) for s in [(2, 3), (3, 4)])
    check_ort("Einsum", [a, b], {"equation": "ij,jk->ik"}, opset=12)


def test_einsum_symbolic_shapes():
    m = import_model(one_node("Einsum", [f32(2, 3, 4), f32(1, 4, 5)],
                              {"equation": "...ij,...jk->...ik"},
                              shapes=[["B", "I", "J"], [1, "J", 5]]))
    assert m.main.results[0].type.shape == ("B", "I", 5)


def test_einsum_type_errors():
    x = f32(2, 3, 4)
    assert "does not fit input 0" in type_error("Einsum", [x], {"equation": "ij->i"})
    assert "has 1 terms for 2 inputs" in type_error("Einsum", [x, x], {"equation": "ijk"})
    assert "label 'k' has sizes 4 and 3" in type_error("Einsum", [x, x],
                                                       {"equation": "ijk,ikj"})
    assert "label 'i' has sizes 3 and 4 in input 0" in type_error(
        "Einsum", [x[0]], {"equation": "ii"})
    assert "different numbers of dimensions" in type_error(
        "Einsum", [x, x[0]], {"equation": "...k,...k"})
    assert "mix dtypes" in type_error("Einsum", [x, x.astype(np.float64)],
                                      {"equation": "ijk,ijk"})


# ---------------------------------------------------------------------------------------
# Det


def test_det_matches_ort():
    check_ort("Det", [f32(2, 3, 3, 3)], opset=11, rtol=1e-4)


def test_det_errors():
    assert "square matrices" in type_error("Det", [f32(2, 3, 4)])


# ---------------------------------------------------------------------------------------
# ai.onnx.ml


def test_binarizer_matches_ort():
    check_ort("Binarizer", [f32(3, 4)], {"threshold": 0.25}, domain=ML)


def test_binarizer_integers_by_hand():
    x = np.array([-1, 0, 1, 2], np.int64)
    (y,) = prepare(one_node("Binarizer", [x], {"threshold": 0.5}, domain=ML)).run([x])
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [0, 0, 1, 1])


@pytest.mark.parametrize("xs,ys", [((5,), (2,)), ((3, 5), (1, 2)), ((2, 3, 5), (2, 2))])
def test_array_feature_extractor_matches_ort(xs, ys):
    idx = RNG.integers(0, 5, size=ys).astype(np.int64)
    check_ort("ArrayFeatureExtractor", [f32(*xs), idx], domain=ML)


def test_array_feature_extractor_errors():
    x, idx = f32(3, 4), np.array([4], np.int64)
    with pytest.raises(AnvilError, match="index out of range"):
        prepare(one_node("ArrayFeatureExtractor", [x, idx], domain=ML)).run([x, idx])
    assert "Y dtype int32" in type_error("ArrayFeatureExtractor", [x, idx.astype(np.int32)],
                                         domain=ML)
