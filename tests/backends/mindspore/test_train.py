"""The MindSpore trainer's pieces: Adam against torch.optim.Adam, dropout
masks from the host generator, and a compiled step that reads what
``load`` wrote after it was compiled."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("mindspore")
from vdreid.errors import ConfigError, DataError  # noqa: E402
from vdreid.losses import CrossEntropyTerm, LossSpec  # noqa: E402
from vdreid.optim import OptimConfig  # noqa: E402
from vdreid.presets import recipe  # noqa: E402
from vdreid.spec import init_state  # noqa: E402
from vdreid.trainer import TrainerOptions  # noqa: E402
from vdreid.workflows.parity import parity_case, perturbed_state, warm_optimizer_state  # noqa: E402
from vdreid_mindspore._quiet import mindspore as ms  # noqa: E402
from vdreid_mindspore.backend import MindSporeBackend  # noqa: E402
from vdreid_mindspore.train import MindSporeTrainer, adam_values, bias_corrections  # noqa: E402

#: one pytest-xdist worker runs this module: its shared fixtures are costly
pytestmark = pytest.mark.xdist_group("mindspore-train")


def test_adam_matches_torch_including_tiny_gradients_and_weight_decay():
    torch = pytest.importorskip("torch")
    cfg = OptimConfig(lr=1e-2, weight_decay=5e-2, eps=1e-8)
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(64,)).astype(np.float32)
    # gradients from 1e-10 (below eps: where eps placement matters) to 1
    grads = [
        (rng.normal(size=64) * 10.0 ** rng.uniform(-10, 0, 64)).astype(np.float32) for _ in range(4)
    ]
    ref = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt = torch.optim.Adam(
        [ref], lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
    )
    p, m, v = (ms.Tensor(a) for a in (p0, np.zeros(64, np.float32), np.zeros(64, np.float32)))
    for t, g in enumerate(grads, start=1):
        ref.grad = torch.from_numpy(g)
        opt.step()
        bc1, bc2_sqrt = bias_corrections(cfg.betas, t)
        p, m, v = adam_values(
            p,
            m,
            v,
            ms.Tensor(g),
            ms.Tensor(np.float32(cfg.lr / bc1)),
            ms.Tensor(np.float32(bc2_sqrt)),
            1.0 - cfg.betas[0],
            cfg.betas[1],
            1.0 - cfg.betas[1],
            cfg.eps,
            cfg.weight_decay,
        )
        want = ref.detach().numpy()
        np.testing.assert_allclose(p.asnumpy(), want, rtol=1e-6, atol=1e-7)
        state = opt.state[ref]
        np.testing.assert_allclose(m.asnumpy(), state["exp_avg"].numpy(), rtol=1e-5, atol=1e-10)
        np.testing.assert_allclose(v.asnumpy(), state["exp_avg_sq"].numpy(), rtol=1e-5, atol=1e-20)
    assert not np.allclose(p.asnumpy(), p0)


def one_block_spec():
    """tiny with one block per stage: the smallest graph that still has every kind of node."""
    spec = recipe("tiny").model_spec(4)
    branches = []
    for b in spec.branches:
        stages = tuple(s.model_copy(update={"blocks": s.blocks[:1]}) for s in b.backbone.stages)
        branches.append(
            b.model_copy(update={"backbone": b.backbone.model_copy(update={"stages": stages})})
        )
    return spec.model_copy(update={"branches": tuple(branches)})


@pytest.fixture(scope="module")
def ce_trainer():
    """A compiled step with the cross-entropy loss only (the cheapest graph)."""
    spec = one_block_spec()
    case = dataclasses.replace(parity_case(), spec=spec, state=perturbed_state(spec))
    backend = MindSporeBackend()
    model = backend.build(spec, device="cpu")
    backend.set_state(model, case.state)
    trainer = backend.trainer(
        model,
        LossSpec(ce=CrossEntropyTerm()),
        recipe("tiny").optim,
        TrainerOptions(amp=False, dropout=False, seed=0),
    )
    return case, backend, model, trainer


def test_a_compiled_step_reads_the_state_loaded_after_it_was_compiled(ce_trainer):
    case, backend, model, trainer = ce_trainer
    start = {**case.state, **warm_optimizer_state(case.spec)}
    trainer.load(start)
    trainer.step(case.batch)  # compiles
    first_terms, first_state = trainer.metrics(), trainer.state()
    trainer.step(case.batch)
    trainer.metrics()  # metrics average every step since the last call
    moved_on = trainer.state()
    trainer.load(start)  # back to the start: the compiled graph must see it
    assert int(trainer.state()["optim/step"]) == int(start["optim/step"])
    trainer.step(case.batch)
    again_terms, again_state = trainer.metrics(), trainer.state()
    assert again_terms == pytest.approx(first_terms, rel=1e-6)
    for k in first_state:
        np.testing.assert_array_equal(again_state[k], first_state[k], err_msg=k)
    # and the second step had really changed things
    assert not np.array_equal(
        moved_on["V.backbone.conv1.weight"], first_state["V.backbone.conv1.weight"]
    )
    np.testing.assert_array_equal(
        backend.get_state(model)["V.head.fc1.weight"], again_state["V.head.fc1.weight"]
    )


def test_a_model_only_state_starts_a_fresh_optimiser(ce_trainer):
    case, _, _, trainer = ce_trainer
    trainer.load(case.state)
    state = trainer.state()
    assert int(state["optim/step"]) == 0
    assert all(not np.any(v) for k, v in state.items() if k.startswith("optim/m/"))


def test_dropout_masks_repeat_per_epoch_and_seed(ce_trainer):
    case, backend, model, _ = ce_trainer
    slots = model.dropout_slots
    assert slots and all(s.classifier == "z_classifier" and s.p == 0.5 for s in slots)

    def masks(seed, epoch):
        t = backend.trainer(
            model,
            LossSpec(ce=CrossEntropyTerm()),
            recipe("tiny").optim,
            TrainerOptions(amp=False, seed=seed),
        )
        t.set_epoch(epoch)
        return [k.asnumpy() for k in t._keeps(8)]

    a, b, c = masks(1, 3), masks(1, 3), masks(1, 4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    values = np.concatenate([x.ravel() for x in a])
    assert set(np.unique(values)) == {0.0, 2.0}  # kept units scaled by 1 / (1 - p)
    assert 0.35 < np.mean(values == 0) < 0.65


def test_bad_batches_and_options_are_user_errors(ce_trainer):
    case, backend, model, trainer = ce_trainer
    with pytest.raises(DataError, match="labels must lie in 0..3"):
        trainer.step({**case.batch, "labels": case.batch["labels"] + 3})
    with pytest.raises(DataError, match="uint8"):
        trainer.step({**case.batch, "images": case.batch["images"].astype(np.float32)})
    with pytest.raises(ConfigError, match="compile"):
        backend.trainer(
            model,
            LossSpec(ce=CrossEntropyTerm()),
            recipe("tiny").optim,
            TrainerOptions(compile=True),
        )


def test_distributed_needs_msrun_and_sync_bn_is_refused(ce_trainer, monkeypatch):
    # the msrun runs themselves: tests/e2e/test_distributed.py
    _, backend, model, _ = ce_trainer
    monkeypatch.delenv("MS_ROLE", raising=False)
    loss, optim = LossSpec(ce=CrossEntropyTerm()), recipe("tiny").optim
    with pytest.raises(ConfigError, match="not started by msrun .*msrun --worker_num N"):
        backend.trainer(model, loss, optim, TrainerOptions(distributed=True))
    with pytest.raises(ConfigError, match="sync_bn=True: .*SyncBatchNorm runs on Ascend only"):
        backend.trainer(model, loss, optim, TrainerOptions(distributed=True, sync_bn=True))


def test_mixed_precision_steps_and_skips_an_overflowing_step():
    """The amp path (float16 network, float32 parameters and Adam, dynamic loss
    scaling), run on the CPU by naming an accelerator target."""
    case = parity_case()
    spec = one_block_spec()
    backend = MindSporeBackend()
    model = backend.build(spec, device="cpu")
    backend.set_state(model, init_state(spec, 0))
    trainer = MindSporeTrainer(
        model,
        LossSpec(ce=CrossEntropyTerm()),
        recipe("tiny").optim,
        TrainerOptions(amp=True, dropout=False),
        target="GPU",
    )
    assert trainer.amp
    before = trainer.state()
    trainer.step(case.batch)
    after = trainer.state()
    terms = trainer.metrics()
    assert np.isfinite(terms["total"]) and int(after["optim/step"]) == 1
    assert after["V.head.fc1.weight"].dtype == np.float32
    assert not np.array_equal(after["V.head.fc1.weight"], before["V.head.fc1.weight"])
    trainer._scale = 3e38  # float16 gradients overflow at any such scale
    trainer.step(case.batch)
    skipped = trainer.state()
    assert int(skipped["optim/step"]) == 1 and trainer._scale == 1.5e38
    for k in after:
        if not k.endswith((".mean", ".var")):  # running statistics still see the batch
            np.testing.assert_array_equal(skipped[k], after[k], err_msg=k)
