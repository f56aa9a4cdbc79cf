"""Anvil's compiler: ONNX -> graph IR -> loop IR -> native code."""
