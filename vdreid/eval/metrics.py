"""CMC, mAP and mINP of a query x gallery distance matrix, vectorised.

Definitions (docs/evaluation.md): the gallery is ranked by (distance,
gallery index); a removal rule drops items per query; a query is valid when
a positive (same identity) is left. Over the kept list with G positives at
1-based ranks r_1 < ... < r_G: AP = mean_j j / r_j, INP = G / r_G. CMC(k)
is the fraction of valid queries whose first positive is within the first k
images ("image") or whose identity is within the first k distinct
identities ("identity"). Every average divides by the valid queries only.

Queries are processed in chunks (bounded memory); each chunk is ranked by
:func:`vdreid.eval.ordering.ranked_codes`, and the metrics are read from the
positions of the positives, without a Python loop over queries.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from vdreid.errors import ConfigError, DataError, NumericalError
from vdreid.eval.ordering import code_bits, ranked_codes

CMC_KINDS = ("identity", "image")
REMOVALS = (None, "sysu", "llcm")

#: Distances handled per chunk (rows x gallery); keeps the working set in cache.
CHUNK_ELEMENTS = 1 << 17


@dataclasses.dataclass(frozen=True)
class RankResult:
    """Metrics of one query x gallery ranking, as fractions in [0, 1]."""

    cmc: np.ndarray  # exactly max_rank entries, CMC(1..max_rank)
    mAP: float
    mINP: float
    num_valid: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "cmc": [float(v) for v in self.cmc],
            "mAP": self.mAP,
            "mINP": self.mINP,
            "num_valid": self.num_valid,
        }


def removed_items(
    removal: str | None,
    q_pids: np.ndarray,
    q_cams: np.ndarray | None,
    g_pids: np.ndarray,
    g_cams: np.ndarray | None,
) -> np.ndarray | None:
    """(queries, gallery) mask of the items each query ignores, or None (none).

    ``sysu``: a query from camera 3 ignores every camera-2 item (same room),
    whatever its identity. ``llcm``: same identity and same camera number.
    """
    if removal is None:
        return None
    assert q_cams is not None and g_cams is not None
    if removal == "sysu":
        return (q_cams == 3)[:, None] & (g_cams == 2)[None, :]
    return (q_pids[:, None] == g_pids[None, :]) & (q_cams[:, None] == g_cams[None, :])


def _as_vector(name: str, values: Any, length: int, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or len(arr) != length:
        raise DataError(
            f"{name} has shape {arr.shape}, expected ({length},) (one entry per {what}); "
            "pass one value per row/column of the distance matrix"
        )
    return arr


def _check_inputs(distmat, q_pids, g_pids, q_cams, g_cams, cmc, removal, max_rank):
    dist = np.asarray(distmat, dtype=np.float64)
    if dist.ndim != 2:
        raise DataError(
            f"distmat has shape {dist.shape}, expected a 2-D (queries x gallery) matrix"
        )
    nq, ng = dist.shape
    if nq == 0 or ng == 0:
        raise DataError(
            f"distmat has shape {dist.shape}: {nq} queries x {ng} gallery items; expected at "
            "least one of each - check the trial's query and gallery selection"
        )
    if cmc not in CMC_KINDS:
        raise ConfigError(f"cmc={cmc!r} is not a CMC kind; use one of {CMC_KINDS}")
    if removal not in REMOVALS:
        raise ConfigError(f"removal={removal!r} is not a removal rule; use one of {REMOVALS}")
    if isinstance(max_rank, bool) or not isinstance(max_rank, int | np.integer) or max_rank < 1:
        raise ConfigError(f"max_rank={max_rank!r}; expected an integer >= 1")
    q_pids = _as_vector("q_pids", q_pids, nq, "query (distmat row)")
    g_pids = _as_vector("g_pids", g_pids, ng, "gallery item (distmat column)")
    if (q_cams is None) != (g_cams is None):
        raise DataError("give both q_cams and g_cams, or neither")
    if q_cams is not None:
        q_cams = _as_vector("q_cams", q_cams, nq, "query (distmat row)")
        g_cams = _as_vector("g_cams", g_cams, ng, "gallery item (distmat column)")
    elif removal is not None:
        raise DataError(f"removal={removal!r} needs q_cams and g_cams; pass the cameras")
    return dist, q_pids, g_pids, q_cams, g_cams


def rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_cams: np.ndarray | None = None,
    g_cams: np.ndarray | None = None,
    *,
    cmc: str = "identity",
    removal: str | None = None,
    max_rank: int = 20,
    threads: int | None = None,
) -> RankResult:
    """Rank every query's gallery and return CMC, mAP, mINP over the valid queries.

    ``threads`` chunks run at once (default: the CPU count); results do not
    depend on it.
    """
    dist, q_pids, g_pids, q_cams, g_cams = _check_inputs(
        distmat, q_pids, g_pids, q_cams, g_cams, cmc, removal, max_rank
    )
    nq, ng = dist.shape
    labels, g_codes = np.unique(g_pids, return_inverse=True)
    g_codes = g_codes.astype(np.int64).reshape(-1)
    q_codes = np.full(nq, -1, dtype=np.int64)  # -1: identity absent from the gallery
    if len(labels):
        found = np.searchsorted(labels, q_pids).clip(0, len(labels) - 1)
        q_codes = np.where(labels[found] == q_pids, found, -1).astype(np.int64)
    bits = code_bits(len(labels))

    step = max(1, CHUNK_ELEMENTS // max(ng, 1))

    def chunk_stats(start: int) -> tuple[np.ndarray, float, float, int]:
        rows = slice(start, start + step)
        block = dist[rows]
        if np.isnan(block).any():  # checked per chunk, while the chunk is in cache
            _raise_nan(dist)
        cams = None if q_cams is None else q_cams[rows]
        removed = removed_items(removal, q_pids[rows], cams, g_pids, g_cams)
        ranked = ranked_codes(block, g_codes, bits, removed)
        first, ap, inp = _positive_ranks(ranked, q_codes[rows])
        valid = first >= 0
        if cmc == "identity":
            first = _identity_ranks(ranked, first, len(labels))
        # hits[r]: first hit at 0-based rank r; the last slot counts every rank beyond.
        hits = np.bincount(np.minimum(first[valid], max_rank), minlength=max_rank + 1)
        return hits, float(ap[valid].sum()), float(inp[valid].sum()), int(valid.sum())

    starts = range(0, nq, step)
    workers = min(threads or os.cpu_count() or 1, len(starts))
    if workers > 1:  # numpy releases the GIL in sort and ufuncs
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(chunk_stats, starts))
    else:
        parts = [chunk_stats(s) for s in starts]
    hits = sum((p[0] for p in parts), np.zeros(max_rank + 1, dtype=np.int64))
    ap_sum = sum(p[1] for p in parts)
    inp_sum = sum(p[2] for p in parts)
    num_valid = sum(p[3] for p in parts)
    if num_valid == 0:
        raise DataError(
            f"none of the {nq} queries has a positive (same identity) among the {ng} gallery "
            f"items left after removal={removal!r}; expected at least one - check that the "
            "query and gallery identities overlap"
        )
    curve = np.cumsum(hits[:max_rank]) / num_valid
    return RankResult(
        cmc=curve, mAP=ap_sum / num_valid, mINP=inp_sum / num_valid, num_valid=num_valid
    )


def _raise_nan(dist: np.ndarray) -> None:
    bad = int(np.isnan(dist).any(axis=1).sum())
    raise NumericalError(
        f"the distance matrix holds NaN in {bad} of {len(dist)} query rows; expected finite "
        "distances - check the features (a diverged checkpoint gives NaN features)"
    )


def _positive_ranks(ranked: np.ndarray, q_codes: np.ndarray):
    """Per row: 0-based position of the first positive (-1: none), AP and INP."""
    n, n_cols = ranked.shape
    # flatnonzero + divmod is several times faster than a 2-D np.nonzero
    rows, cols = np.divmod(np.flatnonzero(ranked == q_codes[:, None]), n_cols)
    count = np.bincount(rows, minlength=n)
    starts = np.cumsum(count) - count
    nth = np.arange(len(rows)) - starts[rows] + 1  # j: 1-based index among positives
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.bincount(rows, weights=nth / (cols + 1), minlength=n) / count
    valid = count > 0
    first = np.full(n, -1, dtype=np.int64)
    first[valid] = cols[starts[valid]]
    inp = np.zeros(n)
    inp[valid] = count[valid] / (cols[starts[valid] + count[valid] - 1] + 1)
    return first, ap, inp


def _identity_ranks(ranked: np.ndarray, first: np.ndarray, num_codes: int) -> np.ndarray:
    """0-based identity-level rank: distinct identities ranked before the first positive."""
    rows = np.flatnonzero(first > 0)
    lengths = first[rows]
    offsets = np.cumsum(lengths) - lengths
    flat_rows = np.repeat(rows, lengths)
    positions = np.arange(int(lengths.sum())) - np.repeat(offsets, lengths)
    seen = np.zeros((ranked.shape[0], num_codes), dtype=bool)
    seen[flat_rows, ranked[flat_rows, positions]] = True
    out = first.copy()
    out[first > 0] = seen[rows].sum(axis=1)
    return out
