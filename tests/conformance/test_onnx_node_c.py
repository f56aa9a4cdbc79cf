"""ONNX's own backend node tests compiled to native code through the c backend.

Known failures are strict xfails from tests/conformance/xfail.txt (lines tagged for c).
"""

from oracles.conformance import backend_test_class

OnnxBackendNodeModelTest = backend_test_class("c", __name__)
