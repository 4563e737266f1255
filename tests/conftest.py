"""Shared test plumbing.

This file also puts tests/ on sys.path, so test modules can import the
helpers beside it (backend_selection, fake_backend, reference_rank). Any
test that takes a ``backend_name`` (and ``backend``) fixture runs once per
selected backend (see backend_selection.py); test ids carry the name, so
``-k torch`` selects one backend. Tests marked ``training`` run on the
backends that train, ``inference_only`` on those that do not. The ``fake_backend`` fixture makes the
in-memory numpy backend (fake_backend.py) the only registered one.
"""

from __future__ import annotations

import importlib.metadata as md
import os

# One thread per framework unless the caller says otherwise, set before torch
# or MindSpore load: the tests' tensors are small, and two spinning OpenMP
# threads on a machine whose cores other work also uses make a step 10-25x
# slower (docs/performance.md, "Threads").
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

from vdreid import registry

from backend_selection import load_backend, requested_backends, trains
from fake_backend import NAME, FakeBackend


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        names, _ = requested_backends()
        if metafunc.definition.get_closest_marker("training"):
            names = [n for n in names if trains(n)]
        elif metafunc.definition.get_closest_marker("inference_only"):
            names = [n for n in names if not trains(n)]
        metafunc.parametrize("backend_name", names, ids=names, scope="session")


def pytest_configure(config: pytest.Config) -> None:
    """``make test`` runs pytest-xdist's ``--dist loadgroup``: a test marked
    ``xdist_group`` gets its group appended to its id, which keeps a module's
    costly shared fixtures on one worker. pytest 9.2 stores ids where
    pytest-xdist 3.8 does not write, so the marks would be silently ignored
    and those fixtures run once per worker; stop instead."""
    if getattr(config.option, "dist", "no") != "loadgroup":
        return
    import xdist
    from packaging.version import Version

    new_ids = Version(pytest.__version__) >= Version("9.2")
    if new_ids and Version(xdist.__version__) < Version("3.9"):  # any 3.8.x release
        raise pytest.UsageError(
            f"--dist loadgroup ignores xdist_group with pytest {pytest.__version__} and "
            f"pytest-xdist {xdist.__version__}; install the versions in constraints.txt "
            "(make venv: pytest<9.2) or run without --dist loadgroup"
        )


@pytest.fixture(scope="session")
def backend(backend_name: str):
    return load_backend(backend_name)


@pytest.fixture
def fake_backend(monkeypatch) -> FakeBackend:
    """Register fake_backend.FakeBackend as ``fake``, the only installed backend,
    through its entry point (the registry loads it as any backend)."""
    ep = md.EntryPoint(NAME, "fake_backend:FakeBackend", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "registered", lambda: {NAME: ep})
    return registry.get(NAME)  # type: ignore[return-value]


@pytest.fixture(scope="session", autouse=True)
def user_cache_home(tmp_path_factory):
    """Image caches go to the user's cache folder ($XDG_CACHE_HOME/vdreid): a
    temporary one for the session, so tests never write into ~/.cache."""
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old
