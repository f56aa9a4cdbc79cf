"""Regenerate the bundled example models: `python corpus/models/make_models.py`.

Weights are random and He-scaled (BatchNorm scales and variances positive), so a wrong
kernel changes the logits visibly; there is no final Softmax to flatten differences.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent


def _he(rng, shape, fan_in):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def tiny_cnn(seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits = {
        "w1": _he(rng, (8, 3, 3, 3), 27),
        "bn_scale": rng.uniform(0.5, 1.5, 8).astype(np.float32),
        "bn_bias": rng.standard_normal(8).astype(np.float32) * 0.1,
        "bn_mean": rng.standard_normal(8).astype(np.float32) * 0.1,
        "bn_var": rng.uniform(0.5, 1.5, 8).astype(np.float32),
        "w2": _he(rng, (16, 8, 3, 3), 72),
        "b2": rng.standard_normal(16).astype(np.float32) * 0.1,
        "fc_w": _he(rng, (10, 16), 16),
        "fc_b": rng.standard_normal(10).astype(np.float32) * 0.1,
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn_scale", "bn_bias", "bn_mean",
                                                "bn_var"], ["b1"], epsilon=1e-5),
        helper.make_node("Relu", ["b1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="anvil-corpus")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


if __name__ == "__main__":
    onnx.save(tiny_cnn(), HERE / "tiny_cnn.onnx")
    print("wrote", HERE / "tiny_cnn.onnx")
