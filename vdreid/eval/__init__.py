"""Evaluation: distances, ranking metrics (CMC, mAP, mINP), dataset protocols,
flip test-time augmentation and k-reciprocal re-ranking. numpy only.

Typical use, features for every test record computed once::

    trials = protocol_trials(index, mode="all", shots=1, sampler="official")
    result = evaluate_trials(features, index.test, trials, distance="euclidean")
    result.to_dict()["summary"]["R1"]  # {"mean": ..., "std": ...} in percent

See docs/evaluation.md for the protocols and definitions.
"""

from __future__ import annotations

from vdreid.eval.distance import DISTANCES, l2_normalise, pairwise_distance
from vdreid.eval.evaluate import EvalResult, evaluate_trials
from vdreid.eval.features import combine_flip
from vdreid.eval.metrics import RankResult, rank
from vdreid.eval.protocols import (
    llcm_trials,
    manifest_trials,
    protocol_trials,
    regdb_trials,
)
from vdreid.eval.rerank import k_reciprocal_rerank
from vdreid.eval.sysu import sysu_trials
from vdreid.eval.trials import Trial, count_valid_queries

__all__ = [
    "DISTANCES",
    "EvalResult",
    "RankResult",
    "Trial",
    "combine_flip",
    "count_valid_queries",
    "evaluate_trials",
    "k_reciprocal_rerank",
    "l2_normalise",
    "llcm_trials",
    "manifest_trials",
    "pairwise_distance",
    "protocol_trials",
    "rank",
    "regdb_trials",
    "sysu_trials",
]
