"""The backend registry: which backends are installed, and loading one by name.

A backend is a class registered in the entry-point group ``vdreid.backends``
(see pyproject.toml); a third-party distribution adds one by declaring its
own entry point. Entry points are loaded lazily: ``import vdreid`` never
imports a framework, and listing what is *registered* loads nothing.
"""

from __future__ import annotations

import importlib.metadata as md
import itertools
from typing import Literal

from vdreid.backend import Backend, BackendInfo
from vdreid.errors import BackendNotAvailable, VdreidError, first_line

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


#: What a command needs of the backend it picks when --backend is not given.
Need = Literal["train", "features", "export"]
#: Where a default is looked for first (the first-party training backends).
PREFERRED = ("torch", "mindspore")


def can(backend: Backend, need: Need, fmt: str | None = None) -> bool:
    """Whether ``backend`` implements ``need`` (and writes ``fmt``, for export)."""
    if need == "train":
        return backend.trains
    if need == "export":
        try:
            backend.export_format(fmt)
        except VdreidError:
            return False
    return True


def choose(need: Need, *, writer: str | None = None, fmt: str | None = None) -> tuple[str, str]:
    """The backend a command uses when no --backend is given, and a note for
    the user ("" when it is the checkpoint's writer).

    In order: the checkpoint's ``writer`` when it is installed and can do
    ``need``; else the first installed backend that can train and do
    ``need`` (torch, then mindspore, then others by name); else the first
    that can do ``need`` (an inference-only backend such as an ONNX Runtime
    one, for features). A backend that fails to import is passed over.
    Backends are loaded only as far as the choice needs.
    """
    eps = registered()
    loaded: dict[str, Backend] = {}

    def load(name: str) -> Backend | None:
        if name not in loaded:
            try:
                loaded[name] = get(name)
            except BackendNotAvailable:
                return None
        return loaded[name]

    if writer is not None and (b := load(writer)) is not None and can(b, need, fmt):
        return writer, ""
    order = [n for n in PREFERRED if n in eps] + sorted(n for n in eps if n not in PREFERRED)
    trainers = (n for n in order if (b := load(n)) is not None and can(b, "train"))
    for name in itertools.chain(trainers, order):  # lazily: a training backend first
        if name in loaded and can(loaded[name], need, fmt):
            return name, _note(name, writer, writer is not None and writer in loaded)
    what = {"train": "trains", "features": "computes features", "export": "exports"}[need]
    installed = ", ".join(sorted(eps)) or "none"
    raise BackendNotAvailable(
        f"no installed backend {what}{f' {fmt}' if fmt else ''} (registered: {installed}); "
        f"install one with `pip install '{KNOWN_EXTRAS['torch']}'` or "
        f"`pip install '{KNOWN_EXTRAS['mindspore']}'`"
    )


def _note(name: str, writer: str | None, writer_loaded: bool) -> str:
    if writer is None:
        why = "no --backend given"
    elif writer_loaded:
        why = f"the checkpoint's writer, {writer}, cannot do this"
    else:
        why = f"the checkpoint's writer, {writer}, is not installed"
    return f"using the {name} backend ({why}; --backend chooses)"


def probe(name: str) -> tuple[BackendInfo | None, str]:
    """(info, "ok") for a working backend, (None, reason) otherwise."""
    try:
        info = get(name).info()
    except Exception as exc:
        return None, f"{type(exc).__name__}: {first_line(exc)}"
    return info, "ok"
