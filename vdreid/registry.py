"""The backend registry: which backends are installed, and loading one by name.

A backend is a class registered in the entry-point group ``vdreid.backends``
(see pyproject.toml); a third-party distribution adds one by declaring its
own entry point. Entry points are loaded lazily: ``import vdreid`` never
imports a framework, and listing what is *registered* loads nothing.
"""

from __future__ import annotations

import importlib.metadata as md

from vdreid.backend import Backend, BackendInfo
from vdreid.errors import BackendNotAvailable, first_line

ENTRY_POINT_GROUP = "vdreid.backends"

#: The pip extra that brings each first-party backend.
KNOWN_EXTRAS = {
    "torch": "vdreid[torch]",
    "mindspore": "vdreid[mindspore]",
    "onnxruntime": "vdreid[onnxruntime]",
}


def registered() -> dict[str, md.EntryPoint]:
    """Registered backends by name; loads nothing."""
    return {ep.name: ep for ep in md.entry_points(group=ENTRY_POINT_GROUP)}


def get(name: str) -> Backend:
    """Load and instantiate the backend called ``name``.

    Raises BackendNotAvailable naming the installed backends and the pip
    extra that brings the missing one.
    """
    eps = registered()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        hint = KNOWN_EXTRAS.get(name)
        todo = f"install it with `pip install '{hint}'`" if hint else "check the spelling"
        raise BackendNotAvailable(
            f"no backend named {name!r} is registered (registered: {known}); {todo}"
        )
    hint = KNOWN_EXTRAS.get(name, f"the distribution providing {name!r}")
    try:
        cls = eps[name].load()
    except Exception as exc:  # a broken install: say which and why
        raise BackendNotAvailable(
            f"backend {name!r} is registered but fails to import: "
            f"{type(exc).__name__}: {first_line(exc)}; reinstall it with `pip install '{hint}'`"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendNotAvailable(
            f"backend {name!r} is registered as {eps[name].value}, which is not a "
            f"vdreid.backend.Backend subclass; update {hint} to a release for this vdreid"
        )
    return cls()


def probe(name: str) -> tuple[BackendInfo | None, str]:
    """(info, "ok") for a working backend, (None, reason) otherwise."""
    try:
        info = get(name).info()
    except Exception as exc:
        return None, f"{type(exc).__name__}: {first_line(exc)}"
    return info, "ok"
