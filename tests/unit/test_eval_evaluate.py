"""Distances, flip TTA, k-reciprocal re-ranking and evaluate_trials."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import vdreid.eval.distance as distance_module
import vdreid.eval.rerank as rerank_module
from vdreid.data.records import DatasetIndex, Modality, Record
from vdreid.errors import ConfigError, DataError, NumericalError
from vdreid.eval import (
    combine_flip,
    evaluate_trials,
    k_reciprocal_rerank,
    pairwise_distance,
    protocol_trials,
    rank,
)


def test_distances_match_their_definitions(monkeypatch):
    monkeypatch.setattr(distance_module, "BLOCK_ELEMENTS", 40)  # blocks of 6 rows each way
    rng = np.random.default_rng(0)
    q = rng.standard_normal((20, 6)).astype(np.float32)
    g = rng.standard_normal((15, 6)).astype(np.float32)
    qd, gd = q.astype(np.float64), g.astype(np.float64)
    euclid = pairwise_distance(q, g, "euclidean")
    assert euclid.dtype == np.float64
    np.testing.assert_allclose(euclid, np.linalg.norm(qd[:, None] - gd[None], axis=2), atol=1e-12)
    cos = pairwise_distance(q, g, "cosine")
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(cos, -unit(qd) @ unit(gd).T, atol=1e-12)
    with pytest.raises(ConfigError, match="distance="):
        pairwise_distance(q, g, "manhattan")
    with pytest.raises(DataError, match="expected a 2-D array"):
        pairwise_distance(q, g[:, :5])
    bad = q.copy()
    bad[3, 1] = np.nan
    with pytest.raises(NumericalError, match="1 of 20 rows"):
        pairwise_distance(bad, g)


def test_combine_flip_is_the_mean():
    f, h = np.arange(6.0).reshape(2, 3), np.ones((2, 3))
    np.testing.assert_array_equal(combine_flip(f, h), (f + h) / 2)
    with pytest.raises(DataError, match="one flipped feature per image"):
        combine_flip(f, h[:1])


def loop_rerank(q, g, k1, k2, lam):
    """Zhong et al. 2017 written out per image on the dense matrix (test oracle)."""
    f = np.vstack([q, g]).astype(np.float64)
    n, nq = len(f), len(q)
    d = ((f[:, None, :] - f[None, :, :]) ** 2).sum(-1)
    d = d / d.max(axis=1, keepdims=True)
    order = np.argsort(d, axis=1, kind="stable")

    def reciprocal(i, k):
        return [j for j in order[i, : k + 1] if i in order[j, : k + 1]]

    v = np.zeros((n, n))
    for i in range(n):
        r = reciprocal(i, k1)
        expanded = set(r)
        for j in r:
            h = reciprocal(j, int(np.around(k1 / 2)))
            if len(set(h) & set(r)) > 2 / 3 * len(h):
                expanded |= set(h)
        e = sorted(expanded)
        v[i, e] = np.exp(-d[i, e]) / np.exp(-d[i, e]).sum()
    if k2 > 1:
        v = np.stack([v[order[i, :k2]].mean(axis=0) for i in range(n)])
    m = np.minimum(v[:nq, None, :], v[None, nq:, :]).sum(-1)
    return (1 - lam) * (1 - m / (2 - m)) + lam * d[:nq, nq:]


@pytest.mark.parametrize("nq,ng,k1,k2", [(15, 25, 6, 3), (20, 30, 20, 6), (10, 12, 5, 1)])
def test_rerank_equals_the_dense_loop(nq, ng, k1, k2, monkeypatch):
    monkeypatch.setattr(rerank_module, "BLOCK_ROWS", 7)
    monkeypatch.setattr(rerank_module, "PAIR_CHUNK", 50)
    rng = np.random.default_rng(nq)
    q, g = rng.standard_normal((nq, 5)), rng.standard_normal((ng, 5))
    g[3] = g[4] = q[2]  # duplicates: ties broken by index
    got = k_reciprocal_rerank(q, g, k1=k1, k2=k2, lambda_value=0.3)
    np.testing.assert_allclose(got, loop_rerank(q, g, k1, k2, 0.3), atol=1e-12)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(
        k_reciprocal_rerank(q, g, k1=k1, k2=k2, distance="cosine"),
        loop_rerank(unit(q), unit(g), k1, k2, 0.3),
        atol=1e-12,
    )
    with pytest.raises(ConfigError, match="lambda_value"):
        k_reciprocal_rerank(q, g, lambda_value=2.0)


def synthetic_test_set(rng, n_ids=12, per=4, dim=16):
    """Records of two modalities whose features cluster by identity."""
    records, feats = [], []
    centres = rng.standard_normal((n_ids, dim))
    for pid in range(n_ids):
        for mod in Modality:
            for k in range(per):
                cam = 1 + k % 2
                records.append(Record(f"{mod.name}/{pid}/{k}.png", pid, cam, mod))
                feats.append(centres[pid] + 0.8 * rng.standard_normal(dim))
    return tuple(records), np.asarray(feats, dtype=np.float32)


def test_evaluate_trials_equals_ranking_each_trial_directly():
    rng = np.random.default_rng(3)
    records, feats = synthetic_test_set(rng)
    index = DatasetIndex(name="llcm", root=Path("."), train=(), test=records)
    trials = protocol_trials(index, trials=4)
    for distance in ("euclidean", "cosine"):
        result = evaluate_trials(feats, records, trials, distance=distance)
        pids = np.array([r.pid for r in records])
        cams = np.array([r.cam for r in records])
        for trial, got in zip(trials, result.trials, strict=True):
            q, g = trial.query, trial.gallery
            want = rank(
                pairwise_distance(feats[q], feats[g], distance),
                pids[q], pids[g], cams[q], cams[g],
                cmc=trial.cmc, removal=trial.removal,
            )  # fmt: skip
            np.testing.assert_allclose(got.cmc, want.cmc)
            assert (got.mAP, got.mINP, got.num_valid) == pytest.approx(
                (want.mAP, want.mINP, want.num_valid)
            )
        r1 = [100 * t.cmc[0] for t in result.trials]
        summary = json.loads(json.dumps(result.to_dict()))["summary"]
        assert summary["R1"]["mean"] == pytest.approx(np.mean(r1))
        assert summary["R1"]["std"] == pytest.approx(np.std(r1))
        assert set(summary) == {"R1", "R5", "R10", "R20", "mAP", "mINP"}
        assert summary["mAP"]["mean"] > 50  # the identity clusters are found


def test_evaluate_trials_with_rerank_and_errors():
    rng = np.random.default_rng(4)
    records, feats = synthetic_test_set(rng, n_ids=6, per=3, dim=8)
    index = DatasetIndex(name="manifest", root=Path("."), train=(), test=records)
    trials = protocol_trials(index)
    result = evaluate_trials(feats, records, trials, rerank=True)
    (trial,) = trials
    reranked = k_reciprocal_rerank(feats[trial.query], feats[trial.gallery])
    pids = np.array([r.pid for r in records])
    want = rank(reranked, pids[trial.query], pids[trial.gallery])
    assert result.trials[0].mAP == pytest.approx(want.mAP)
    assert result.to_dict()["rerank"] is True
    with pytest.raises(DataError, match="one feature row per test record"):
        evaluate_trials(feats[:-1], records, trials)
    with pytest.raises(ConfigError, match="distance="):
        evaluate_trials(feats, records, trials, distance="l1")
