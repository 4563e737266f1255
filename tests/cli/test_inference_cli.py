"""embed / search / report / eval --picture through the CLI: bad input is one
line and exit 2, before any work. (Working runs: tests/e2e/test_inference.py.)"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vdreid.cli.app import app

runner = CliRunner()


def fails(*args, match: str):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    flat = " ".join(r.output.split())  # rich wraps long lines at 80 columns
    assert match in flat, flat
    return flat


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "person.png"
    Image.fromarray(np.zeros((64, 32, 3), np.uint8)).save(path)
    return path


def test_embed_needs_images_and_one_model_source(tmp_path, image):
    fails("embed", "-o", tmp_path / "f.npy", "-c", tmp_path / "c.safetensors",
          match="no images given; pass --images")  # fmt: skip
    fails("embed", "-o", tmp_path / "f.npy", "-i", image, match="got neither")
    fails("embed", "-o", tmp_path / "f.npy", "-i", tmp_path / "missing", "-c", "c",
          match="missing does not exist")  # fmt: skip
    fails("embed", "-o", tmp_path / "f.npy", "-i", image, "--modality", "thermal",
          match="Invalid value for '--modality'")  # fmt: skip


def test_a_model_file_without_its_backend_names_what_to_install(tmp_path, image):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx")
    flat = fails("embed", "--model", model, "-o", tmp_path / "f.npy", "-i", image,
                 match="run by the onnxruntime backend")  # fmt: skip
    assert "pip install 'vdreid[onnxruntime]'" in flat
    fails("embed", "--model", model, "--backend", "fake", "-o", tmp_path / "f.npy", "-i", image,
          match="the fake backend runs vdreid checkpoints but does not read onnx files")  # fmt: skip


def test_embed_refuses_an_output_it_cannot_write(tmp_path, image):
    fails(
        "embed",
        "-c",
        "c",
        "-o",
        tmp_path / "f.pt",
        "-i",
        image,
        match="expected a .safetensors or .npy",
    )
    (tmp_path / "dir.npy").mkdir()
    fails("embed", "-c", "c", "-o", tmp_path / "dir.npy", "-i", image, match="is a folder")


def test_outputs_never_replace_an_input(tmp_path, image):
    checkpoint = tmp_path / "c.safetensors"
    checkpoint.write_bytes(b"weights")
    fails("embed", "-c", checkpoint, "-o", checkpoint, "-i", image,
          match="is the --checkpoint this command reads")  # fmt: skip
    assert checkpoint.read_bytes() == b"weights"
    fails("search", "-g", tmp_path, "-q", image, "-c", checkpoint, "--picture", image,
          match="is the query image this command reads")  # fmt: skip
    fails("search", "-g", tmp_path, "-q", image, "-c", checkpoint, "--json-out", checkpoint,
          match="is the --checkpoint this command reads")  # fmt: skip


def test_search_and_its_flags(tmp_path, image):
    fails("search", "-g", image, "-q", image, "--dataset", "sysu",
          match="--dataset and --root go together")  # fmt: skip
    fails("search", "-g", image, "-c", "c.safetensors", match="no images given; pass --query")


def test_report_of_a_folder_that_is_not_a_run(tmp_path):
    fails("report", tmp_path, match="is not a run folder")


@pytest.mark.parametrize("command", ["search", "eval", "report"])
def test_pictures_without_matplotlib_say_which_extra(command, tmp_path, image, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    args = {
        "search": ["-g", image, "-q", image, "-c", "c", "--picture", tmp_path / "p.png"],
        "eval": ["--checkpoint", "c", "--dataset", "sysu", "--root", tmp_path,
                 "--picture", tmp_path / "p.png"],
        "report": [tmp_path],
    }[command]  # fmt: skip
    fails(command, *args, match="pip install 'vdreid[report]'")
