"""The workflow's guards: NaN/Inf stop, run folders, resume mismatches."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vdreid.checkpoint import load_checkpoint
from vdreid.errors import CheckpointError, ConfigError, NumericalError
from vdreid.workflows.train import META_BEST, train

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


def test_validation_holds_out_the_val_ids_and_keeps_the_best(sysu_root, tmp_path):
    from vdreid.data.readers import read_dataset

    index = read_dataset("sysu", sysu_root)
    val_ids = {r.pid for r in index.val}
    assert val_ids and val_ids <= {r.pid for r in index.train}  # the reader trains on train+val
    cfg = tiny_config(sysu_root, tmp_path / "run", "torch", epochs=2, validate_every=1)
    result = train(cfg, evaluate=False, progress=False)

    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.safetensors")
    train_ids = {r.pid for r in index.train} - val_ids
    assert best.spec.num_classes == len(train_ids)  # the classifier never saw a val id
    log = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    val_maps = [
        float(line.split('"val_mAP": ')[1].split(",")[0]) for line in log if "val_mAP" in line
    ]
    assert len(val_maps) == 2 and result.validation is not None
    assert float(best.meta[META_BEST]) == pytest.approx(max(val_maps))


def test_validation_needs_a_validation_split(tmp_path):
    from vdreid.data.synth import Shape, synthesize

    root = tmp_path / "regdb"
    synthesize(
        "regdb", root, shape=Shape(ids=2, test_ids=2, per_cam=1, size=(32, 16)), progress=False
    )
    cfg = tiny_config(root, tmp_path / "run", "torch", dataset="regdb", trial=1, validate_every=1)
    with pytest.raises(ConfigError, match="no validation split"):
        train(cfg, evaluate=False, progress=False)
