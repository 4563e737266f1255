"""Import MindSpore with its C++ logging limited to errors.

MindSpore prints WARNING lines to stderr for every missing device plugin
(Ascend, GPU) on CPU-only machines; GLOG_v=3 keeps errors only. A user who
sets GLOG_v keeps their choice.
"""

import os

os.environ.setdefault("GLOG_v", "3")

import mindspore  # noqa: E402

__all__ = ["mindspore"]
