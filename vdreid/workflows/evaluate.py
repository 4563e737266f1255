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
from vdreid.checkpoint import load_checkpoint, model_state
from vdreid.config import ProtocolConfig
from vdreid.data.readers import read_dataset
from vdreid.data.records import DatasetIndex, Record
from vdreid.errors import CheckpointError
from vdreid.eval.evaluate import EvalResult, evaluate_trials
from vdreid.eval.protocols import protocol_trials
from vdreid.eval.trials import Trial
from vdreid.spec.model import ModelSpec
from vdreid.workflows.features import extract_features, open_cache


@dataclasses.dataclass(frozen=True)
class Evaluation:
    dataset: str
    protocol: ProtocolConfig
    distance: str
    result: EvalResult
    # Not saved; for pictures of individual queries (workflows/pictures.py):
    # one feature row per test record, the records, the protocol's trials.
    features: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)
    records: tuple[Record, ...] = dataclasses.field(default=(), repr=False, compare=False)
    trials: tuple[Trial, ...] = dataclasses.field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "protocol": self.protocol.model_dump(),
            **self.result.to_dict(),
        }

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
    trials = protocol_config_trials(index, protocol)
    cache = open_cache(
        index.test, (spec.input.height, spec.input.width), index.root, cache_dir, progress=progress
    )
    features = extract_features(
        backend,
        model,
        cache,
        batch_size=batch_size,
        flip=protocol.flip,
        progress=progress,
        description="test features",
    )
    distance = spec_distance(spec, protocol)
    result = evaluate_trials(
        features, index.test, trials, distance=distance, rerank=protocol.rerank
    )
    return Evaluation(index.name, protocol, distance, result, features, index.test, tuple(trials))


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
    device: str | None = None,
    cache_dir: Path | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> Evaluation:
    backend = registry.get(backend_name)
    model, spec = load_trained(backend, checkpoint, device=device)
    index = read_dataset(dataset, root, trial=trial)
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


def summary_rows(evaluation: Evaluation) -> list[tuple[str, str]]:
    """(metric, "mean +- std") in the order R1, R5, R10, R20, mAP, mINP."""
    return [
        (name, f"{v['mean']:.2f} ± {v['std']:.2f}")
        for name, v in evaluation.result.summary().items()
    ]
