"""RegDB's ten trials as the papers report them: one model per trial, each
evaluated on its own trial's test identities in both directions, and the
mean ± std over the ten (`vdreid train --dataset regdb --trial all`).

Each trial is an ordinary run folder, ``<out>/trial-01`` ... ``trial-10``
(so ``--resume auto`` goes on where the command stopped: finished trials
are only evaluated again); ``<out>/trials.json`` holds every trial's
results and the summary.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from vdreid import outputs, registry
from vdreid.config import TrainConfig
from vdreid.data.readers import read_dataset
from vdreid.data.regdb import TRIALS
from vdreid.errors import ConfigError
from vdreid.eval.evaluate import EvalResult
from vdreid.workflows.evaluate import (
    Evaluation,
    evaluate_features,
    extract_test_features,
    load_trained,
)
from vdreid.workflows.train import train

#: both directions, in the papers' order
DIRECTIONS = ("v2t", "t2v")
DIRECTION_NAMES = {"v2t": "visible to thermal", "t2v": "thermal to visible"}


@dataclasses.dataclass(frozen=True)
class TrialsResult:
    out: Path
    runs: tuple[Path, ...]
    #: direction -> one Evaluation per trial
    evaluations: dict[str, tuple[Evaluation, ...]]

    def summary(self, direction: str) -> EvalResult:
        """The ten trials of ``direction`` as one result: mean ± std over trials."""
        evs = self.evaluations[direction]
        ranked = tuple(r for ev in evs for r in ev.result.trials)
        return EvalResult(ranked, evs[0].distance, evs[0].result.rerank)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": "regdb",
            "trials": list(TRIALS),
            "runs": [str(r) for r in self.runs],
            "summary": {d: self.summary(d).summary() for d in self.evaluations},
            "per_trial": {d: [ev.to_dict() for ev in evs] for d, evs in self.evaluations.items()},
        }


def trial_dir(out: Path, trial: int) -> Path:
    return out / f"trial-{trial:02d}"


def train_all_trials(
    cfg: TrainConfig,
    *,
    resume: str | None = None,
    evaluate: bool = True,
    progress: bool = True,
    console: Console | None = None,
) -> TrialsResult:
    """Train and evaluate RegDB trials 1..10 one after the other (module docstring);
    ``evaluate=False`` only trains them."""
    console = console or Console(stderr=True)
    if cfg.dataset != "regdb":
        raise ConfigError(
            f"--trial all trains RegDB's ten trials; {cfg.dataset} has a single split: "
            "leave --trial out"
        )
    if resume not in (None, "auto"):
        raise ConfigError(
            f"--resume {resume} names one checkpoint; with --trial all use --resume auto "
            "(each trial goes on from its own folder)"
        )
    runs: list[Path] = []
    evaluations: dict[str, list[Evaluation]] = {d: [] for d in DIRECTIONS} if evaluate else {}
    for trial in TRIALS:
        run_cfg = cfg.model_copy(update={"trial": trial, "out": trial_dir(cfg.out, trial)})
        console.print(
            f"RegDB trial {trial} of {len(TRIALS)}: {run_cfg.out}", highlight=False, soft_wrap=True
        )
        result = train(run_cfg, resume=resume, evaluate=False, progress=progress, console=console)
        runs.append(result.run_dir)
        if evaluate:
            for direction, ev in _both_directions(run_cfg, result.checkpoint, progress).items():
                evaluations[direction].append(ev)
    done = TrialsResult(cfg.out, tuple(runs), {d: tuple(e) for d, e in evaluations.items()})
    if evaluate:
        outputs.write_text(
            cfg.out / "trials.json", json.dumps(done.to_dict(), indent=2), "trial summary"
        )
    return done


def _both_directions(cfg: TrainConfig, checkpoint: Path, progress: bool) -> dict[str, Evaluation]:
    """The trial's test set ranked both ways on one set of features."""
    backend = registry.get(cfg.backend)
    model, spec = load_trained(backend, checkpoint, device=cfg.device)
    index = read_dataset("regdb", cfg.root, trial=cfg.trial)
    features = extract_test_features(
        backend,
        model,
        spec,
        index,
        flip=cfg.protocol.flip,
        cache_dir=cfg.cache_dir,
        progress=progress,
    )
    return {
        d: evaluate_features(
            features, spec, index, cfg.protocol.model_copy(update={"direction": d})
        )
        for d in DIRECTIONS
    }
