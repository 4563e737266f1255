"""vdreid: cross-modal (visible-infrared) person re-identification.

The core package is framework-free: it imports numpy, pydantic, typer and
rich only. Backends (PyTorch, MindSpore) are separate packages discovered
through the ``vdreid.backends`` entry-point group.
"""

from vdreid._version import __version__

__all__ = ["__version__"]
