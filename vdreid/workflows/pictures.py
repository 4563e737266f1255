"""Ranked lists of an evaluation protocol's queries, for pictures.

An evaluation reduces each trial to CMC / mAP; these lists keep individual
queries: trial 1's queries ranked against its gallery exactly as the
metrics rank them (same distance, re-ranking when the evaluation used it,
the protocol's removal rule, ties in gallery order), then ordered best- or
worst-first by the rank of each query's first true match.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vdreid.data.records import Record, arrays
from vdreid.errors import ConfigError
from vdreid.eval.distance import pairwise_distance
from vdreid.eval.metrics import removed_items
from vdreid.eval.rerank import k_reciprocal_rerank
from vdreid.eval.retrieval import RankedItem, RankedList, ranked_lists
from vdreid.eval.trials import Trial
from vdreid.report.figure import Picture
from vdreid.workflows.evaluate import Evaluation

#: Defaults of a ranked-list picture: queries shown, gallery images per query.
QUERIES = 8
TOP_K = 10


def trial_lists(
    records: Sequence[Record],
    trial: Trial,
    features: np.ndarray,
    rows: np.ndarray,
    *,
    distance: str,
    top_k: int = TOP_K,
    order: str = "worst",
    limit: int | None = QUERIES,
    queries: np.ndarray | None = None,
    rerank: bool = False,
) -> list[RankedList]:
    """Ranked lists of ``trial``; ``features[i]`` belongs to ``records[rows[i]]``.
    ``queries`` (indices into ``records``) limits the trial's queries to those."""
    where = {int(r): i for i, r in enumerate(rows)}
    q = trial.query if queries is None else np.asarray(queries, dtype=np.int64)
    g = trial.gallery
    missing = [int(i) for i in (*q, *g) if int(i) not in where]
    if missing:
        raise ConfigError(
            f"no features for {len(missing)} of the trial's images (first: {records[missing[0]].path})"
            "; compute features for every query and gallery image of the trial"
        )
    qf = features[[where[int(i)] for i in q]]
    gf = features[[where[int(i)] for i in g]]
    if rerank:
        dist = k_reciprocal_rerank(qf, gf, distance=distance)
    else:
        dist = pairwise_distance(qf, gf, distance)
    pids, cams, _ = arrays(records)
    removed = removed_items(trial.removal, pids[q], cams[q], pids[g], cams[g])
    return ranked_lists(
        [_item(records[i]) for i in q],
        [_item(records[i]) for i in g],
        dist,
        top_k=top_k,
        removed=removed,
        order=order,
        limit=limit,
    )


def _item(record: Record) -> RankedItem:
    return RankedItem(record.path, record.modality, record.pid)


def lists_title(
    lists: Sequence[RankedList], order: str, *, queries: int, gallery: int, distance: str
) -> str:
    """ "8 of 3803 infrared queries, worst first: top 10 of 301 visible gallery images (euclidean)"."""
    names = {0: "visible", 1: "infrared"}
    q_mod = int(lists[0].query.modality) if lists else 1
    k = max((len(r.matches) for r in lists), default=0)
    first = {"best": ", best first", "worst": ", worst first"}.get(order, "")
    return (
        f"{len(lists)} of {queries} {names[q_mod]} queries{first}: top {k} of {gallery} "
        f"{names[1 - q_mod]} gallery images ({distance})"
    )


def evaluation_picture(
    evaluation: Evaluation, *, order: str = "worst", queries: int = QUERIES, top_k: int = TOP_K
) -> Picture:
    """The ranked-list grid of the evaluation's first trial."""
    from vdreid.report.ranked_grid import ranked_grid

    if evaluation.features is None or not evaluation.trials:
        raise ConfigError(
            "this evaluation kept no features; evaluate with workflows.evaluate.evaluate_model"
        )
    trial = evaluation.trials[0]
    lists = trial_lists(
        evaluation.records,
        trial,
        evaluation.features,
        np.arange(len(evaluation.records)),
        distance=evaluation.distance,
        top_k=top_k,
        order=order,
        limit=queries,
        rerank=evaluation.result.rerank,
    )
    title = f"{evaluation.dataset} trial 1: " + lists_title(
        lists,
        order,
        queries=len(trial.query),
        gallery=len(trial.gallery),
        distance=evaluation.distance,
    )
    return ranked_grid(lists, title=title)
