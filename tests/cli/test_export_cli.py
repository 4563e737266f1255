"""`vdreid export` through Typer's CliRunner on the fake backend: a verified
file or exit 2 and why, and a file at --out that only a verified export
replaces (vdreid.verified_export). The ONNX and MindIR files themselves:
tests/backends/*/test_export.py and the contract suite."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from vdreid.checkpoint import save_checkpoint
from vdreid.cli.app import app
from vdreid.presets import recipe
from vdreid.spec import init_state

from fake_backend import FakeBackend

runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    spec = recipe("tiny").model_spec(3)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return save_checkpoint(path, init_state(spec, 0), spec=spec, backend="fake")


def export(*args: str):
    return runner.invoke(app, ["export", "--backend", "fake", *args])


def test_export_writes_a_verified_file_in_the_backends_own_format(checkpoint, tmp_path):
    out = tmp_path / "m.npz"
    r = export("--checkpoint", str(checkpoint), "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["format"] == "npz" and report["backend"] == "fake"
    assert report["ok"] and report["max_abs_diff"] <= 1e-4 and report["min_cosine"] > 0.99999
    assert report["feature_dim"] == 4 * 64 and report["preset"] == "tiny"
    features = FakeBackend().run_export("npz", out, np.zeros((2, 3, 64, 32), np.float32))
    assert features.shape == (2, 256)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left


def test_verification_runs_on_rendered_people_and_noise(checkpoint, tmp_path, monkeypatch):
    """Issue 15 item 9: real-looking images as well as noise. People are
    smooth (neighbouring pixels agree), noise is not."""
    seen = []
    run = FakeBackend.run_export
    monkeypatch.setattr(
        FakeBackend, "run_export", lambda self, f, p, x: seen.append(x) or run(self, f, p, x)
    )
    r = export("--checkpoint", str(checkpoint), "--out", str(tmp_path / "m.npz"), "--batch", "5")
    assert r.exit_code == 0, r.output
    (batch,) = seen
    assert batch.shape == (5, 3, 64, 32)

    def neighbour_correlation(image):
        a, b = image[:, :, :-1].ravel(), image[:, :, 1:].ravel()
        return np.corrcoef(a, b)[0, 1]

    assert [neighbour_correlation(x) > 0.5 for x in batch] == [True] * 3 + [False] * 2
    # the first is visible, the second infrared (three equal channels before normalising)
    assert np.corrcoef(batch[1, 0].ravel(), batch[1, 2].ravel())[0, 1] > 0.9999
    assert np.corrcoef(batch[0, 0].ravel(), batch[0, 2].ravel())[0, 1] < 0.99


def test_table_shows_the_verification_numbers(checkpoint, tmp_path):
    r = export("--checkpoint", str(checkpoint), "--out", str(tmp_path / "m.npz"))
    assert r.exit_code == 0, r.output
    assert "max abs diff" in r.output and "min cosine" in r.output and "ok" in r.output


def _drifting(monkeypatch, offset: float) -> None:
    honest = FakeBackend.run_export
    monkeypatch.setattr(
        FakeBackend, "run_export", lambda self, fmt, path, x: honest(self, fmt, path, x) + offset
    )


def test_drift_past_tolerance_fails_and_writes_nothing(checkpoint, tmp_path, monkeypatch):
    """Tamper with what the runtime returns: verification must catch it."""
    _drifting(monkeypatch, 1e-2)
    out = tmp_path / "m.npz"
    r = export("--checkpoint", str(checkpoint), "--out", str(out))
    assert r.exit_code == 2, r.output
    assert "drifts from the eager fake model" in r.output and "tolerance" in r.output
    assert "nothing was written" in r.output and "Traceback" not in r.output
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_leaves_the_file_at_out_as_it_was(checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "m.npz"
    out.write_bytes(b"the user's file")
    _drifting(monkeypatch, 1e-2)
    r = export("--checkpoint", str(checkpoint), "--out", str(out))
    assert r.exit_code == 2 and "was left as it was" in r.output, r.output
    assert out.read_bytes() == b"the user's file"
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_a_verified_export_replaces_the_file_at_out(checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "m.npz"
    out.write_bytes(b"an older export")
    _drifting(monkeypatch, 1e-6)  # within the tolerance
    r = export("--checkpoint", str(checkpoint), "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    assert 5e-7 < json.loads(r.output)["max_abs_diff"] <= 1e-4
    assert out.read_bytes() != b"an older export" and np.load(out).files


def test_missing_checkpoint_is_a_user_error(tmp_path):
    r = export("--checkpoint", str(tmp_path / "nope.safetensors"), "--out", str(tmp_path / "m.npz"))
    assert r.exit_code == 2
    assert "nope.safetensors does not exist" in r.output and "Traceback" not in r.output


def test_checkpoint_without_spec_metadata_is_a_user_error(tmp_path):
    spec = recipe("tiny").model_spec(3)
    bare = save_checkpoint(tmp_path / "bare.safetensors", init_state(spec, 0))
    r = export("--checkpoint", str(bare), "--out", str(tmp_path / "m.npz"))
    assert r.exit_code == 2
    assert "no model spec in its metadata" in r.output and "save_checkpoint" in r.output


def test_unavailable_device_and_format_are_user_errors(checkpoint, tmp_path):
    out = str(tmp_path / "m.npz")
    r = export("--checkpoint", str(checkpoint), "--out", out, "--device", "cuda:9")
    assert r.exit_code == 2 and "'cuda:9' is not available" in r.output, r.output
    r = export("--checkpoint", str(checkpoint), "--out", out, "--format", "tflite")
    assert r.exit_code == 2 and "'tflite'" in r.output and "npz" in r.output, r.output
    r = export("--checkpoint", str(checkpoint), "--out", out, "--tolerance", "0")
    assert r.exit_code == 2 and "tolerance must be > 0" in r.output, r.output
    assert not (tmp_path / "m.npz").exists()


def test_export_never_replaces_its_checkpoint(checkpoint, tmp_path):  # D2
    copy = tmp_path / "c.safetensors"
    copy.write_bytes(checkpoint.read_bytes())
    r = export("--checkpoint", str(copy), "--out", str(tmp_path / "." / "c.safetensors"))
    assert r.exit_code == 2 and "is the --checkpoint this command reads" in r.output, r.output
    assert copy.read_bytes() == checkpoint.read_bytes()


@pytest.mark.parametrize(
    "where, said",
    [
        ("outdir", "outdir is a folder; pass a file path"),
        ("afile/m.npz", "afile is a file, not a folder"),
        ("/proc/vdreid/m.npz", "cannot create the folder of --out /proc/vdreid: "),
    ],
)
def test_unwritable_export_paths_are_one_line_before_any_work(  # D11, D19
    checkpoint, tmp_path, monkeypatch, where, said
):
    monkeypatch.setattr(FakeBackend, "build", lambda *a, **k: pytest.fail("built the model"))
    (tmp_path / "outdir").mkdir()
    (tmp_path / "afile").write_text("x")
    out = where if where.startswith("/") else str(tmp_path / where)
    r = runner.invoke(
        app, ["export", "--backend", "fake", "-c", str(checkpoint), "-o", out],
        env={"COLUMNS": "1000"},
    )  # fmt: skip
    assert r.exit_code == 2 and "Traceback" not in r.output and said in r.output, r.output


def test_without_backend_the_checkpoints_writer_or_an_installed_one_exports(tmp_path):
    spec = recipe("tiny").model_spec(3)
    by_torch = save_checkpoint(
        tmp_path / "t.safetensors", init_state(spec, 0), spec=spec, backend="torch"
    )
    r = runner.invoke(
        app, ["export", "--checkpoint", str(by_torch), "--out", str(tmp_path / "m.npz")]
    )
    assert r.exit_code == 0, r.output
    assert "using the fake backend (the checkpoint's writer, torch, is not installed" in r.output
    by_fake = save_checkpoint(
        tmp_path / "f.safetensors", init_state(spec, 0), spec=spec, backend="fake"
    )
    r = runner.invoke(
        app, ["export", "--checkpoint", str(by_fake), "--out", str(tmp_path / "n.npz")]
    )
    assert r.exit_code == 0 and "note:" not in r.output, r.output
