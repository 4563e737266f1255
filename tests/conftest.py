"""Shared test plumbing.

This file also puts tests/ on sys.path, so test modules can import the
helpers beside it (backend_selection, reference_rank). Any test that takes a
``backend_name`` (and ``backend``) fixture runs once per selected backend
(see backend_selection.py); test ids carry the name, so ``-k torch`` selects
one backend.
"""

from __future__ import annotations

import pytest

from backend_selection import load_backend, requested_backends


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        names, _ = requested_backends()
        metafunc.parametrize("backend_name", names, ids=names, scope="session")


@pytest.fixture(scope="session")
def backend(backend_name: str):
    return load_backend(backend_name)
