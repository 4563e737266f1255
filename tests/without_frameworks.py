"""Run Python with torch and MindSpore unimportable, as on a machine without them.

A ``sitecustomize`` module put first on PYTHONPATH installs a meta-path
finder that raises ImportError for ``torch`` and ``mindspore`` (and every
submodule) before any other import runs, so the installed packages are
invisible to the child process, entry points included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BLOCKED = ("torch", "mindspore")
SITECUSTOMIZE = f"""
import importlib.abc
import sys

BLOCKED = {BLOCKED!r}


class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked: this process runs without torch and MindSpore")
        return None


sys.meta_path.insert(0, _Blocked())
"""


def run_without_frameworks(
    args: list[str], folder: Path, *, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python args...`` with torch and MindSpore blocked; ``folder`` holds the sitecustomize."""
    site = folder / "blocked-site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), *sys.path]))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout
    )
