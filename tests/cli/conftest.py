"""The CLI tests run on the in-memory numpy backend (tests/fake_backend.py),
registered as the only backend: they test the commands' own logic (flags,
tables, JSON, exit codes, messages) and need no framework. What the real
backends do through the CLI is tested in tests/backends/."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def only_the_fake_backend(fake_backend):
    return fake_backend
