"""One msrun worker of the MindSpore data-parallel check (test_distributed.py).

Run by msrun, one process per rank: ``python tests/e2e/ms_data_parallel.py OUT``.
Each rank trains the small case of :func:`case` on its own half of one global
batch for ``STEPS[mode]`` steps, first with the compiled step, then eagerly
(``pynative``), and writes its trainer state and the logged terms to
``OUT/<mode>-rank<r>.npz`` / ``.json``. The test recomputes the same run in
one process from per-half steps and compares.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from vdreid.checkpoint import model_state
from vdreid.losses import CrossEntropyTerm, LossSpec
from vdreid.presets import recipe
from vdreid.spec import ModelSpec
from vdreid.trainer import TrainerOptions
from vdreid.workflows.parity import parity_case, perturbed_state, warm_optimizer_state

WORLD = 2
STEPS = {"graph": 2, "pynative": 1}  # an eager step takes ~6 s here; one shows the path works


def one_block_spec(spec: ModelSpec) -> ModelSpec:
    """``spec`` with one block per stage: the cheapest graph with every kind of node."""
    branches = []
    for b in spec.branches:
        stages = tuple(s.model_copy(update={"blocks": s.blocks[:1]}) for s in b.backbone.stages)
        backbone = b.backbone.model_copy(update={"stages": stages})
        branches.append(b.model_copy(update={"backbone": backbone}))
    return spec.model_copy(update={"branches": tuple(branches)})


def case():
    """(spec, start state, per-rank batches, loss, optimiser): the parity case's
    two identities, one per rank, from warm Adam moments (the update is then
    continuous in the gradient, see vdreid.workflows.parity)."""
    base = parity_case()
    spec = one_block_spec(base.spec)
    start = {**perturbed_state(spec), **warm_optimizer_state(spec)}
    n = len(base.batch["labels"]) // WORLD
    halves = [{k: v[r * n : (r + 1) * n] for k, v in base.batch.items()} for r in range(WORLD)]
    return spec, start, halves, LossSpec(ce=CrossEntropyTerm()), recipe("tiny").optim


def trainer_for(backend, spec, start, loss, optim, **options):
    model = backend.build(spec, device="cpu")
    backend.set_state(model, model_state(start))
    trainer = backend.trainer(
        model, loss, optim, TrainerOptions(amp=False, dropout=False, seed=0, **options)
    )
    trainer.load(start)
    return trainer


def main(out: Path) -> None:
    from vdreid_mindspore.backend import MindSporeBackend

    spec, start, halves, loss, optim = case()
    backend = MindSporeBackend()
    rank, world = backend.init_distributed("cpu")
    assert world == WORLD, world
    trainers = []
    for mode, steps in STEPS.items():
        trainer = trainer_for(
            backend, spec, start, loss, optim, distributed=True, pynative=mode == "pynative"
        )
        terms = []
        for _ in range(steps):
            trainer.step(halves[rank])
            terms.append(trainer.metrics())
        np.savez(out / f"{mode}-rank{rank}.npz", **trainer.state())
        (out / f"{mode}-rank{rank}.json").write_text(json.dumps(terms))
        trainers.append(trainer)
    trainers[-1].close()  # checks the ranks agree, then releases the group (shared by both)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
