"""Training end to end: data -> backend trainer -> checkpoints -> evaluation.

Randomness is a function of (seed, epoch, step, rank) everywhere: the
sampler draws epoch e from (seed, e), host augmentation from
(seed, epoch, step, rank), and the backend trainer reseeds its own
generators in ``set_epoch``. Checkpoints are written at epoch ends, so a
resumed run continues with exactly the batches, augmentations and
dropout masks the uninterrupted run would have used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from vdreid import registry
from vdreid.backend import Backend
from vdreid.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from vdreid.config import TrainConfig
from vdreid.data.batch import BatchAssembler
from vdreid.data.prefetch import ahead
from vdreid.data.readers import read_dataset
from vdreid.data.records import DatasetIndex, arrays
from vdreid.data.sampler import IdentitySampler
from vdreid.errors import CheckpointError, ConfigError, Interrupted
from vdreid.losses.spec import LossSpec
from vdreid.presets import recipe
from vdreid.spec import init_state
from vdreid.spec.model import ModelSpec, spec_hash
from vdreid.trainer import Trainer, TrainerOptions
from vdreid.workflows.evaluate import Evaluation, evaluate_model
from vdreid.workflows.features import open_cache
from vdreid.workflows.loss_guard import LossGuard
from vdreid.workflows.pretrained import apply_pretrained
from vdreid.workflows.run_dir import (
    META_BEST,
    META_DATASET,
    META_EPOCH,
    META_SAMPLER,
    META_TRIAL,
    RunDir,
    epochs_in,
)
from vdreid.workflows.train_progress import TrainProgress


@dataclasses.dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    epochs_done: int
    checkpoint: Path
    evaluation: Evaluation | None
    validation: Evaluation | None


def resume_path(resume: str | None, run: RunDir) -> Path | None:
    if resume is None:
        return None
    if resume == "auto":
        return run.last if run.last.exists() else None
    path = Path(resume)
    if not path.is_file():
        raise ConfigError(
            f"--resume {resume}: no such checkpoint file; pass 'auto' or a .safetensors path"
        )
    return path


def resume_command(out: Path) -> str:
    """The command that continues the run in ``out`` with its recorded settings."""
    return f"vdreid train --out {shlex.quote(str(out))} --resume auto"


def run_spec(cfg: TrainConfig, num_classes: int) -> ModelSpec:
    """The model a run trains: its preset for ``num_classes`` ids at the configured input size."""
    return recipe(cfg.preset).model_spec(num_classes, input_size=cfg.input_size)


def start_state(
    spec: ModelSpec,
    cfg: TrainConfig,
    *,
    progress: bool = True,
    say: Callable[[str], None] | None = None,
) -> dict[str, np.ndarray]:
    """The weights a fresh run starts from: ``init_state`` of the run's seed,
    with the ``--pretrained`` weights in place (``say`` gets one line on them)."""
    state = init_state(spec, cfg.seed)
    if cfg.pretrained is None:
        return state
    state, report = apply_pretrained(spec, state, cfg.pretrained, progress=progress)
    if say is not None:
        say(report.line())
    return state


def train(
    cfg: TrainConfig,
    *,
    resume: str | None = None,
    evaluate: bool = True,
    progress: bool = True,
    rank: int = 0,
    world: int = 1,
    console: Console | None = None,
) -> TrainResult:
    console = console or Console(stderr=True)
    lead = rank == 0
    index = read_dataset(cfg.dataset, cfg.root, trial=cfg.trial)
    if cfg.validate_every:
        if not index.val:
            raise ConfigError(
                f"validate_every={cfg.validate_every} but the {cfg.dataset} reader has no "
                "validation split (only SYSU-MM01 has val ids); set validate_every=0"
            )
        index = index.holding_out_val()
    labels, num_classes = index.train_labels()
    _, _, modality = arrays(index.train)
    spec = run_spec(cfg, num_classes)
    loss_spec = recipe(cfg.preset).loss
    run = RunDir(cfg.out)
    start_ckpt = resume_path(resume, run)
    resumed = _read_resume(start_ckpt, spec_hash(spec)) if start_ckpt is not None else None
    start_epoch = int(resumed.meta[META_EPOCH]) if resumed is not None else 0
    if start_epoch > cfg.epochs:
        raise ConfigError(
            f"epochs = {cfg.epochs}, but {start_ckpt} already holds {start_epoch} epochs; pass "
            f"--epochs {start_epoch + 1} or more to train further (--epochs {start_epoch} only "
            "evaluates it again)"
        )
    # the backend and the device are checked before anything is written
    backend = registry.get(cfg.backend)
    if not backend.trains:
        raise backend.does_not_train("vdreid train")
    model = backend.build(spec, device=cfg.device)
    # --pretrained too (a missing file, no network, a file that does not fit)
    say = (lambda line: console.print(line, highlight=False)) if lead else None
    backend.set_state(model, start_state(spec, cfg, progress=progress and lead, say=say))
    with run.writing(resuming=resumed is not None) if lead else contextlib.nullcontext(run):
        if lead:
            # one line each, never cut inside a path (soft_wrap): logs stay greppable
            if start_ckpt is not None:
                console.print(
                    f"resuming from {start_ckpt} after epoch {start_epoch} (of {cfg.epochs})",
                    highlight=False,
                    soft_wrap=True,
                )
            elif resume == "auto":
                console.print(
                    f"no checkpoint in {run.root}: starting a fresh run",
                    highlight=False,
                    soft_wrap=True,
                )
            notes = run.prepare(
                _as_recorded(cfg, spec),
                spec.model_dump_json(indent=2),
                loss_spec.model_dump_json(indent=2),
                resumed=(start_ckpt, start_epoch) if start_ckpt is not None else None,
            )
            for note in notes:
                console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
        job = _Job(cfg, index, labels, modality, spec, loss_spec, backend, model, run, resumed)
        try:
            return _fit(
                job, evaluate=evaluate, progress=progress, rank=rank, world=world, console=console
            )
        except KeyboardInterrupt:
            raise Interrupted(_interrupted(run, cfg)) from None


@dataclasses.dataclass(frozen=True)
class _Job:
    """What train() settled before the run folder was written."""

    cfg: TrainConfig
    index: DatasetIndex
    labels: np.ndarray
    modality: np.ndarray
    spec: ModelSpec
    loss_spec: LossSpec
    backend: Backend
    model: Any  # the backend's network
    run: RunDir
    resumed: Checkpoint | None


def _fit(
    job: _Job, *, evaluate: bool, progress: bool, rank: int, world: int, console: Console
) -> TrainResult:
    """Cache, trainer, the epochs and the final evaluation."""
    cfg, index, spec, backend, model, run = (
        job.cfg,
        job.index,
        job.spec,
        job.backend,
        job.model,
        job.run,
    )
    labels, modality, resumed = job.labels, job.modality, job.resumed
    lead = rank == 0
    size = (spec.input.height, spec.input.width)
    cache = open_cache(index.train, size, index.root, cfg.cache_dir, progress=progress and lead)
    sampler = IdentitySampler(
        labels,
        modality,
        ids_per_batch=cfg.ids_per_batch,
        instances=cfg.instances,
        seed=cfg.seed,
        rank=rank,
        world=world,
    )
    assembler = BatchAssembler(cache, labels, modality, cfg.augment, seed=cfg.seed)

    options = TrainerOptions(
        amp=cfg.amp,
        compile=cfg.compile,
        seed=cfg.seed,
        deterministic=cfg.deterministic,
        distributed=world > 1,
        sync_bn=cfg.sync_bn and world > 1,
    )
    trainer = backend.trainer(model, job.loss_spec, cfg.optim, options)

    start_epoch, best_map = 0, -math.inf
    if resumed is not None:
        start_epoch, best_map = _restore(trainer, sampler, resumed)

    steps = len(sampler)
    guard = LossGuard(
        run if lead else None,
        lr=cfg.optim.lr,
        data_check=f"vdreid data check --dataset {cfg.dataset} --root {shlex.quote(str(cfg.root))}",
        resume_command=resume_command(run.root),
    )
    validation: Evaluation | None = None
    meta = {"preset": cfg.preset, META_DATASET: cfg.dataset}
    if index.trial is not None:  # eval defaults to it and refuses another
        meta[META_TRIAL] = str(index.trial)
    total, done_steps = cfg.epochs * steps, start_epoch * steps
    with TrainProgress(total, done_steps, enabled=progress and lead, console=console) as bar:
        for epoch in range(start_epoch, cfg.epochs):
            _train_epoch(
                trainer,
                sampler,
                assembler,
                bar,
                guard,
                run if lead else None,
                cfg,
                epoch,
                rank,
                world,
            )
            done = epoch + 1
            if cfg.validate_every and done % cfg.validate_every == 0:
                validation = _validate(backend, model, spec, index, cfg, progress=False)
                val = validation.result.summary()
                if lead:
                    run.log(
                        {"epoch": epoch, "val_mAP": val["mAP"]["mean"], "val_R1": val["R1"]["mean"]}
                    )
                if val["mAP"]["mean"] > best_map:
                    best_map = val["mAP"]["mean"]
                    if lead:
                        _save(run.best, trainer, spec, cfg, sampler, done, best_map, meta)
            if lead and (done % cfg.checkpoint_every == 0 or done == cfg.epochs):
                _save(run.last, trainer, spec, cfg, sampler, done, best_map, meta)
    trainer.close()

    evaluation = None
    if evaluate and lead and index.test:
        evaluation = evaluate_model(
            backend, model, spec, index, cfg.protocol, cache_dir=cfg.cache_dir, progress=progress
        )
        evaluation.save(run.evaluation)
    return TrainResult(run.root, cfg.epochs, run.last, evaluation, validation)


def _as_recorded(cfg: TrainConfig, spec: ModelSpec) -> TrainConfig:
    """``cfg`` with the input size it resolved to, so that config.toml reads back as this
    run (TOML has no null: an unset size would read back as the recipe's)."""
    if cfg.input_size is not None:
        return cfg
    return cfg.model_copy(update={"input_size": (spec.input.height, spec.input.width)})


def _interrupted(run: RunDir, cfg: TrainConfig) -> str:
    """What Ctrl-C left behind, and the command that goes on from there."""
    epoch = epochs_in(run.last)
    if epoch is None:
        kept = f"no checkpoint was written yet in {run.root}"
    elif epoch >= cfg.epochs:
        kept = f"training had finished: {run.last} holds all {epoch} epochs"
    else:
        kept = f"kept {run.last} (after epoch {epoch} of {cfg.epochs})"
    return f"{kept}; to go on, run: {resume_command(run.root)}"


def _train_epoch(
    trainer: Trainer,
    sampler: IdentitySampler,
    assembler: BatchAssembler,
    bar: TrainProgress,
    guard: LossGuard,
    run: RunDir | None,
    cfg: TrainConfig,
    epoch: int,
    rank: int,
    world: int,
) -> None:
    """One pass over the identities; loss terms are fetched (the only host
    synchronisation) every ``log_interval`` steps and at the epoch's end."""
    trainer.set_epoch(epoch)
    sampler.set_epoch(epoch)
    steps = len(sampler)
    batches = ahead(  # batch k + 1 is assembled while step k runs
        assembler(indices, epoch=epoch, step=step, rank=rank).as_dict()
        for step, indices in enumerate(sampler)
    )
    for step, batch in enumerate(batches):
        trainer.step(batch)
        bar.step(epoch, cfg.epochs, step, steps, len(batch["labels"]) * world)
        if (step + 1) % cfg.log_interval and step + 1 != steps:
            continue
        metrics = guard.check(trainer.metrics(), epoch, step)
        speed = bar.show(metrics)
        if run is not None:
            lrs = {f"lr_{g}": lr for g, lr in trainer.learning_rates().items()}
            run.log(
                {
                    "epoch": epoch,
                    "step": step,
                    "global_step": epoch * steps + step + 1,
                    **metrics,
                    **lrs,
                    "images_per_s": round(speed, 1),  # over all processes
                    "processes": world,
                }
            )


def _save(
    path: Path,
    trainer: Trainer,
    spec: Any,
    cfg: TrainConfig,
    sampler: IdentitySampler,
    epochs_done: int,
    best_map: float,
    meta: dict[str, str],
) -> None:
    sampler_state = {"epoch": epochs_done, "position": 0, "seed": sampler.seed}
    save_checkpoint(
        path,
        trainer.state(),
        spec=spec,
        backend=cfg.backend,
        meta={
            **meta,
            META_EPOCH: str(epochs_done),
            META_SAMPLER: json.dumps(sampler_state),
            META_BEST: repr(best_map),
        },
    )


def _read_resume(path: Path, expected_hash: str) -> Checkpoint:
    """The checkpoint to resume from, checked before anything is built."""
    ckpt = load_checkpoint(path)
    if ckpt.spec is None or spec_hash(ckpt.spec) != expected_hash:
        raise CheckpointError(
            f"cannot resume from {path}: it was written for a different model spec than this run's "
            "(preset, number of classes or input size differ); resume with the original configuration"
        )
    if META_EPOCH not in ckpt.meta:
        raise CheckpointError(
            f"cannot resume from {path}: it holds no training position (epoch); it is not a training checkpoint"
        )
    return ckpt


def _restore(trainer: Trainer, sampler: IdentitySampler, ckpt: Checkpoint) -> tuple[int, float]:
    trainer.load(ckpt.tensors)
    sampler.load_state(json.loads(ckpt.meta[META_SAMPLER]))
    return int(ckpt.meta[META_EPOCH]), float(ckpt.meta.get(META_BEST, "-inf"))


def _validate(
    backend: Any, model: Any, spec: Any, index: DatasetIndex, cfg: TrainConfig, *, progress: bool
) -> Evaluation:
    """Infrared val images against visible val images (never the test split)."""
    val_index = DatasetIndex(name="manifest", root=index.root, train=(), test=index.val)
    protocol = cfg.protocol.model_copy(
        update={"direction": None, "trials": 1, "flip": False, "rerank": False}
    )
    return evaluate_model(
        backend, model, spec, val_index, protocol, cache_dir=cfg.cache_dir, progress=progress
    )
