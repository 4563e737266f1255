"""Evaluate a trained model: checkpoint -> backend -> features -> protocol.

Used by `vdreid eval` and by the final evaluation of `vdreid train`. A
checkpoint is required and must match its spec exactly: vdreid never
evaluates an untrained (or partly loaded) network.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from vdreid import outputs, registry
from vdreid.backend import Backend
from vdreid.checkpoint import load_checkpoint, model_state, read_metadata
from vdreid.config import ProtocolConfig
from vdreid.data.readers import read_dataset
from vdreid.data.records import DatasetIndex, Record
from vdreid.errors import CheckpointError, ConfigError
from vdreid.eval.evaluate import EvalResult, evaluate_trials
from vdreid.eval.protocols import DEFAULT_DIRECTION, protocol_trials
from vdreid.eval.trials import Trial
from vdreid.spec.model import ModelSpec
from vdreid.workflows.features import extract_features, open_cache
from vdreid.workflows.run_dir import META_DATASET, META_TRIAL


@dataclasses.dataclass(frozen=True)
class Evaluation:
    dataset: str
    protocol: ProtocolConfig
    distance: str
    result: EvalResult
    direction: str = "t2v"  # resolved: the protocol's, else the dataset's default
    trial: int | None = None  # RegDB's split
    # Not saved; for pictures of individual queries (workflows/pictures.py):
    # one feature row per test record, the records, the protocol's trials.
    features: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)
    records: tuple[Record, ...] = dataclasses.field(default=(), repr=False, compare=False)
    trials: tuple[Trial, ...] = dataclasses.field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "trial": self.trial,
            "protocol": {**self.protocol.model_dump(), "direction": self.direction},
            **self.result.to_dict(),
        }

    def title(self) -> str:
        """What was evaluated, in one line: every choice that changes the numbers."""
        p = self.protocol
        parts = (
            [f"{p.mode}-search, {p.shots}-shot, {p.sampler} sampler"]
            if self.dataset == "sysu"
            else []
        )
        if self.trial is not None:
            parts.append(f"trial {self.trial}")
        parts += [
            self.direction,
            self.distance,
            "flip" if p.flip else "no flip",
            "re-ranked" if p.rerank else "no re-ranking",
        ]
        return f"{self.dataset}: " + ", ".join(parts)

    def save(self, path: Path) -> None:
        outputs.write_text(path, json.dumps(self.to_dict(), indent=2), "evaluation results")


def spec_distance(spec: ModelSpec, protocol: ProtocolConfig) -> str:
    """The protocol's distance, else the one the test-feature recipe implies.

    The msport recipe's inner product on per-block normalised features ranks
    exactly as cosine (every block has unit norm, so the whole vector has a
    constant norm).
    """
    if protocol.distance:
        return protocol.distance
    d = spec.test_feature.distance
    return "cosine" if d == "inner_product" else d


def protocol_config_trials(
    index: DatasetIndex, protocol: ProtocolConfig, *, count: int | None = None
) -> list[Trial]:
    """The trials ``protocol`` asks for on ``index``; ``count`` replaces the
    number of trials of the sampled protocols (SYSU-MM01, LLCM)."""
    return protocol_trials(
        index,
        mode=protocol.mode,
        shots=protocol.shots,
        sampler=protocol.sampler,
        direction=protocol.direction,
        trials=(count or protocol.trials) if index.name in ("sysu", "llcm") else None,
    )


def evaluate_model(
    backend: Backend,
    model: Any,
    spec: ModelSpec,
    index: DatasetIndex,
    protocol: ProtocolConfig,
    *,
    cache_dir: Path | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> Evaluation:
    """Features once per test image, then every trial of the dataset's protocol."""
    ranked = protocol_config_trials(index, protocol)  # a bad protocol stops before the features
    features = extract_test_features(
        backend,
        model,
        spec,
        index,
        flip=protocol.flip,
        cache_dir=cache_dir,
        batch_size=batch_size,
        progress=progress,
    )
    return evaluate_features(features, spec, index, protocol, ranked)


