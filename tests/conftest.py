"""Shared test plumbing.

This file also puts tests/ on sys.path, so test modules can import the
helpers beside it (backend_selection, fake_backend, reference_rank). Any
test that takes a ``backend_name`` (and ``backend``) fixture runs once per
selected backend (see backend_selection.py); test ids carry the name, so
``-k torch`` selects one backend. The ``fake_backend`` fixture makes the
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

from backend_selection import load_backend, requested_backends
from fake_backend import NAME, FakeBackend


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        names, _ = requested_backends()
        metafunc.parametrize("backend_name", names, ids=names, scope="session")


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
