"""The learning-rate schedule against a reimplementation of the authors' code."""

from __future__ import annotations

import bisect

import pytest

from vdreid.optim import OptimConfig, lr_at
from vdreid.presets import RECIPES, recipe


class TheirWarmupMultiStepLR:
    """The authors' WarmupMultiStepLR (linear warmup) as their mm01.py drives
    it: built with last_epoch=-1, which steps once, and stepped again at the
    top of every epoch before any batch."""

    def __init__(self, base_lr, milestones, gamma, warmup_factor, warmup_iters):
        self.base_lr, self.milestones, self.gamma = base_lr, list(milestones), gamma
        self.warmup_factor, self.warmup_iters = warmup_factor, warmup_iters
        self.last_epoch = -1
        self.step()  # torch's _LRScheduler.__init__ takes the first step

    def step(self) -> None:
        self.last_epoch += 1

    def get_lr(self) -> float:
        warmup_factor = 1.0
        if self.last_epoch < self.warmup_iters:
            alpha = self.last_epoch / self.warmup_iters
            warmup_factor = self.warmup_factor * (1 - alpha) + alpha
        return (
            self.base_lr
            * warmup_factor
            * self.gamma ** bisect.bisect_right(self.milestones, self.last_epoch)
        )


def their_rates(cfg: OptimConfig, epochs: int) -> list[float]:
    scheduler = TheirWarmupMultiStepLR(
        cfg.lr, cfg.milestones, cfg.gamma, cfg.warmup_factor, cfg.warmup_epochs
    )
    rates = []
    for _ in range(epochs):
        scheduler.step()  # mm01.py: adjust the learning rate, then train the epoch
        rates.append(scheduler.get_lr())
    return rates


@pytest.mark.parametrize("epochs", [215, 600])
def test_official_follows_the_authors_schedule_epoch_by_epoch(epochs: int) -> None:
    cfg = recipe("official").optim
    theirs = their_rates(cfg, epochs)
    for group in ("backbone", "head"):
        ours = [lr_at(cfg, e, group) for e in range(epochs)]
        assert ours == pytest.approx(theirs, rel=1e-12, abs=0)
    assert lr_at(cfg, 0, "backbone") == pytest.approx(2.834e-5, rel=1e-12)
    assert lr_at(cfg, 9, "backbone") == pytest.approx(2.6e-4, rel=1e-12)  # warm from epoch 9
    assert lr_at(cfg, 208, "backbone") == pytest.approx(2.6e-4, rel=1e-12)
    assert lr_at(cfg, 209, "backbone") == pytest.approx(2.6e-5, rel=1e-12)  # their drop


def test_the_other_recipes_start_at_index_0() -> None:
    """paper, msport and tiny: epoch e trains at index e (the schedule as written)."""
    for name in sorted(set(RECIPES) - {"official"}):
        cfg = recipe(name).optim
        assert cfg.schedule_offset == 0, name
        assert lr_at(cfg, 0, "backbone") == pytest.approx(cfg.lr * cfg.warmup_factor), name
        first_drop = cfg.milestones[0]
        assert lr_at(cfg, first_drop, "backbone") == pytest.approx(cfg.lr * cfg.gamma), name
        assert lr_at(cfg, first_drop - 1, "backbone") == pytest.approx(cfg.lr), name


def test_a_milestone_inside_the_warmup_multiplies_as_theirs_does() -> None:
    cfg = OptimConfig(lr=1.0, warmup_epochs=10, milestones=(3, 5), schedule_offset=1)
    assert [lr_at(cfg, e, "head") for e in range(12)] == pytest.approx(their_rates(cfg, 12))