def extract_test_features(
    backend: Backend,
    model: Any,
    spec: ModelSpec,
    index: DatasetIndex,
    *,
    flip: bool,
    cache_dir: Path | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> np.ndarray:
    """One feature row per ``index.test`` record."""
    cache = open_cache(
        index.test, (spec.input.height, spec.input.width), index.root, cache_dir, progress=progress
    )
    return extract_features(
        backend,
        model,
        cache,
        batch_size=batch_size,
        flip=flip,
        progress=progress,
        description="test features",
    )


def evaluate_features(
    features: np.ndarray,
    spec: ModelSpec,
    index: DatasetIndex,
    protocol: ProtocolConfig,
    trials: list[Trial] | None = None,
) -> Evaluation:
    """The protocol's trials ranked on ``features`` (extract_test_features)."""
    trials = protocol_config_trials(index, protocol) if trials is None else trials
    distance = spec_distance(spec, protocol)
    result = evaluate_trials(
        features, index.test, trials, distance=distance, rerank=protocol.rerank
    )
    direction = protocol.direction or DEFAULT_DIRECTION[index.name]
    return Evaluation(
        index.name,
        protocol,
        distance,
        result,
        direction=direction,
        trial=index.trial,
        features=features,
        records=index.test,
        trials=tuple(trials),
    )


def load_trained(
    backend: Backend, checkpoint: Path, *, device: str | None = None
) -> tuple[Any, ModelSpec]:
    """Build the checkpoint's model on ``backend`` and load every weight (strict)."""
    ckpt = load_checkpoint(checkpoint)
    if ckpt.spec is None:
        raise CheckpointError(
            f"checkpoint {checkpoint} carries no model spec in its metadata; expected one written by "
            "`vdreid train` (or save_checkpoint(..., spec=...)); re-save it with its spec"
        )
    model = backend.build(ckpt.spec, device=device)
    backend.set_state(
        model, model_state(ckpt.tensors)
    )  # strict: raises CheckpointError listing mismatches
    return model, ckpt.spec


def evaluate_checkpoint(
    backend_name: str,
    checkpoint: Path,
    dataset: str,
    root: Path,
    protocol: ProtocolConfig,
    *,
    trial: int | None = None,
    any_trial: bool = False,
    device: str | None = None,
    cache_dir: Path | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> Evaluation:
    """``trial`` (RegDB): the checkpoint's own by default (evaluation_trial)."""
    trial = evaluation_trial(checkpoint, dataset, root, trial, any_trial=any_trial)
    index = read_dataset(dataset, root, trial=trial)
    backend = registry.get(backend_name)
    model, spec = load_trained(backend, checkpoint, device=device)
    return evaluate_model(
        backend,
        model,
        spec,
        index,
        protocol,
        cache_dir=cache_dir,
        batch_size=batch_size,
        progress=progress,
    )


def evaluation_trial(
    checkpoint: Path, dataset: str, root: Path, trial: int | None, *, any_trial: bool = False
) -> int | None:
    """The RegDB trial to evaluate: the one the checkpoint was trained on.

    A RegDB trial is a random half of the identities for training and the
    other half for testing, so another trial's test identities include about
    half of the model's training identities: its numbers would be inflated.
    Another ``trial`` is refused unless ``any_trial``; a RegDB checkpoint that
    records no trial (written before vdreid recorded it) needs ``trial``.
    Checkpoints of other datasets (cross-dataset evaluation) take ``trial``
    as given.
    """
    if dataset != "regdb":
        return trial
    meta = read_metadata(checkpoint)
    if meta.get(META_DATASET) != "regdb":
        return trial
    if META_TRIAL not in meta:
        if trial is None:
            raise ConfigError(
                f"{checkpoint} was trained on RegDB but does not record which trial; pass "
                "--trial N, the trial it was trained on"
            )
        return trial
    trained = int(meta[META_TRIAL])
    if trial is None or trial == trained or any_trial:
        return trained if trial is None else trial
    seen = {r.pid for r in read_dataset("regdb", root, trial=trained).train}
    tested = {r.pid for r in read_dataset("regdb", root, trial=trial).test}
    raise ConfigError(
        f"{checkpoint} was trained on RegDB trial {trained}, and {len(tested & seen)} of trial "
        f"{trial}'s {len(tested)} test identities were among its training identities: the "
        f"numbers would be inflated. Evaluate trial {trained} (leave --trial out), or pass "
        f"--any-trial to evaluate trial {trial} anyway"
    )


def summary_rows(evaluation: Evaluation) -> list[tuple[str, str]]:
    """(metric, "mean +- std") in the order R1, R5, R10, R20, mAP, mINP."""
    return [(name, format_summary(v)) for name, v in evaluation.result.summary().items()]


def format_summary(value: dict[str, float]) -> str:
    """{"mean": m, "std": s} (percent) as "m ± s"."""
    return f"{value['mean']:.2f} ± {value['std']:.2f}"
