"""The torch trainer: Adam as vdreid.optim specifies, schedule, seeding, state."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vdreid.errors import CheckpointError, ConfigError, DataError  # noqa: E402
from vdreid.losses import objective  # noqa: E402
from vdreid.optim import OptimConfig, lr_at, param_group  # noqa: E402
from vdreid.presets import recipe  # noqa: E402
from vdreid.spec import init_state, param_table, trainable_names  # noqa: E402
from vdreid.trainer import TrainerOptions  # noqa: E402
from vdreid_torch import names  # noqa: E402
from vdreid_torch.backend import TorchBackend  # noqa: E402
from vdreid_torch.build import build_model  # noqa: E402
from vdreid_torch.ops import TorchOps  # noqa: E402

OPTIM = OptimConfig(lr=1e-3, head_lr=3e-3, weight_decay=5e-4, warmup_epochs=2, milestones=(4,))
LOSS = recipe("official").loss


@pytest.fixture(scope="module")
def spec():
    return recipe("tiny").model_spec(3)


@pytest.fixture(scope="module")
def batch(spec):
    rng = np.random.default_rng(3)
    return {
        "images": rng.integers(0, 256, (8, spec.input.height, spec.input.width, 3), dtype=np.uint8),
        "labels": np.repeat(np.arange(2, dtype=np.int64), 4),
        "modality": np.tile(np.array([0, 0, 1, 1], dtype=np.int64), 2),
    }


def make_trainer(spec, state, **options):
    backend = TorchBackend()
    model = backend.build(spec, device="cpu")
    backend.set_state(model, state)
    return backend.trainer(model, LOSS, OPTIM, TrainerOptions(**{"amp": False, **options}))


def random_optim_state(spec, step: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    table = param_table(spec)
    out = {"optim/step": np.array(step, dtype=np.int64)}
    for n in (n for n, i in table.items() if i.trainable and not i.running):
        out[f"optim/m/{n}"] = rng.normal(0, 1e-3, table[n].shape).astype(np.float32)
        out[f"optim/v/{n}"] = rng.uniform(0, 1e-5, table[n].shape).astype(np.float32)
    return out


def test_one_step_is_adam_with_l2_and_group_learning_rates(spec, batch):
    """Resume from step 3 with given moments, at epoch 1 (warmup), and compare
    with Adam written out in numpy on the gradients of the same loss."""
    state = init_state(spec, 0)
    optim_state = random_optim_state(spec, step=3)
    trainer = make_trainer(spec, state, dropout=False)
    trainer.load({**state, **optim_state})
    trainer.set_epoch(1)
    trainer.step(batch)
    after = trainer.state()

    # the gradients at ``state``, from an independent copy of the model
    model = build_model(spec)
    names.set_state(model, spec, state)
    model.train()
    model.set_dropout(False)
    x = model.normalise(torch.from_numpy(batch["images"]))
    ops = TorchOps()
    labels, modality = (torch.from_numpy(batch[k]) for k in ("labels", "modality"))
    objective(ops, LOSS, model(x), labels, modality)["total"].backward()
    keys = names.framework_keys(spec)

    b1, b2 = OPTIM.betas
    t = 4
    for n in trainable_names(param_table(model.spec)):
        p = state[n].astype(np.float64)
        g = model.get_parameter(keys[n]).grad.double().numpy() + OPTIM.weight_decay * p
        m = b1 * optim_state[f"optim/m/{n}"] + (1 - b1) * g
        v = b2 * optim_state[f"optim/v/{n}"] + (1 - b2) * g * g
        lr = lr_at(OPTIM, 1, param_group(n))
        want = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + OPTIM.eps)
        np.testing.assert_allclose(after[f"optim/m/{n}"], m, rtol=1e-4, atol=1e-9, err_msg=n)
        np.testing.assert_allclose(after[f"optim/v/{n}"], v, rtol=1e-4, atol=1e-12, err_msg=n)
        np.testing.assert_allclose(after[n], want, rtol=1e-5, atol=1e-6, err_msg=n)
    assert int(after["optim/step"]) == 4


def test_frozen_tensors_are_not_optimised(spec, batch):
    state = init_state(spec, 0)
    state["V.neck.bn.shift"] = np.full_like(state["V.neck.bn.shift"], 0.25)
    trainer = make_trainer(spec, state)
    trainer.step(batch)
    after = trainer.state()
    frozen = [n for n, i in param_table(spec).items() if not i.trainable and not i.running]
    assert "V.neck.bn.shift" in frozen
    for n in frozen:
        assert np.array_equal(after[n], state[n]), n  # not even weight decay touches them
        assert f"optim/m/{n}" not in after


def test_set_epoch_applies_the_schedule_to_both_groups(spec):
    trainer = make_trainer(spec, init_state(spec, 0))
    for epoch in (0, 1, 3, 4, 9):
        trainer.set_epoch(epoch)
        assert trainer.learning_rates() == {
            g: pytest.approx(lr_at(OPTIM, epoch, g)) for g in ("backbone", "head")
        }


def test_dropout_masks_follow_seed_and_epoch(spec, batch):
    state = init_state(spec, 0)

    def run(seed, epoch):
        trainer = make_trainer(spec, state, seed=seed)
        trainer.set_epoch(epoch)
        trainer.step(batch)
        return trainer.state()

    first, again, other_seed = run(1, 2), run(1, 2), run(2, 2)
    assert all(np.array_equal(first[k], again[k]) for k in first)  # reproducible on the CPU
    name = "V.z_classifier.fc.weight"  # downstream of the dropout
    assert not np.array_equal(first[name], other_seed[name])


def test_model_only_state_starts_a_fresh_optimiser(spec, batch):
    trainer = make_trainer(spec, init_state(spec, 0))
    trainer.step(batch)
    trainer.load(init_state(spec, 1))
    state = trainer.state()
    assert int(state["optim/step"]) == 0
    assert all(not np.any(v) for k, v in state.items() if k.startswith("optim/m/"))


def test_incomplete_optimiser_state_is_rejected(spec):
    trainer = make_trainer(spec, init_state(spec, 0))
    broken = {**init_state(spec, 0), **random_optim_state(spec, step=2)}
    del broken["optim/v/V.backbone.conv1.weight"]
    with pytest.raises(
        CheckpointError, match=r"optim/v/V\.backbone\.conv1\.weight|v/V\.backbone\.conv1\.weight"
    ):
        trainer.load(broken)


def test_bad_batches_are_rejected_before_the_device(spec, batch):
    trainer = make_trainer(spec, init_state(spec, 0))
    with pytest.raises(DataError, match=r"labels must lie in 0\.\.2"):
        trainer.step({**batch, "labels": batch["labels"] + 5})
    with pytest.raises(DataError, match="uint8"):
        trainer.step({**batch, "images": batch["images"].astype(np.float32)})


def test_unknown_and_unsupported_trainer_options_are_named(spec):
    backend = TorchBackend()
    model = backend.build(spec, device="cpu")
    with pytest.raises(TypeError, match="warp_speed"):
        backend.trainer(model, LOSS, OPTIM, TrainerOptions(warp_speed=True))  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match=r"pynative=True: the torch backend does not support it"):
        backend.trainer(model, LOSS, OPTIM, TrainerOptions(pynative=True))


def test_metrics_average_the_steps_since_the_last_fetch(spec, batch):
    trainer = make_trainer(spec, init_state(spec, 0), dropout=False)
    assert trainer.metrics() == {}
    seen = []
    for _ in range(2):
        trainer.step(batch)
        seen.append(trainer.metrics()["total"])
    trainer2 = make_trainer(spec, init_state(spec, 0), dropout=False)
    trainer2.step(batch)
    trainer2.step(batch)
    assert trainer2.metrics()["total"] == pytest.approx(sum(seen) / 2, rel=1e-6)


def test_single_process_distributed_step_equals_the_plain_step(spec, batch, tmp_path):
    dist = torch.distributed
    if not dist.is_available():
        pytest.skip("this torch build has no torch.distributed")
    state = init_state(spec, 0)
    plain = make_trainer(spec, state, dropout=False)
    plain.step(batch)
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1
    )
    try:
        wrapped = make_trainer(spec, state, dropout=False, distributed=True)
        wrapped.step(batch)
        got, want = wrapped.state(), plain.state()
        assert wrapped.metrics() == pytest.approx(plain.metrics())
    finally:
        dist.destroy_process_group()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-7, err_msg=k)


class HostReads(torch.overrides.TorchFunctionMode):
    """Records every tensor call that makes the host wait for the device:
    reading a value (item, bool, float, tolist, numpy, cpu) or an op whose
    output shape depends on values (nonzero, unique, masked_select, boolean
    indexing)."""

    READS = {"item", "__bool__", "__float__", "__int__", "__index__", "tolist", "numpy", "cpu"}
    VALUE_SHAPED = {"nonzero", "unique", "masked_select", "argwhere"}

    def __init__(self, host_counters=()):
        super().__init__()
        self.seen: list[str] = []
        self.host_counters = {id(t) for t in host_counters}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if args and id(args[0]) in self.host_counters:
            pass
        elif name in self.READS | self.VALUE_SHAPED:
            self.seen.append(name)
        elif name == "__getitem__" and any(
            isinstance(a, torch.Tensor) and a.dtype == torch.bool for a in _flat(args[1:])
        ):
            self.seen.append("boolean indexing")
        return func(*args, **(kwargs or {}))


def _flat(items):
    for item in items:
        yield from _flat(item) if isinstance(item, (tuple, list)) else (item,)


def test_a_training_step_never_waits_for_the_device(spec, batch):
    """No value read back and no value-shaped op inside step() (on CUDA each
    would stall the queue); metrics() is the one read, and the probe sees it.
    torch's unfused Adam (the CPU's) reads its step counters, which it keeps
    on the host; the fused Adam the trainer uses on CUDA keeps them on the
    device and reads none."""
    trainer = make_trainer(spec, init_state(spec, 0), seed=0)
    trainer.step(batch)  # the first step builds Adam's state
    counters = [st["step"] for st in trainer.optimizer.state.values()]
    assert not trainer.fused and all(c.device.type == "cpu" for c in counters)
    with HostReads(counters) as probe:
        trainer.step(batch)
        trainer.step(batch)
    assert probe.seen == []
    with HostReads() as probe:
        trainer.metrics()
    assert "tolist" in probe.seen or "cpu" in probe.seen
