"""Individual ranked lists (vdreid.eval.retrieval): the metrics' order, kept per query."""

from __future__ import annotations

import numpy as np
import pytest

from vdreid.data.records import Modality
from vdreid.errors import ConfigError, DataError
from vdreid.eval import rank
from vdreid.eval.retrieval import RankedItem, first_match, nearest, ranked_lists


def _loop_first_match(dist, positive, removed):
    """Per query: sort kept items by (distance, index), 1-based position of the first positive."""
    out = []
    for d, p, r in zip(dist, positive, removed, strict=True):
        kept = [j for j in range(len(d)) if not r[j]]
        order = sorted(kept, key=lambda j: (d[j] + 0.0, j))
        out.append(next((k + 1 for k, j in enumerate(order) if p[j]), 0))
    return np.array(out)


def test_nearest_breaks_ties_by_gallery_index_and_counts_minus_zero_as_zero():
    d = np.array([[0.5, 0.1, 0.1, 0.0, -0.0]])
    idx, dist = nearest(d, 4)
    assert idx.tolist() == [[3, 4, 1, 2]]
    assert dist[0, :2].tolist() == [0.0, 0.0] and dist[0, 2:].tolist() == [0.1, 0.1]


def test_nearest_drops_removed_items_and_pads_short_rows():
    d = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    removed = np.array([[True, False, False], [True, True, False]])
    idx, dist = nearest(d, 3, removed)
    assert idx.tolist() == [[1, 2, -1], [2, -1, -1]]
    assert np.isnan(dist[0, 2]) and np.isnan(dist[1, 1:]).all()


def test_first_match_equals_a_per_query_sort_on_tied_random_distances():
    rng = np.random.default_rng(0)
    dist = rng.integers(0, 6, (40, 30)).astype(np.float64)  # many exact ties
    dist[rng.random(dist.shape) < 0.1] = -0.0
    positive = rng.random(dist.shape) < 0.15
    removed = rng.random(dist.shape) < 0.2
    removed[0] |= positive[0]  # query 0 keeps no positive
    ranks, index = first_match(dist, positive, removed)
    assert (ranks == _loop_first_match(dist, positive, removed)).all()
    assert (ranks == 0).any()  # some query lost its positives: rank 0, index -1
    assert (index[ranks == 0] == -1).all()
    for q in np.flatnonzero(ranks):
        assert positive[q, index[q]] and not removed[q, index[q]]


def test_rank_1_of_the_lists_is_the_metrics_rank_1():
    """Search and evaluation rank identically: CMC(1) from vdreid.eval.rank."""
    rng = np.random.default_rng(1)
    q_pids, g_pids = rng.integers(0, 8, 50), rng.integers(0, 8, 60)
    dist = np.round(rng.random((50, 60)), 1)  # ties decide many rank-1s
    result = rank(dist, q_pids, g_pids, cmc="image", max_rank=1)
    ranks, _ = first_match(dist, q_pids[:, None] == g_pids[None, :])
    valid = ranks > 0
    assert result.num_valid == valid.sum()
    assert result.cmc[0] == pytest.approx((ranks[valid] == 1).mean())


def _items(pids, modality=Modality.VISIBLE):
    return [RankedItem(f"/img/{i}.jpg", modality, p) for i, p in enumerate(pids)]


def test_ranked_lists_order_best_and_worst_by_first_true_match():
    queries = _items([0, 1, 2, 3], Modality.INFRARED)
    gallery = _items([0, 1, 2, 9])
    # first true match ranks: q0 -> 1, q1 -> 4, q2 -> 2, q3 -> none
    dist = np.array(
        [
            [0.1, 0.5, 0.6, 0.7],
            [0.2, 0.9, 0.3, 0.1],
            [0.5, 0.2, 0.3, 0.9],
            [0.1, 0.2, 0.3, 0.4],
        ]
    )
    given = ranked_lists(queries, gallery, dist, top_k=2)
    assert [r.first_match for r in given] == [1, 4, 2, 0]
    best = ranked_lists(queries, gallery, dist, top_k=2, order="best")
    worst = ranked_lists(queries, gallery, dist, top_k=2, order="worst", limit=2)
    assert [r.query.pid for r in best] == [0, 2, 1]  # q3 has no true match: not judged
    assert [r.query.pid for r in worst] == [1, 2]
    q1 = worst[0]
    assert [m.rank for m in q1.matches] == [1, 2] and [m.pid for m in q1.matches] == [9, 0]
    assert [q1.is_true(m) for m in q1.matches] == [False, False]
    # its true match ranks below the two shown: the list carries it
    assert q1.first_true is not None and (q1.first_true.pid, q1.first_true.rank) == (1, 4)
    assert q1.first_true.distance == pytest.approx(0.9)
    assert best[0].first_true is None


def test_unknown_identities_leave_matches_unjudged():
    queries = [RankedItem("/q.jpg", Modality.INFRARED)]
    gallery = _items([0, 1])
    (only,) = ranked_lists(queries, gallery, np.array([[0.3, 0.1]]), top_k=5)
    assert only.first_match is None and [only.is_true(m) for m in only.matches] == [None, None]
    with pytest.raises(ConfigError, match="no query has an identity"):
        ranked_lists(queries, gallery, np.array([[0.3, 0.1]]), top_k=5, order="worst")
    d = only.to_dict()
    assert d["query"]["modality"] == "infrared" and d["matches"][0]["true_match"] is None
    assert d["matches"][0]["rank"] == 1 and d["matches"][0]["path"] == "/img/1.jpg"


def test_bad_shapes_and_orders_are_refused():
    with pytest.raises(DataError, match="expected \\(1, 2\\)"):
        ranked_lists(_items([0]), _items([0, 1]), np.zeros((2, 2)), top_k=1)
    with pytest.raises(ConfigError, match="order 'sideways'"):
        ranked_lists(_items([0]), _items([0]), np.zeros((1, 1)), top_k=1, order="sideways")
    with pytest.raises(DataError, match="k must be >= 1"):
        nearest(np.zeros((1, 1)), 0)
