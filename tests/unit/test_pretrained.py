"""`--pretrained imagenet` and `--pretrained PATH`: torch hub's cache folder,
the download (from a local URL: no internet here), its hash check, the
offline error, and every branch backbone receiving exactly the file's
tensors on every backend."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from vdreid.config import resolve_train_config
from vdreid.errors import CheckpointError
from vdreid.interchange.native import torch_file_bytes
from vdreid.presets import recipe
from vdreid.spec import init_state
from vdreid.workflows import downloads, pretrained
from vdreid.workflows.downloads import HubFile, fetch, torch_hub_checkpoints
from vdreid.workflows.train import start_state

import foreign_files as ff

TORCHVISION_FILE = "resnet50-19c8e357.pth"


def _write_torchvision(path):
    """torchvision's resnet50 names and shapes, random values; torch's legacy
    format when torch is installed (as the published file), else its zip."""
    state = ff.torchvision_resnet50(seed=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        ff.save_torch(path, state, zipped=False)
    except ImportError:
        path.write_bytes(torch_file_bytes(state))
    return ff.backbone_to_canonical(state, ff.TORCH_BN, "downsample")


def test_torch_hub_folder_is_found_as_torch_finds_it(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert torch_hub_checkpoints() == tmp_path / "th" / "hub" / "checkpoints"
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert torch_hub_checkpoints() == tmp_path / "xdg" / "torch" / "hub" / "checkpoints"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert torch_hub_checkpoints() == tmp_path / "home" / ".cache" / "torch" / "hub" / "checkpoints"


def test_imagenet_weights_land_in_every_branch_backbone(backend, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    want = _write_torchvision(tmp_path / "hub" / "checkpoints" / TORCHVISION_FILE)
    cfg = resolve_train_config(None, {"preset": "official", "pretrained": "imagenet"})
    spec = recipe("official").model_spec(8)
    said: list[str] = []
    state = start_state(spec, cfg, progress=False, say=said.append)
    model = backend.build(spec, device="cpu")
    backend.set_state(model, state)
    held = backend.get_state(model)
    for branch in ("V", "I", "S"):
        for name, value in want.items():
            assert np.array_equal(held[f"{branch}.{name}"], value), (branch, name)
    fresh = init_state(spec, cfg.seed)
    untouched = [k for k in fresh if ".backbone." not in k or ".cam" in k]
    assert untouched and all(np.array_equal(held[k], fresh[k]) for k in untouched)
    assert said == [
        f"pretrained: imagenet (torchvision, converted): {3 * len(want)} tensors into the "
        f"backbones of V, I, S, {len(fresh) - 3 * len(want)} kept their initial values"
    ]


def _local_hub_file(tmp_path, content: bytes, prefix: str | None = None) -> HubFile:
    source = tmp_path / "server" / "resnet50-test.pth"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    return HubFile(source.as_uri(), sha256_prefix=prefix or digest[:8])


def test_a_missing_file_is_downloaded_checked_and_moved_into_place(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "cache"))
    content = torch_file_bytes(ff.torchvision_resnet50(seed=1))
    hub = _local_hub_file(tmp_path, content)
    path = fetch(hub, progress=False)
    assert path == tmp_path / "cache" / "hub" / "checkpoints" / "resnet50-test.pth"
    assert path.read_bytes() == content
    assert sorted(p.name for p in path.parent.iterdir()) == ["resnet50-test.pth"]
    (tmp_path / "server" / "resnet50-test.pth").unlink()  # a second call reads the cache
    assert fetch(hub, progress=False) == path


def test_imagenet_downloads_when_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "cache"))
    state = ff.torchvision_resnet50(seed=2)
    hub = _local_hub_file(tmp_path, torch_file_bytes(state))
    monkeypatch.setattr(pretrained, "IMAGENET_RESNET50", hub)
    spec = recipe("tiny").model_spec(4)
    with pytest.raises(CheckpointError, match="holds a ResNet|does not fit"):
        pretrained.apply_pretrained(spec, init_state(spec, 0), "imagenet", progress=False)
    assert (tmp_path / "cache" / "hub" / "checkpoints" / "resnet50-test.pth").is_file()


def test_a_download_with_the_wrong_hash_is_not_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "cache"))
    hub = _local_hub_file(tmp_path, b"<html>proxy login</html>", prefix="19c8e357")
    with pytest.raises(CheckpointError, match=r"has sha256 .*not 19c8e357.*nothing was kept"):
        fetch(hub, progress=False)
    assert list((tmp_path / "cache" / "hub" / "checkpoints").iterdir()) == []


def test_offline_the_error_gives_the_url_and_the_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "cache"))
    hub = HubFile("http://127.0.0.1:9/models/resnet50-19c8e357.pth", "19c8e357")
    monkeypatch.setattr(downloads, "TIMEOUT_S", 5)
    with pytest.raises(CheckpointError) as caught:
        fetch(hub, progress=False)
    message = str(caught.value)
    assert hub.url in message
    assert str(tmp_path / "cache" / "hub" / "checkpoints" / TORCHVISION_FILE) in message
    assert "--pretrained PATH" in message
    assert list((tmp_path / "cache" / "hub" / "checkpoints").iterdir()) == []


def test_a_file_that_does_not_fit_the_preset_names_the_tensors(tmp_path):
    path = tmp_path / "r50.pth"
    _write_torchvision(path)
    spec = recipe("tiny").model_spec(4)  # ResNet-18 at 1/8 width
    with pytest.raises(CheckpointError, match=r"does not fit preset 'tiny'.*unexpected"):
        pretrained.apply_pretrained(spec, init_state(spec, 0), path)
