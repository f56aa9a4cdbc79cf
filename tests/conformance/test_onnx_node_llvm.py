"""ONNX's own backend node tests compiled to native code through the llvm backend.

Known failures are strict xfails from tests/conformance/xfail.txt (lines tagged for llvm).
"""

from oracles.conformance import backend_test_class

OnnxBackendNodeModelTest = backend_test_class("llvm", __name__)
