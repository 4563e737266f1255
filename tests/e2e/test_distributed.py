"""Distributed data parallel through torchrun: 2 CPU processes (gloo)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from vdreid.checkpoint import load_checkpoint, model_state
from vdreid.spec import init_state

pytest.importorskip("torch")


def test_two_process_torchrun(sysu_root, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "vdreid",
        "train",
        "--backend",
        "torch",
        "--preset",
        "tiny",
        "--dataset",
        "sysu",
        "--root",
        str(sysu_root),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--seed",
        "3",
        "--set",
        "ids_per_batch=4",
        "--set",
        "instances=2",
        "--set",
        "log_interval=1",
        "--no-eval",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(log) == 6 and all(math.isfinite(r["total"]) for r in log)  # rank 0 logs only
    ckpt = load_checkpoint(out / "checkpoints" / "last.safetensors")
    assert int(ckpt.tensors["optim/step"]) == 6  # 3 global batches per epoch, split over 2 ranks
    start, trained = init_state(ckpt.spec, 3), model_state(ckpt.tensors)
    assert sum(not np.array_equal(start[k], trained[k]) for k in start) > len(start) // 2
