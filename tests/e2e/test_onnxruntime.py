"""The ONNX Runtime backend where neither torch nor MindSpore can be imported:
`vdreid eval --backend onnxruntime` gives torch's metrics on the same
checkpoint, with features within 1e-4, and an exported .onnx file runs from
its metadata alone."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from vdreid import registry
from vdreid.checkpoint import load_checkpoint, model_state, save_checkpoint
from vdreid.cli.app import app
from vdreid.data.synth.person import people
from vdreid.presets import recipe
from vdreid.workflows.parity import perturbed_state

from without_frameworks import run_without_frameworks

FEATURE_ATOL = 1e-4

#: in the child, after the CLI's eval and export: features of the same
#: images from the checkpoint and from the exported file
CHILD = """
import sys
import numpy as np
from vdreid import registry
from vdreid.checkpoint import load_checkpoint, model_state

checkpoint, out = sys.argv[1:3]
images = np.load(out + "/images.npy")
ort = registry.get("onnxruntime")
ckpt = load_checkpoint(checkpoint)
model = ort.build(ckpt.spec)
ort.set_state(model, model_state(ckpt.tensors))
np.save(out + "/features.npy", ort.features(model, images))
loaded, spec = ort.load_model(out + "/m.onnx")
assert spec == ckpt.spec
np.save(out + "/file_features.npy", ort.features(loaded, images))
assert not {"torch", "mindspore"} & {m.split(".")[0] for m in sys.modules}, sorted(sys.modules)
print("ran without frameworks")
"""


@pytest.fixture
def checkpoint(tmp_path):
    spec = recipe("tiny").model_spec(12)
    return save_checkpoint(
        tmp_path / "tiny.safetensors", perturbed_state(spec), spec=spec, backend="torch"
    )


def _torch_eval(checkpoint, root, out):
    r = CliRunner().invoke(
        app,
        ["eval", "--backend", "torch", "--checkpoint", str(checkpoint), "--dataset", "sysu"]
        + ["--root", str(root), "--trials", "2", "--json-out", str(out), "--quiet"],
    )
    assert r.exit_code == 0, r.output
    return json.loads(out.read_text())


def test_eval_on_onnxruntime_without_torch_or_mindspore(checkpoint, sysu_root, tmp_path):
    if "torch" not in registry.registered():
        pytest.skip("the torch backend is not installed: nothing to compare with")
    images = people(6, (64, 32), seed=1)
    np.save(tmp_path / "images.npy", images)
    c = str(checkpoint)
    for args in (
        ["eval", "--backend", "onnxruntime", "--checkpoint", c, "--dataset", "sysu"]
        + ["--root", str(sysu_root), "--trials", "2", "--json-out", str(tmp_path / "eval.json")]
        + ["--quiet"],
        [
            "export",
            "--backend",
            "onnxruntime",
            "--checkpoint",
            c,
            "--out",
            str(tmp_path / "m.onnx"),
        ],
        ["-c", CHILD, c, str(tmp_path)],
    ):
        command = args if args[0] == "-c" else ["-m", "vdreid", *args]
        done = run_without_frameworks(command, tmp_path)
        assert done.returncode == 0, (args[0], done.stdout[-2000:], done.stderr[-3000:])
    assert "ran without frameworks" in done.stdout

    theirs = _torch_eval(checkpoint, sysu_root, tmp_path / "torch.json")
    ours = json.loads((tmp_path / "eval.json").read_text())
    assert ours["summary"].keys() == theirs["summary"].keys()
    for metric, value in theirs["summary"].items():
        assert ours["summary"][metric]["mean"] == pytest.approx(value["mean"], abs=1e-9), metric

    torch_backend = registry.get("torch")
    ckpt = load_checkpoint(checkpoint)
    model = torch_backend.build(ckpt.spec, device="cpu")
    torch_backend.set_state(model, model_state(ckpt.tensors))
    want = torch_backend.features(model, images)
    for name in ("features.npy", "file_features.npy"):
        got = np.load(tmp_path / name)
        assert got.shape == want.shape and np.max(np.abs(got - want)) <= FEATURE_ATOL, name
    assert sys.modules.get("torch") is not None  # the comparison ran torch in this process


def test_train_asks_for_a_training_backend_before_writing(sysu_root, tmp_path):
    if "onnxruntime" not in registry.registered():
        pytest.skip("the onnxruntime backend is not installed")
    out = tmp_path / "run"
    r = CliRunner().invoke(
        app,
        ["train", "--backend", "onnxruntime", "--preset", "tiny", "--dataset", "sysu"]
        + ["--root", str(sysu_root), "--out", str(out), "--quiet"],
    )
    assert r.exit_code == 2, r.output
    assert "onnxruntime backend does not train" in r.output
    assert "use --backend torch or mindspore" in " ".join(r.output.split())
    assert not out.exists()
