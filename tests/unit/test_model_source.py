"""The model-source seam: --checkpoint or --model, and which backend runs a model file.

A backend that reads exported files (the ONNX Runtime one) declares
``model_formats`` and ``load_model``; a stand-in registered here shows the
seam without a framework, and the errors say what to install when no
such backend is. Checkpoints and a real exported ONNX file on the real
backends: tests/e2e/test_inference.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from vdreid import registry
from vdreid.errors import BackendNotAvailable, ConfigError, NotSupported
from vdreid.presets import recipe
from vdreid.workflows import model_source
from vdreid.workflows.model_source import open_model

from fake_backend import FakeBackend


class OnnxStandIn(FakeBackend):
    """Reads '.onnx' files: the handle is the file's text, the spec the tiny preset's."""

    name = "onnx-stand-in"
    model_formats = ("onnx",)

    def load_model(self, path, *, device=None):
        with open(path, encoding="utf-8") as f:
            return f.read(), recipe("tiny").model_spec(2)

    def features(self, model, images, *, batch_size=64):
        return np.full((len(images), 256), float(len(model)), np.float32)


class CheckpointsOnly(FakeBackend):
    """The base class's model_formats (none) and load_model (not supported)."""

    name = "torch-like"


@pytest.fixture
def fake_registry(monkeypatch):
    backends = {"onnxruntime": OnnxStandIn, "torch-like": CheckpointsOnly}
    monkeypatch.setattr(registry, "registered", lambda: dict.fromkeys(backends))
    monkeypatch.setattr(registry, "get", lambda name: backends[name]())


def test_a_model_file_runs_on_the_backend_that_reads_its_format(fake_registry, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_text("abc")
    loaded = open_model(model_file=path)
    assert loaded.backend.name == "onnx-stand-in" and loaded.kind == "onnx"
    assert loaded.model == "abc" and loaded.input_size == (64, 32)
    assert loaded.describe() == f"onnx {path} on onnx-stand-in"
    f = loaded.features(np.zeros((2, 64, 32, 3), np.uint8), flip=True)
    assert f.shape == (2, 256) and f.dtype == np.float32 and (f == 3.0).all()


def test_a_backend_that_runs_checkpoints_only_is_told_apart(fake_registry, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_text("abc")
    with pytest.raises(BackendNotAvailable, match="torch-like backend runs vdreid checkpoints"):
        open_model(model_file=path, backend="torch-like")
    with pytest.raises(NotSupported, match="torch-like backend does not support running"):
        CheckpointsOnly().load_model(path)


def test_without_a_reader_the_error_names_the_backend_and_the_extra(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "registered", lambda: {"torch": None, "mindspore": None})
    with pytest.raises(BackendNotAvailable) as info:
        open_model(model_file=tmp_path / "m.onnx")
    message = str(info.value)
    assert "onnxruntime" in message and "pip install 'vdreid[onnxruntime]'" in message
    assert "registered backends: mindspore, torch" in message and "--checkpoint" in message
    with pytest.raises(BackendNotAvailable, match="mindir model files are run by a backend"):
        open_model(model_file=tmp_path / "m.mindir")


def test_exactly_one_source_and_a_known_suffix(tmp_path):
    with pytest.raises(ConfigError, match="got neither"):
        open_model()
    with pytest.raises(ConfigError, match="got both"):
        open_model(checkpoint=tmp_path / "c.safetensors", model_file=tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="suffix .pt is not a model file format"):
        open_model(model_file=tmp_path / "m.pt")
    assert model_source.model_file_format(tmp_path / "M.ONNX") == "onnx"


def test_a_missing_model_file_is_named(fake_registry, tmp_path):
    with pytest.raises(ConfigError, match="m.onnx does not exist"):
        open_model(model_file=tmp_path / "m.onnx")
