"""Training end to end on every backend: train, checkpoint, evaluate, resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from vdreid.checkpoint import load_checkpoint, model_state
from vdreid.cli.app import app
from vdreid.errors import CheckpointError
from vdreid.spec import init_state
from vdreid.workflows.train import train

from e2e_runs import tiny_config

#: every test here trains: generated only for the backends that do (Backend.trains);
#: one worker runs the module under pytest-xdist (the two-epoch run is shared)
pytestmark = [pytest.mark.training, pytest.mark.xdist_group("e2e-train")]

TERMS = ("ce", "rank", "cml", "vsd", "vcd", "total")


@pytest.fixture(scope="session")
def two_epochs(backend_name, sysu_root, tmp_path_factory):
    """Two deterministic epochs and the evaluation, once per backend: the run
    the first test checks, the uninterrupted run the resume test compares
    with, and the checkpoint the eval command reads (on MindSpore each run
    compiles its step, about a minute on a 2-core CPU)."""
    out = tmp_path_factory.mktemp(f"two-epochs-{backend_name}") / "run"
    cfg = tiny_config(sysu_root, out, backend_name, epochs=2, deterministic=True)
    return cfg, train(cfg, progress=False)


def test_train_checkpoint_and_evaluate(two_epochs, backend_name):
    cfg, result = two_epochs
    run = result.run_dir
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(log) == 2 * 3  # 3 steps per epoch, logged every step
    assert all(math.isfinite(r[t]) for r in log for t in TERMS)
    assert [r["global_step"] for r in log] == list(range(1, 7))
    assert all(r["processes"] == 1 for r in log)

    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.backend == backend_name and ckpt.meta["epoch"] == "2"
    assert int(ckpt.tensors["optim/step"]) == 6
    start = init_state(ckpt.spec, cfg.seed)
    trained = model_state(ckpt.tensors)
    moved = [k for k in start if not np.array_equal(start[k], trained[k])]
    assert len(moved) > len(start) // 2  # training changed most tensors

    saved = json.loads((run / "eval.json").read_text())
    assert saved["num_trials"] == 2 and set(saved["summary"]) == {
        "R1",
        "R5",
        "R10",
        "R20",
        "mAP",
        "mINP",
    }
    assert saved["summary"] == result.evaluation.result.summary()
    for name in ("config.toml", "spec.json", "loss.json"):
        assert (run / name).is_file()


def test_resume_is_bit_identical(two_epochs, backend_name, sysu_root, tmp_path):
    """Two epochs straight == one epoch, stop, resume for the second (CPU, deterministic)."""
    straight, result = two_epochs
    first = tiny_config(sysu_root, tmp_path / "resumed", backend_name, epochs=1, deterministic=True)
    assert first.model_copy(update={"epochs": 2, "out": straight.out}) == straight
    train(first, evaluate=False, progress=False)
    second = first.model_copy(update={"epochs": 2})
    train(second, resume="auto", evaluate=False, progress=False)

    a = load_checkpoint(result.run_dir / "checkpoints" / "last.safetensors").tensors
    b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.safetensors").tensors
    assert a.keys() == b.keys()
    differing = [k for k in a if not np.array_equal(a[k], b[k])]
    assert differing == []


def test_eval_command_on_the_checkpoint(two_epochs, backend_name, sysu_root, tmp_path):
    _, result = two_epochs
    out = tmp_path / "eval.json"
    r = CliRunner().invoke(
        app,
        [
            "eval",
            "--backend",
            backend_name,
            "--checkpoint",
            str(result.checkpoint),
            "--dataset",
            "sysu",
            "--root",
            str(sysu_root),
            "--trials",
            "3",
            "--json-out",
            str(out),
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "R1" in r.output and "mAP" in r.output
    assert json.loads(out.read_text())["num_trials"] == 3


@pytest.mark.parametrize("problem", ["missing", "no-spec"])
def test_eval_refuses_a_bad_checkpoint(problem, sysu_root, tmp_path):
    path = tmp_path / "model.safetensors"
    if problem == "no-spec":
        from vdreid.checkpoint import save_checkpoint

        save_checkpoint(path, {"w": np.zeros(2, np.float32)})
    r = CliRunner().invoke(
        app,
        [
            "eval",
            "--checkpoint",
            str(path),
            "--dataset",
            "sysu",
            "--root",
            str(sysu_root),
            "--quiet",
        ],
    )
    assert r.exit_code == 2
    assert str(path) in r.output and ("does not exist" in r.output or "no model spec" in r.output)


def test_a_pretrained_file_it_cannot_use_stops_it_before_writing(backend_name, sysu_root, tmp_path):
    cfg = tiny_config(
        sysu_root, tmp_path / "run", backend_name, pretrained=str(tmp_path / "r50.pth")
    )
    with pytest.raises(CheckpointError, match=r"r50\.pth does not exist"):
        train(cfg, evaluate=False, progress=False)
    assert not (tmp_path / "run").exists()


def test_train_json_prints_only_json_on_stdout(sysu_root, tmp_path):
    pytest.importorskip("torch")
    args = ["train", "--backend", "torch", "--preset", "tiny", "--dataset", "sysu"]
    args += ["--root", str(sysu_root), "--out", str(tmp_path / "run"), "--epochs", "1"]
    args += ["--set", "input_size=null", "--set", "ids_per_batch=4", "--set", "instances=2"]
    args += ["--set", "protocol.trials=2", "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    printed = json.loads(r.stdout)
    assert printed["run_dir"] == str(tmp_path / "run") and printed["epochs"] == 1
    assert printed["evaluation"]["num_trials"] == 2
