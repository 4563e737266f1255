"""The torch exporter: ONNX through `vdreid export` (a file onnxruntime runs,
verification that catches drift and tampering, torch's device and format
errors), the fallback exporter, and unknown formats. The export command's
own errors (missing checkpoint, no spec) are tested on the fake backend in
tests/cli/test_export_cli.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from vdreid.checkpoint import save_checkpoint  # noqa: E402
from vdreid.cli.app import app  # noqa: E402
from vdreid.errors import ExportError  # noqa: E402
from vdreid.presets import recipe  # noqa: E402
from vdreid.spec import init_state  # noqa: E402
from vdreid.verified_export import example_batch  # noqa: E402
from vdreid_torch import names  # noqa: E402
from vdreid_torch.backend import TorchBackend  # noqa: E402
from vdreid_torch.build import build_model  # noqa: E402

#: one pytest-xdist worker runs this module: its shared fixtures are costly
pytestmark = pytest.mark.xdist_group("torch-export")

runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    spec = recipe("tiny").model_spec(3)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return save_checkpoint(path, init_state(spec, 0), spec=spec, backend="torch")


def export(*args: str):
    return runner.invoke(app, ["export", "--backend", "torch", "--device", "cpu", *args])


def test_export_writes_a_verified_onnx_file(checkpoint, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "m.onnx"
    r = export("--checkpoint", str(checkpoint), "--format", "onnx", "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["ok"] and report["max_abs_diff"] <= 1e-4 and report["min_cosine"] > 0.99999
    assert report["feature_dim"] == 4 * 64 and report["preset"] == "tiny"
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    images = np.zeros((2, 3, 64, 32), np.float32)
    (features,) = session.run(None, {"images": images})
    assert features.shape == (2, 256)


def test_table_shows_the_verification_numbers(checkpoint, tmp_path):
    r = export("--checkpoint", str(checkpoint), "--out", str(tmp_path / "m.onnx"))
    assert r.exit_code == 0, r.output
    assert "max abs diff" in r.output and "min cosine" in r.output and "ok" in r.output


def test_drift_past_tolerance_fails_and_writes_nothing(checkpoint, tmp_path, monkeypatch):
    """Tamper with what the runtime returns: verification must catch it."""
    import vdreid_torch.export as torch_export

    honest = torch_export.run_onnx
    monkeypatch.setattr(torch_export, "run_onnx", lambda path, images: honest(path, images) + 1e-2)
    out = tmp_path / "m.onnx"
    r = export("--checkpoint", str(checkpoint), "--out", str(out))
    assert r.exit_code == 2, r.output
    assert "drifts from the eager torch model" in r.output and "tolerance" in r.output
    assert "Traceback" not in r.output
    assert not out.exists()


def test_tampered_weights_in_the_file_are_caught(checkpoint, tmp_path, monkeypatch):
    """Change a weight inside the written ONNX file before onnxruntime reads it."""
    import onnx
    from onnx import numpy_helper

    import vdreid_torch.export as torch_export

    honest = torch_export.run_onnx

    def tampered(path, images):
        model = onnx.load(str(path))
        big = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
        values = numpy_helper.to_array(big) * np.float32(1.5)
        big.CopyFrom(numpy_helper.from_array(values, big.name))
        onnx.save(model, str(path))
        return honest(path, images)

    monkeypatch.setattr(torch_export, "run_onnx", tampered)
    r = export("--checkpoint", str(checkpoint), "--out", str(tmp_path / "m.onnx"))
    assert r.exit_code == 2 and "drifts" in r.output, r.output


def test_unavailable_device_and_format_are_user_errors(checkpoint, tmp_path):
    out = str(tmp_path / "m.onnx")
    r = runner.invoke(
        app, ["export", "--checkpoint", str(checkpoint), "--out", out, "--device", "cuda:9"]
    )
    assert r.exit_code == 2 and "'cuda:9' is not available" in r.output, r.output
    r = export("--checkpoint", str(checkpoint), "--out", out, "--format", "tflite")
    assert r.exit_code == 2 and "'tflite'" in r.output and "onnx" in r.output, r.output


@pytest.fixture(scope="module")
def spec():
    return recipe("tiny").model_spec(3)


@pytest.mark.slow
@pytest.mark.parametrize("exporter", ["dynamo"])
def test_the_other_exporter_also_verifies(spec, tmp_path, exporter):
    """The default (torchscript) runs in the contract suite; this is the fallback."""
    model = build_model(spec)
    names.set_state(model, spec, init_state(spec, 0))
    path = tmp_path / "m.onnx"
    report = TorchBackend(exporter=exporter).export(
        model, "onnx", path, example=example_batch(spec, 3), tolerance=1e-4
    )
    assert report.ok and path.is_file(), report


def test_export_refuses_unknown_formats(spec, tmp_path):
    with pytest.raises(ExportError, match=r"exports onnx; got format 'tflite'"):
        TorchBackend().export(
            build_model(spec), "tflite", str(tmp_path / "m"), example=example_batch(spec, 2)
        )
