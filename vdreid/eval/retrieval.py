"""Individual queries' ranked lists: the top k of each, and where its first true match is.

The order is the metrics' (docs/evaluation.md): gallery items sorted by
(distance, gallery index), ``-0.0`` equal to ``+0.0``, removed items
dropped. :func:`vdreid.eval.rank` reduces whole rankings to CMC / mAP;
these functions keep the individual lists that search results and
ranked-list pictures show.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from vdreid.data.records import Modality
from vdreid.errors import ConfigError, DataError

#: Orders of a set of ranked lists: as given, or by the rank of each
#: query's first true match (best: rank 1 first; worst: last first).
ORDERS = ("given", "best", "worst")


def _check(dist: np.ndarray, mask: np.ndarray | None, name: str) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != dist.shape:
        raise DataError(
            f"{name} has shape {mask.shape}, expected {dist.shape} (one entry per query and "
            "gallery item)"
        )
    return mask


def nearest(
    dist: np.ndarray, k: int, removed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances), each (queries, k): every row's k nearest gallery
    items that are not ``removed``, nearest first. A row with fewer than k
    items left is padded with index -1 and distance NaN."""
    dist = np.asarray(dist, dtype=np.float64)
    if dist.ndim != 2:
        raise DataError(f"distances have shape {dist.shape}, expected (queries, gallery)")
    if k < 1:
        raise DataError(f"k must be >= 1, got {k}")
    gone = _check(dist, removed, "removed")
    if gone is None:
        gone = np.zeros(dist.shape, dtype=bool)
    # lexsort is stable: kept items first, then by distance, then by gallery index
    order = np.lexsort((dist + 0.0, gone), axis=-1)[:, :k]  # + 0.0 turns -0.0 into +0.0
    picked = np.take_along_axis(dist, order, axis=1)
    left = np.take_along_axis(gone, order, axis=1)
    order[left] = -1
    picked[left] = np.nan
    return order.astype(np.int64), picked


def first_match(
    dist: np.ndarray, positive: np.ndarray, removed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(rank, index) per query of its nearest positive among the items not
    ``removed``: the 1-based rank and the gallery index; (0, -1) for a
    query without any positive left."""
    dist = np.asarray(dist, dtype=np.float64) + 0.0  # -0.0 == +0.0, as in the metrics
    pos = _check(dist, positive, "positive")
    gone = _check(dist, removed, "removed")
    kept = np.ones(dist.shape, dtype=bool) if gone is None else ~gone
    assert pos is not None
    pos = pos & kept
    has = pos.any(axis=1)
    # the nearest positive; argmin takes the lowest index among equal distances
    best = np.argmin(np.where(pos, dist, np.inf), axis=1)
    d_best = dist[np.arange(len(dist)), best][:, None]
    index = np.arange(dist.shape[1])[None, :]
    before = kept & ((dist < d_best) | ((dist == d_best) & (index < best[:, None])))
    rank = np.where(has, before.sum(axis=1) + 1, 0).astype(np.int64)
    return rank, np.where(has, best, -1).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class RankedItem:
    """An image in a ranked list: the query, or a gallery item with its rank
    (1-based) and distance. ``pid`` is None when its identity is unknown."""

    path: str
    modality: Modality
    pid: int | None = None
    rank: int | None = None
    distance: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "modality": "infrared" if self.modality == Modality.INFRARED else "visible",
            "pid": self.pid,
        }
        if self.rank is not None:
            out.update(rank=self.rank, distance=self.distance)
        return out


@dataclasses.dataclass(frozen=True)
class RankedList:
    """One query and its nearest gallery items, nearest first.

    ``first_match``: the rank of the nearest true match in the whole list
    (not only the items shown); 0 when the gallery holds none; None when
    the query's identity is unknown. ``first_true``: that gallery item when
    it ranks below the items shown, else None.
    """

    query: RankedItem
    matches: tuple[RankedItem, ...]
    first_match: int | None
    first_true: RankedItem | None = None

    def is_true(self, item: RankedItem) -> bool | None:
        """Whether ``item`` shows the query's person; None when either identity is unknown."""
        if self.query.pid is None or item.pid is None:
            return None
        return item.pid == self.query.pid

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query.to_dict(),
            "first_match": self.first_match,
            "first_true": None if self.first_true is None else self.first_true.to_dict(),
            "matches": [m.to_dict() | {"true_match": self.is_true(m)} for m in self.matches],
        }


def ranked_lists(
    queries: Sequence[RankedItem],
    gallery: Sequence[RankedItem],
    dist: np.ndarray,
    *,
    top_k: int,
    removed: np.ndarray | None = None,
    order: str = "given",
    limit: int | None = None,
) -> list[RankedList]:
    """Each query's top ``top_k`` gallery items (``dist`` is queries x gallery),
    ordered by ``order`` (:data:`ORDERS`) and cut to ``limit`` lists.

    ``best`` and ``worst`` need the queries' identities and leave out the
    queries that cannot be judged (unknown identity, no true match left).
    """
    if order not in ORDERS:
        raise ConfigError(f"order {order!r} is not known; use one of {', '.join(ORDERS)}")
    dist = np.asarray(dist, dtype=np.float64)
    if dist.shape != (len(queries), len(gallery)):
        raise DataError(
            f"distances have shape {dist.shape}, expected ({len(queries)}, {len(gallery)}) "
            "(queries x gallery)"
        )
    first, where = _first_matches(queries, gallery, dist, removed)
    rows = list(range(len(queries)))
    if order != "given":
        ranks = {q: r for q in rows if (r := first[q]) is not None and r > 0}
        judged = list(ranks)
        if not judged:
            raise ConfigError(
                f"order {order!r} ranks queries by their first true match, but no query has an "
                "identity with a true match in the gallery; give the identities (--dataset and "
                "--root) or use order 'given'"
            )
        sign = 1 if order == "best" else -1
        rows = sorted(judged, key=lambda q: (sign * ranks[q], q))
    rows = rows[:limit] if limit is not None else rows
    chosen = np.asarray(rows, dtype=np.int64)
    idx, near = nearest(dist[chosen], top_k, None if removed is None else removed[chosen])
    out = []
    for row, q in enumerate(rows):
        matches = tuple(
            dataclasses.replace(gallery[g], rank=r + 1, distance=float(near[row, r]))
            for r, g in enumerate(idx[row])
            if g >= 0
        )
        below = first[q] is not None and first[q] > len(matches)  # type: ignore[operator]
        first_true = (
            dataclasses.replace(gallery[where[q]], rank=first[q], distance=float(dist[q, where[q]]))
            if below
            else None
        )
        out.append(RankedList(queries[q], matches, first[q], first_true))
    return out


def _first_matches(
    queries: Sequence[RankedItem],
    gallery: Sequence[RankedItem],
    dist: np.ndarray,
    removed: np.ndarray | None,
) -> tuple[list[int | None], np.ndarray]:
    """Each query's first-true-match rank (None: identity unknown) and its gallery index."""
    known = np.array([q.pid is not None for q in queries], dtype=bool)
    if not known.any() or not gallery:
        return [None] * len(queries), np.full(len(queries), -1, np.int64)
    q_pids = np.array([-1 if q.pid is None else q.pid for q in queries], dtype=np.int64)
    g_pids = np.array([-2 if g.pid is None else g.pid for g in gallery], dtype=np.int64)
    rank, index = first_match(dist, q_pids[:, None] == g_pids[None, :], removed)
    return [int(r) if k else None for r, k in zip(rank, known, strict=True)], index
