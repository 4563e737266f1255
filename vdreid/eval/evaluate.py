"""Evaluate features of every test record over a protocol's trials.

The workflow computes features for all test records once (one row per
record, in ``index.test`` order) and hands them here with the trials of
:func:`vdreid.eval.protocols.protocol_trials`. Trials that share their
queries (all of a protocol's) get their distances from ONE query x (union
of their galleries) matrix, so 10 trials cost at most one matrix product of
the union's size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from vdreid.data.records import Record, arrays
from vdreid.errors import ConfigError, DataError
from vdreid.eval.distance import DISTANCES, check_features, pairwise_distance
from vdreid.eval.metrics import RankResult, rank
from vdreid.eval.trials import Trial

#: The CMC ranks reported (percent), with mAP and mINP.
REPORTED_RANKS = (1, 5, 10, 20)
MAX_RANK = max(REPORTED_RANKS)


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Per-trial results and their mean and std (population, ddof 0) in percent."""

    trials: tuple[RankResult, ...]
    distance: str
    rerank: bool

    def metrics(self) -> dict[str, np.ndarray]:
        """Percent values over the trials: R1, R5, R10, R20, mAP, mINP."""
        out = {
            f"R{k}": np.array([100.0 * t.cmc[k - 1] for t in self.trials]) for k in REPORTED_RANKS
        }
        out["mAP"] = np.array([100.0 * t.mAP for t in self.trials])
        out["mINP"] = np.array([100.0 * t.mINP for t in self.trials])
        return out

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            name: {"mean": float(v.mean()), "std": float(v.std())}
            for name, v in self.metrics().items()
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "distance": self.distance,
            "rerank": self.rerank,
            "num_trials": len(self.trials),
            "summary": self.summary(),
            "trials": [t.to_dict() for t in self.trials],
        }


def evaluate_trials(
    features: np.ndarray,
    test_records: Sequence[Record],
    trials: Sequence[Trial],
    *,
    distance: str = "euclidean",
    rerank: bool = False,
) -> EvalResult:
    """Rank every trial with ``features`` (one row per test record) and average."""
    feats = check_features("features", features)
    if len(feats) != len(test_records):
        raise DataError(
            f"features has {len(feats)} rows but there are {len(test_records)} test records; "
            "expected one feature row per test record, in index.test order"
        )
    if distance not in DISTANCES:
        raise ConfigError(f"distance={distance!r} is not known; use one of {DISTANCES}")
    if not trials:
        raise DataError("no trials to evaluate; build them with protocol_trials(index)")
    pids, cams, _ = arrays(test_records)
    results = []
    shared: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}  # query set -> (union, distances)
    for trial in trials:
        _check_indices(trial, len(test_records))
        q, gal = trial.query, trial.gallery
        if rerank:
            from vdreid.eval.rerank import k_reciprocal_rerank

            dist = k_reciprocal_rerank(feats[q], feats[gal], distance=distance)
        else:
            key = q.tobytes()
            if key not in shared:
                union = np.unique(
                    np.concatenate([t.gallery for t in trials if np.array_equal(t.query, q)])
                )
                shared[key] = (union, pairwise_distance(feats[q], feats[union], distance))
            union, full = shared[key]
            dist = full[:, np.searchsorted(union, gal)]
        results.append(
            rank(
                dist,
                pids[q],
                pids[gal],
                cams[q],
                cams[gal],
                cmc=trial.cmc,
                removal=trial.removal,
                max_rank=MAX_RANK,
            )
        )
    return EvalResult(trials=tuple(results), distance=distance, rerank=rerank)


def _check_indices(trial: Trial, n: int) -> None:
    for name, idx in (("query", trial.query), ("gallery", trial.gallery)):
        if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
            raise DataError(
                f"a trial's {name} indices span {idx.min() if idx.size else '-'}.."
                f"{idx.max() if idx.size else '-'}; expected indices into the {n} test records - "
                "build trials from the same records as the features"
            )
