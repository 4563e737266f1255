"""Backend registry: lazy discovery and actionable errors."""

import importlib.metadata as md
import sys
import types

import pytest

from vdreid import registry
from vdreid.backend import BackendInfo
from vdreid.errors import BackendNotAvailable

from fake_backend import FakeBackend


def test_first_party_backends_are_registered():
    assert {"torch", "mindspore"} <= set(registry.registered())


def test_unknown_backend_names_installed_ones(monkeypatch):
    monkeypatch.setattr(
        registry,
        "registered",
        lambda: {"torch": md.EntryPoint("torch", "x:y", registry.ENTRY_POINT_GROUP)},
    )
    with pytest.raises(BackendNotAvailable) as err:
        registry.get("jax")
    msg = str(err.value)
    assert "'jax'" in msg and "registered: torch" in msg


def test_missing_first_party_backend_names_the_extra(monkeypatch):
    monkeypatch.setattr(registry, "registered", lambda: {})
    with pytest.raises(BackendNotAvailable, match=r"pip install 'vdreid\[mindspore\]'"):
        registry.get("mindspore")


def test_broken_entry_point_reports_import_error(monkeypatch):
    broken = md.EntryPoint("torch", "vdreid_no_such_module:Backend", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "registered", lambda: {"torch": broken})
    with pytest.raises(BackendNotAvailable) as err:
        registry.get("torch")
    msg = str(err.value)
    assert "fails to import" in msg and "ModuleNotFoundError" in msg and "vdreid[torch]" in msg
    info, status = registry.probe("torch")
    assert info is None and status.startswith("BackendNotAvailable")


def test_third_party_backend_is_loaded_from_its_entry_point(monkeypatch):
    """A backend from another distribution needs only a Backend subclass and an entry point."""

    class ThirdPartyBackend(FakeBackend):
        def info(self):
            return BackendInfo("fake", "numpy", "1", ("cpu",))

    module = types.ModuleType("vdreid_fake_backend")
    module.FakeBackend = ThirdPartyBackend
    monkeypatch.setitem(sys.modules, "vdreid_fake_backend", module)
    ep = md.EntryPoint("fake", "vdreid_fake_backend:FakeBackend", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "registered", lambda: {"fake": ep})
    info, status = registry.probe("fake")
    assert status == "ok" and info == BackendInfo("fake", "numpy", "1", ("cpu",))


def test_an_entry_point_that_is_not_a_backend_is_refused(monkeypatch):
    module = types.ModuleType("vdreid_old_backend")
    module.Backend = type("Backend", (), {"name": "old"})  # the protocol of older releases
    monkeypatch.setitem(sys.modules, "vdreid_old_backend", module)
    ep = md.EntryPoint("old", "vdreid_old_backend:Backend", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "registered", lambda: {"old": ep})
    with pytest.raises(BackendNotAvailable, match=r"not a vdreid\.backend\.Backend subclass"):
        registry.get("old")


def test_epoch_seeds_depend_on_seed_epoch_and_rank_only():
    from vdreid.optim import epoch_seed

    seeds = {epoch_seed(s, e, r) for s in (0, 1) for e in (0, 1) for r in (0, 1)}
    assert len(seeds) == 8 and all(0 <= x < 2**63 for x in seeds)
    assert epoch_seed(3, 4, 1) == epoch_seed(3, 4, 1)  # a resumed run draws the same
