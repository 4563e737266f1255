"""Which backends the backend-parametrised suites (contract, e2e) run on.

- ``VDREID_TEST_BACKENDS=torch,mindspore`` (what ``make test`` sets): exactly
  those; one that fails to load is a test FAILURE, not a skip.
- unset: every registered backend; one that fails to load is skipped with
  the reason.

A test marked ``training`` is generated only for the backends that declare
they train (``Backend.trains``); an inference-only backend (onnxruntime)
runs every other case, and its ids show which ran.
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


def trains(name: str) -> bool:
    """Whether backend ``name`` declares it trains; True when it does not load,
    so that its training cases are generated and fail (strict) or skip there."""
    ep = registry.registered().get(name)
    try:
        return bool(ep.load().trains) if ep is not None else True
    except Exception:
        return True


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
