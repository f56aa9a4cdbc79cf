"""The ONNX backend API (`onnx.backend.base`), so ONNX's own test runner drives Anvil.

`prepare(model, device="CPU", target="interp")` returns a rep whose `.run(inputs)` gives the
outputs. Targets: "interp" (the graph interpreter); native targets register here as they land.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep, Device, DeviceType

from compiler.errors import AnvilError, ExecutionError
from compiler.frontend.onnx import import_model
from compiler.graph.interp import Interpreter, check_input
from compiler.graph.ir import Module

# target name -> factory(module, **options) -> callable(list[np.ndarray]) -> list[np.ndarray]
TARGETS: dict[str, Callable[..., Callable[[list[np.ndarray]], list[np.ndarray]]]] = {}


def _interp_target(module: Module, **_: Any):
    interp = Interpreter(check_types=True)
    return lambda args: interp.run_function(module.main, args)


TARGETS["interp"] = _interp_target


def _native_target(name: str):
    def factory(module: Module, opt_level: int = 0, **_: Any):
        from compiler.driver import compile as compile_module

        return compile_module(module, target=name, opt_level=opt_level).run

    return factory


for _t in ("llvm", "c", "lir"):
    TARGETS[_t] = _native_target(_t)


def check_target(target: str) -> None:
    if target not in TARGETS:
        known = ", ".join(sorted(TARGETS))
        raise AnvilError(f"unknown target {target!r} (known: {known})")


class AnvilRep(BackendRep):
    def __init__(self, module: Module, target: str, **options: Any):
        self.module = module
        self.target = target
        self._run = TARGETS[target](module, **options)

    @property
    def input_names(self) -> list[str]:
        return [p.name for p in self.module.main.params]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        params = self.module.main.params
        if isinstance(inputs, dict):
            missing = [p.name for p in params if p.name not in inputs]
            if missing:
                raise ExecutionError(f"missing input(s): {', '.join(missing)}")
            args = [inputs[p.name] for p in params]
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            args = list(inputs)
            if len(args) != len(params):
                raise ExecutionError(f"model takes {len(params)} inputs, got {len(args)}")
        args = [check_input(p, a, "input") for p, a in zip(params, args, strict=True)]
        return tuple(self._run(args))


class AnvilBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model: onnx.ModelProto | str, device: str = "CPU", target: str = "interp",
                **kwargs: Any) -> AnvilRep:
        if not cls.supports_device(device):
            raise AnvilError(f"device {device!r} is not supported (use CPU)")
        check_target(target)
        return AnvilRep(import_model(model), target, **kwargs)

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU",
                  **kwargs: Any) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Sequence[np.ndarray], device: str = "CPU",
                 outputs_info: Sequence[tuple] | None = None, **kwargs: Any):
        from onnx import helper

        in_infos = [
            helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(np.asarray(x).dtype), np.asarray(x).shape)
            for name, x in zip(node.input, inputs, strict=False) if name
        ]
        out_infos = [helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None)
                     for name in node.output]
        graph = helper.make_graph([node], "run_node", in_infos, out_infos)
        opset = kwargs.pop("opset_version", onnx.defs.onnx_opset_version())
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        return cls.run_model(model, [x for n, x in zip(node.input, inputs, strict=False) if n],
                             device, **kwargs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        try:
            d = Device(device)
        except Exception:
            return False
        return d.type == DeviceType.CPU


prepare = AnvilBackend.prepare
run_model = AnvilBackend.run_model
run_node = AnvilBackend.run_node
supports_device = AnvilBackend.supports_device
