"""The trainer frame (vdreid.trainer.Trainer) on numpy: what every backend's
trainer inherits, tested once without a framework. The hooks below keep the
model and Adam's moments as arrays and add known numbers to the loss sums."""

from __future__ import annotations

import numpy as np
import pytest

from vdreid.checkpoint import check_state
from vdreid.errors import CheckpointError, DataError, SpecError
from vdreid.optim import GROUPS, epoch_seed, lr_at
from vdreid.presets import recipe
from vdreid.spec import init_state, param_table
from vdreid.trainer import Trainer, TrainerOptions


class NumpyTrainer(Trainer):
    """Each step adds (batch size, 1) to the sums of ``ce`` and ``total``
    and 1 to every first moment; ``skip`` steps report themselves skipped."""

    def __init__(self, spec, options=TrainerOptions(), *, world=1, skip=()):
        super().__init__(spec, recipe("tiny").loss, recipe("tiny").optim, options)
        self.world = world
        self.skip = set(skip)
        self.model = init_state(spec, 0)
        self.m = {n: np.zeros(self.shapes[n], np.float32) for n in self.names}
        self.v = {n: np.zeros(self.shapes[n], np.float32) for n in self.names}
        self.sums: dict[str, float] = {}
        self.applied: list[dict] = []
        self.seeds: list[int] = []
        self.calls = 0
        self.set_epoch(0)

    def _apply_learning_rates(self, rates):
        self.applied.append(dict(rates))

    def _reseed(self, seed):
        self.seeds.append(seed)

    def _step(self, images, labels, modality):
        self.calls += 1
        self.sums["ce"] = self.sums.get("ce", 0.0) + len(images)
        self.sums["total"] = self.sums.get("total", 0.0) + 1.0
        for n in self.names:
            self.m[n] += 1
        return self.calls not in self.skip

    def _take_sums(self):
        out, self.sums = self.sums, {}
        return out

    def _sum_over_ranks(self, values):
        return values * self.world + 1.0  # the other ranks saw one more each

    def _model_state(self):
        return {k: v.copy() for k, v in self.model.items()}

    def _load_model_state(self, state):
        check_state(param_table(self.spec), state)
        self.model = dict(state)

    def _moments(self):
        return {n: (self.m[n].copy(), self.v[n].copy()) for n in self.names}

    def _load_moments(self, moments):
        for n in self.names:
            m, v = moments[n] if moments is not None else (0.0, 0.0)
            self.m[n] = np.full(self.shapes[n], m, np.float32) if np.ndim(m) == 0 else m
            self.v[n] = np.full(self.shapes[n], v, np.float32) if np.ndim(v) == 0 else v


@pytest.fixture(scope="module")
def tiny():
    return recipe("tiny").model_spec(4)


def batch(n=4, labels=None):
    return {
        "images": np.zeros((n, 8, 4, 3), np.uint8),
        "labels": np.zeros(n, np.int64) if labels is None else labels,
        "modality": np.zeros(n, np.int64),
    }


def test_the_loss_is_checked_against_the_models_outputs(tiny):
    two_paths = tiny.model_copy(
        update={
            "paths": tiny.paths[:2],
            "test_feature": tiny.test_feature.model_copy(update={"paths": ("I", "V")}),
        }
    )
    with pytest.raises(SpecError, match=r"read the model outputs \['Sg\.feat', 'Sg\.logits'"):
        NumpyTrainer(two_paths)


def test_trainable_tensors_by_group_backbone_first(tiny):
    t = NumpyTrainer(tiny)
    table = param_table(tiny)
    assert set(t.names) == {n for n, i in table.items() if i.trainable and not i.running}
    assert "V.neck.bn.shift" not in t.names and "V.neck.bn.mean" not in t.names  # frozen, running
    nb = len(t.groups["backbone"])
    assert all(".backbone." in n for n in t.names[:nb])
    assert not any(".backbone." in n for n in t.names[nb:])
    assert t.names == t.groups["backbone"] + t.groups["head"]


def test_set_epoch_applies_the_schedule_and_reseeds_from_seed_epoch_and_rank(tiny):
    t = NumpyTrainer(tiny, TrainerOptions(seed=5))
    t.rank = 1
    t.set_epoch(3)
    optim = recipe("tiny").optim
    assert t.applied[-1] == {g: lr_at(optim, 3, g) for g in GROUPS} == t.learning_rates()
    assert t.seeds == [epoch_seed(5, 0, 0), epoch_seed(5, 3, 1)]
    unseeded = NumpyTrainer(tiny)
    unseeded.set_epoch(1)
    assert unseeded.seeds == []


def test_metrics_are_means_since_the_last_call_and_over_ranks(tiny):
    t = NumpyTrainer(tiny)
    assert t.metrics() == {}
    t.step(batch(4))
    t.step(batch(6))
    assert t.metrics() == {"ce": 5.0, "total": 1.0}
    assert t.metrics() == {}
    ranks = NumpyTrainer(tiny, world=2)
    ranks.step(batch(4))
    assert ranks.metrics() == {"ce": (4 * 2 + 1) / 2, "total": (1 * 2 + 1) / 2}


def test_a_skipped_step_is_averaged_but_not_counted_for_adam(tiny):
    t = NumpyTrainer(tiny, skip={2})
    for _ in range(3):
        t.step(batch())
    assert t.steps == 2 and t.metrics()["total"] == 1.0


def test_a_bad_batch_stops_before_the_backend(tiny):
    t = NumpyTrainer(tiny)
    with pytest.raises(DataError, match=r"labels must lie in 0\.\.3"):
        t.step(batch(labels=np.array([0, 1, 2, 9])))
    assert t.calls == 0 and t.steps == 0


def test_state_holds_the_shared_optimiser_layout_and_loads_back(tiny):
    t = NumpyTrainer(tiny)
    t.step(batch())
    state = t.state()
    table = param_table(tiny)
    assert {k for k in state if "/" not in k} == set(table)
    assert {k for k in state if k.startswith("optim/m/")} == {f"optim/m/{n}" for n in t.names}
    assert {k for k in state if k.startswith("optim/v/")} == {f"optim/v/{n}" for n in t.names}
    assert state["optim/step"].dtype == np.int64 and state["optim/step"].shape == ()
    assert int(state["optim/step"]) == 1
    other = NumpyTrainer(tiny)
    other.load(state)
    again = other.state()
    assert other.steps == 1 and all(np.array_equal(again[k], state[k]) for k in state)


def test_a_model_only_state_starts_a_fresh_optimiser_and_a_damaged_one_is_refused(tiny):
    t = NumpyTrainer(tiny)
    t.step(batch())
    t.load(init_state(tiny, 1))
    assert t.steps == 0 and not any(np.any(m) for m, _ in t._moments().values())
    state = t.state()
    del state[f"optim/v/{t.names[0]}"]
    with pytest.raises(CheckpointError, match=r"optimiser state \(optim/\.\.\.\) does not match"):
        t.load(state)
