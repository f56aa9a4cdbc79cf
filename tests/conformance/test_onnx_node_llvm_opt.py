"""ONNX's backend node tests on llvm at -O1, -O2 and -O3: the graph and loop pipelines of
each level must keep every case that passes at -O0 passing (the same strict xfails apply).
Behind the slow marker: each level compiles ~1800 models with its full pipelines."""

import pytest

from oracles.conformance import backend_test_class

pytestmark = pytest.mark.slow

OnnxBackendNodeModelTestO1 = backend_test_class("llvm", __name__, opt_level=1)
OnnxBackendNodeModelTestO2 = backend_test_class("llvm", __name__, opt_level=2)
OnnxBackendNodeModelTestO3 = backend_test_class("llvm", __name__, opt_level=3)
