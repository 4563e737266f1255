"""Which backends the backend-parametrised suites (contract, e2e) run on.

- ``VDREID_TEST_BACKENDS=torch,mindspore`` (what ``make test`` sets): exactly
  those; one that fails to load is a test FAILURE, not a skip.
- unset: every registered backend; one that fails to load is skipped with
  the reason.
"""

from __future__ import annotations

import os

import pytest

from vdreid import registry

ENV = "VDREID_TEST_BACKENDS"


def requested_backends() -> tuple[list[str], bool]:
    """(names, strict): strict when the environment lists them explicitly."""
    listed = os.environ.get(ENV, "").strip()
    if listed:
        return [n.strip() for n in listed.split(",") if n.strip()], True
    return sorted(registry.registered()), False


def load_backend(name: str):
    """The backend, or a failure (strict) / skip (not strict) saying why not."""
    _, strict = requested_backends()
    try:
        return registry.get(name)
    except Exception as exc:
        reason = f"backend {name!r} is not usable: {type(exc).__name__}: {exc}"
        if strict:
            pytest.fail(f"{reason} (listed in {ENV})", pytrace=False)
        pytest.skip(reason)
