"""MindSpore backend for vdreid (entry point ``vdreid.backends: mindspore``)."""

from vdreid_mindspore.backend import MindSporeBackend

__all__ = ["MindSporeBackend"]
