"""ONNX's own backend node tests compiled to native code through the c backend.

Known failures are strict xfails from tests/conformance/xfail.txt (lines tagged for c).
"""

import pytest

from oracles.conformance import backend_test_class

# One gcc run per test model makes this suite take minutes: it runs with `-m slow`.
pytestmark = pytest.mark.slow

OnnxBackendNodeModelTest = backend_test_class("c", __name__)
