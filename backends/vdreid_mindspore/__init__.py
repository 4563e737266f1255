"""MindSpore backend for vdreid (entry point ``vdreid.backends: mindspore``).

``_quiet`` is imported first, so that MindSpore's C++ logging is limited to
errors before any module of this package imports mindspore.
"""

from vdreid_mindspore import _quiet  # noqa: F401  (must precede every mindspore import)
from vdreid_mindspore.backend import MindSporeBackend

__all__ = ["MindSporeBackend"]
