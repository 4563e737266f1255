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


class _Trains(FakeBackend):
    trains = True

    def new_trainer(self, model, loss_spec, optim, options):
        return object()


class _Exports(FakeBackend):
    export_formats = ("onnx",)


class _TrainsOnly(_Trains):
    export_formats = ()


def _installed(monkeypatch, backends: dict, broken: tuple[str, ...] = ()):
    """The registry faked to hold ``backends`` (name -> class) and ``broken`` names."""
    names = [*backends, *broken]
    monkeypatch.setattr(
        registry,
        "registered",
        lambda: {n: md.EntryPoint(n, "x:y", registry.ENTRY_POINT_GROUP) for n in names},
    )
    loads = []

    def get(name):
        loads.append(name)
        if name not in backends:
            raise BackendNotAvailable(f"{name} fails to import")
        b = backends[name]()
        b.name = name
        return b

    monkeypatch.setattr(registry, "get", get)
    return loads


def test_the_checkpoints_writer_is_chosen_when_installed(monkeypatch):
    loads = _installed(monkeypatch, {"torch": _Trains, "mindspore": _Trains})
    assert registry.choose("features", writer="mindspore") == ("mindspore", "")
    assert loads == ["mindspore"]  # nothing else was imported


def test_a_mindspore_only_install_needs_no_backend_flag(monkeypatch):
    _installed(monkeypatch, {"mindspore": _Trains})
    name, note = registry.choose("features", writer="torch")
    assert name == "mindspore" and "writer, torch, is not installed" in note
    assert registry.choose("train") == ("mindspore", registry._note("mindspore", None, False))


def test_a_training_backend_comes_before_an_inference_only_one(monkeypatch):
    _installed(monkeypatch, {"onnxruntime": FakeBackend, "mindspore": _Trains}, broken=("torch",))
    assert registry.choose("features")[0] == "mindspore"
    _installed(monkeypatch, {"onnxruntime": FakeBackend}, broken=("torch",))
    assert registry.choose("features")[0] == "onnxruntime"  # what it can do
    with pytest.raises(BackendNotAvailable, match=r"no installed backend trains.*vdreid\[torch\]"):
        registry.choose("train")


def test_export_needs_a_backend_that_writes_the_format(monkeypatch):
    _installed(monkeypatch, {"torch": _Exports, "mindspore": _TrainsOnly})
    name, note = registry.choose("export", writer="mindspore")
    assert name == "torch" and "writer, mindspore, cannot do this" in note
    with pytest.raises(BackendNotAvailable, match="no installed backend exports mindir"):
        registry.choose("export", fmt="mindir")


def test_the_real_mindspore_backend_is_chosen_alone(monkeypatch):
    pytest.importorskip("mindspore")
    real = registry.registered()
    monkeypatch.setattr(registry, "registered", lambda: {"mindspore": real["mindspore"]})
    assert registry.choose("train")[0] == "mindspore"
    assert registry.choose("export", writer="torch")[0] == "mindspore"
