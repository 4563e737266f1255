"""ONNX Runtime backend for vdreid (entry point ``vdreid.backends: onnxruntime``): inference only."""

from vdreid_onnxruntime.backend import OnnxRuntimeBackend

__all__ = ["OnnxRuntimeBackend"]
