"""The workflow's guards: NaN/Inf stop, run folders, resume mismatches."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vdreid.checkpoint import load_checkpoint
from vdreid.errors import CheckpointError, ConfigError, NumericalError
from vdreid.workflows.train import train

from e2e_runs import tiny_config

pytest.importorskip("torch")


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(sysu_root, tmp_path, monkeypatch):
    from vdreid_torch.train import TorchTrainer

    real = TorchTrainer.metrics
    calls = {"n": 0}

    def poisoned(self):
        calls["n"] += 1
        m = real(self)
        if calls["n"] == 5:  # epoch 2, step 2
            m["vcd"] = math.nan
        return m

    monkeypatch.setattr(TorchTrainer, "metrics", poisoned)
    cfg = tiny_config(sysu_root, tmp_path / "run", "torch", epochs=3)
    with pytest.raises(NumericalError) as err:
        train(cfg, progress=False)
    msg = str(err.value)
    assert "vcd" in msg and "epoch 2, step 2" in msg and "last.safetensors" in msg
    kept = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert kept.meta["epoch"] == "1"
    assert all(np.all(np.isfinite(v)) for v in kept.tensors.values())
    assert "non-finite vcd" in (tmp_path / "run" / "metrics.jsonl").read_text()


def test_a_fresh_run_refuses_an_existing_run_folder(sysu_root, tmp_path):
    cfg = tiny_config(sysu_root, tmp_path / "run", "torch")
    train(cfg, evaluate=False, progress=False)
    with pytest.raises(ConfigError, match="--resume auto"):
        train(cfg, evaluate=False, progress=False)


def test_resume_refuses_another_model(sysu_root, tmp_path):
    cfg = tiny_config(sysu_root, tmp_path / "run", "torch")
    train(cfg, evaluate=False, progress=False)
    other = tiny_config(sysu_root, tmp_path / "other", "torch", preset="msport")
    with pytest.raises(CheckpointError, match="different model spec"):
        train(
            other,
            resume=str(tmp_path / "run" / "checkpoints" / "last.safetensors"),
            evaluate=False,
            progress=False,
        )
