"""Test models that can tell right from wrong.

ONNX's light models fill every weight with one constant (ConstantOfShape), so their softmax
outputs are uniform and a broken kernel can still "match". `randomize_light_model` replaces
each fill with seeded random values (He-scaled conv/gemm weights, positive BatchNorm scales
and variances, small biases and means) and removes the final Softmax, so tests compare logits.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

LIGHT_MODELS = ("bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
                "shufflenet", "squeezenet", "vgg19", "zfnet512")


def light_dir() -> Path:
    import onnx.backend.test

    return Path(os.path.dirname(onnx.backend.test.__file__)) / "data" / "light"


def load_light(name: str) -> tuple[onnx.ModelProto, np.ndarray]:
    """The light model and its reference output (`_output_0.pb`)."""
    d = light_dir()
    model = onnx.load(str(d / f"light_{name}.onnx"))
    t = onnx.TensorProto()
    t.ParseFromString((d / f"light_{name}_output_0.pb").read_bytes())
    return model, numpy_helper.to_array(t)


def _role(model: onnx.ModelProto, name: str) -> tuple[str, int]:
    for n in model.graph.node:
        for i, x in enumerate(n.input):
            if x == name:
                return n.op_type, i
    return "", -1


def _random_fill(rng: np.random.Generator, shape: tuple[int, ...], op: str, idx: int) -> np.ndarray:
    if op in ("Conv", "ConvTranspose") and idx == 1 or op in ("Gemm", "MatMul") and idx == 1:
        fan_in = int(np.prod(shape[1:])) if op != "MatMul" else shape[0]
        if op == "Gemm":
            fan_in = shape[1] if len(shape) > 1 else shape[0]
        return rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))
    if op == "BatchNormalization" and idx in (1, 4):
        return rng.uniform(0.5, 1.5, shape)
    if op == "PRelu":
        return rng.uniform(0.0, 0.3, shape)
    return rng.standard_normal(shape) * 0.1


def randomize_light_model(model: onnx.ModelProto, seed: int = 0,
                          drop_softmax: bool = True) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    rng = np.random.default_rng(seed)
    inits = {t.name: t for t in g.initializer}
    keep = []
    new_inits = []
    for n in g.node:
        if n.op_type == "ConstantOfShape" and n.input and n.input[0] in inits:
            shape = tuple(int(d) for d in numpy_helper.to_array(inits[n.input[0]]))
            op, idx = _role(m, n.output[0])
            arr = _random_fill(rng, shape, op, idx).astype(np.float32)
            new_inits.append(numpy_helper.from_array(arr, n.output[0]))
            continue
        keep.append(n)
    if drop_softmax and keep and keep[-1].op_type == "Softmax":
        sm = keep.pop()
        for o in g.output:
            if o.name == sm.output[0]:
                o.name = sm.input[0]
    used = {x for n in keep for x in n.input}
    g.ClearField("node")
    g.node.extend(keep)
    old = [t for t in g.initializer if t.name in used]
    g.ClearField("initializer")
    g.initializer.extend(old + new_inits)
    ins = [i for i in g.input if i.name not in inits and i.name not in
           {t.name for t in new_inits}]
    g.ClearField("input")
    g.input.extend(ins)
    m.ir_version = max(m.ir_version, 4)  # initializers need not be listed as inputs
    return m


def light_input(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    out = {}
    for i in model.graph.input:
        if i.name in inits:
            continue
        shape = [d.dim_value or 1 for d in i.type.tensor_type.shape.dim]
        out[i.name] = rng.standard_normal(shape).astype(np.float32)
    return out
