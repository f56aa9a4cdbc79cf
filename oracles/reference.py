"""Reference executors for differential testing: onnxruntime (optimizations off or on)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx

from compiler.errors import AnvilError


def ort_session(model: onnx.ModelProto, optimize: bool = False, threads: int = 1):
    """An onnxruntime CPU session (graph optimisations off unless `optimize`)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def run_onnxruntime(model: onnx.ModelProto, inputs: Mapping[str, np.ndarray],
                    optimize: bool = False, threads: int = 1) -> list[np.ndarray]:
    try:
        return ort_session(model, optimize, threads).run(None, dict(inputs))
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AnvilError(f"onnxruntime failed: {msg}") from None
