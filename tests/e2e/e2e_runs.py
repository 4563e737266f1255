"""Run configurations for the end-to-end tests (imported by the test modules)."""

from __future__ import annotations

from pathlib import Path

from vdreid.config import TrainConfig, resolve_train_config


def tiny_config(root: Path, out: Path, backend: str, **fields) -> TrainConfig:
    """The tiny recipe on the small tree: 3 steps of 4 ids x (2 + 2) per epoch."""
    base = {
        "backend": backend,
        "preset": "tiny",
        "input_size": None,  # the preset's 64x32, 4x cheaper than the recipe's 128x64
        "dataset": "sysu",
        "root": str(root),
        "out": str(out),
        "epochs": 1,
        "ids_per_batch": 4,
        "instances": 2,
        "log_interval": 1,
        "checkpoint_every": 1,
        "seed": 3,
        "protocol": {"trials": 2},
    }
    if fields.get("dataset") == "regdb":  # one fixed split per trial: no trials to choose
        del base["protocol"]
    return resolve_train_config(None, {**base, **fields})
