"""The NaN/Inf guard's message: true about the checkpoints the run holds, and
advice that follows from the losses logged before the fault."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vdreid.checkpoint import save_checkpoint
from vdreid.errors import NumericalError
from vdreid.workflows.loss_guard import LossGuard
from vdreid.workflows.run_dir import META_BEST, META_EPOCH, RunDir

WEIGHTS = {"w": np.zeros(2, np.float32)}


def _guard(tmp_path, *, best: bool = False, last: bool = False) -> LossGuard:
    run = RunDir(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    if best:
        save_checkpoint(run.best, WEIGHTS, meta={META_EPOCH: "1", META_BEST: "41.25"})
    if last:
        save_checkpoint(run.last, WEIGHTS, meta={META_EPOCH: "8", META_BEST: "41.25"})
    return LossGuard(
        run,
        lr=0.0035,
        data_check="vdreid data check --dataset sysu --root d",
        resume_command="vdreid train --out run --resume auto",
    )


def _fault(guard: LossGuard, totals: list[float]) -> str:
    for step, total in enumerate(totals):
        guard.check({"ce": 1.0, "total": total}, epoch=1, step=step)
    with pytest.raises(NumericalError) as err:
        guard.check({"ce": math.nan, "total": math.nan}, epoch=1, step=len(totals))
    return str(err.value)


def test_a_best_checkpoint_is_named_when_no_last_one_exists(tmp_path):
    msg = _fault(_guard(tmp_path, best=True), [13.8, 13.6])
    assert "ce, total became nan at epoch 2, step 3" in msg
    assert "best.safetensors (after epoch 1, validation mAP 41.2%)" in msg
    assert "No checkpoint" not in msg and "last.safetensors" not in msg


def test_both_checkpoints_are_named_with_their_epochs(tmp_path):
    msg = _fault(_guard(tmp_path, best=True, last=True), [13.8])
    assert "last.safetensors (after epoch 8" in msg and "best.safetensors (after epoch 1" in msg


def test_no_checkpoint_is_said_only_when_there_is_none(tmp_path):
    assert "No checkpoint was written yet" in _fault(_guard(tmp_path), [13.8])


def test_a_steady_loss_does_not_advise_a_lower_learning_rate(tmp_path):
    msg = _fault(_guard(tmp_path), [13.8, 13.6, 13.5])
    assert "did not rise" in msg and "13.8" in msg and "13.5" in msg
    assert "lower the learning rate" not in msg


def test_a_rising_loss_advises_half_the_learning_rate(tmp_path):
    msg = _fault(_guard(tmp_path, last=True), [13.8, 40.0, 95.0])
    assert "rose from 13.8 to 95" in msg and "lower the learning rate" in msg
    assert "`vdreid train --out run --resume auto --set optim.lr=0.00175`" in msg
    # without a last checkpoint there is nothing to resume: a fresh run's flag
    assert "e.g. --set optim.lr=0.00175" in _fault(_guard(tmp_path / "b"), [1.0, 3.0])


def test_a_loss_never_finite_points_at_the_data(tmp_path):
    msg = _fault(_guard(tmp_path), [])
    assert "not finite at the first logged step" in msg
    assert "vdreid data check --dataset sysu --root d" in msg


def test_the_fault_is_logged_in_the_metrics(tmp_path):
    guard = _guard(tmp_path)
    _fault(guard, [1.0])
    (record,) = guard.run.read_metrics()
    assert (record["epoch"], record["step"], record["error"]) == (1, 1, "non-finite ce, total")
