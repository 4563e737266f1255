"""vdreid.eval.metrics: hand cases, equality with the per-query loop, invariances, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vdreid.eval.metrics as metrics
from vdreid.errors import ConfigError, DataError, NumericalError
from vdreid.eval import rank

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference_rank import loop_rank  # noqa: E402

A, B, C, D = 1, 2, 3, 4


def ranked(pids):
    """One query of identity A over a gallery already in ranked order."""
    return np.arange(len(pids), dtype=float)[None, :], np.array([A]), np.array(pids)


def test_hand_case_one_image_level():
    res = rank(*ranked([B, A, A, C]), cmc="image", max_rank=4)
    assert res.mAP == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert res.mAP == pytest.approx(0.58333, abs=1e-5)
    assert res.mINP == pytest.approx(2 / 3)
    np.testing.assert_array_equal(res.cmc, [0, 1, 1, 1])


def test_hand_case_two_image_and_identity_level():
    image = rank(*ranked([B, B, A, C, D]), cmc="image", max_rank=5)
    identity = rank(*ranked([B, B, A, C, D]), cmc="identity", max_rank=5)
    np.testing.assert_array_equal(image.cmc, [0, 0, 1, 1, 1])  # image-level rank 3
    np.testing.assert_array_equal(identity.cmc, [0, 1, 1, 1, 1])  # identity-level rank 2
    for res in (image, identity):
        assert res.mAP == pytest.approx(1 / 3)
        assert res.mINP == pytest.approx(1 / 3)


def test_hand_case_three_sysu_removal():
    # gallery in increasing distance: (A,cam2) (B,cam2) (B,cam1) (A,cam1) (C,cam4)
    g_pids, g_cams = np.array([A, B, B, A, C]), np.array([2, 2, 1, 1, 4])
    dist = np.tile(np.arange(5.0), (2, 1))
    q_pids, q_cams = np.array([A, A]), np.array([3, 6])
    res = rank(dist, q_pids, g_pids, q_cams, g_cams, removal="sysu", max_rank=3)
    cam3 = rank(dist[:1], q_pids[:1], g_pids, q_cams[:1], g_cams, removal="sysu", max_rank=3)
    cam6 = rank(dist[1:], q_pids[1:], g_pids, q_cams[1:], g_cams, removal="sysu", max_rank=3)
    assert (cam3.mAP, cam3.mINP, cam3.cmc[0]) == pytest.approx((0.5, 0.5, 0.0))
    assert (cam6.mAP, cam6.mINP, cam6.cmc[0]) == pytest.approx((0.75, 0.5, 1.0))
    assert res.mAP == pytest.approx(0.625)
    assert res.mINP == pytest.approx(0.5)
    np.testing.assert_allclose(res.cmc, [0.5, 1, 1])
    assert res.num_valid == 2


def test_minp_may_exceed_map():
    res = rank(*ranked([B, C, D, B, A, A]), cmc="image")
    assert res.mAP == pytest.approx((1 / 5 + 2 / 6) / 2)
    assert res.mINP == pytest.approx(2 / 6)
    assert res.mINP > res.mAP


def test_cmc_has_max_rank_entries_padded_with_last_value():
    res = rank(*ranked([B, A, C]), cmc="identity", max_rank=20)
    assert res.cmc.shape == (20,)
    np.testing.assert_array_equal(res.cmc, [0] + [1] * 19)


def test_ties_follow_gallery_index_including_signed_zero():
    dist = np.array([[0.0, -0.0, 0.0]])
    res = rank(dist, [A], [B, A, A], cmc="image", max_rank=3)
    np.testing.assert_array_equal(res.cmc, [0, 1, 1])  # order B, A, A by index
    # distances equal in their top bits but not equal: exact order still holds
    one_up = np.nextafter(1.0, 2.0)
    near = np.array([[np.nextafter(one_up, 2.0), one_up, 1.0]])
    res = rank(near, [A], [A, B, C], cmc="image", max_rank=3)
    np.testing.assert_array_equal(res.cmc, [0, 0, 1])


def random_case(rng, nq, ng, n_ids, removal, quantise=False, negative=False):
    dist = rng.standard_normal((nq, ng))
    if quantise:
        dist = np.round(dist * 2) / 2  # many exact ties
    if not negative:
        dist = np.abs(dist)
    q_pids = rng.integers(0, n_ids + 3, nq)  # some identities absent: invalid queries
    g_pids = rng.integers(0, n_ids, ng)
    if removal == "sysu":
        q_cams, g_cams = rng.choice([3, 6], nq), rng.choice([1, 2, 4, 5], ng)
    else:
        q_cams, g_cams = rng.integers(1, 4, nq), rng.integers(1, 4, ng)
    return dist, q_pids, g_pids, q_cams, g_cams


def assert_same(res, ref):
    cmc, m_ap, m_inp, n_valid = ref
    assert res.num_valid == n_valid
    np.testing.assert_allclose(res.cmc, cmc, rtol=0, atol=1e-12)
    assert res.mAP == pytest.approx(m_ap, rel=1e-12)
    assert res.mINP == pytest.approx(m_inp, rel=1e-12)


@pytest.mark.parametrize("removal", [None, "sysu", "llcm"])
@pytest.mark.parametrize("cmc", ["identity", "image"])
@pytest.mark.parametrize("quantise,negative", [(False, False), (True, False), (False, True)])
def test_equals_per_query_loop(removal, cmc, quantise, negative, monkeypatch):
    monkeypatch.setattr(metrics, "CHUNK_ELEMENTS", 2000)  # several chunks
    rng = np.random.default_rng(7)
    for nq, ng, n_ids, max_rank in [(60, 90, 8, 30), (45, 300, 40, 20)]:
        case = random_case(rng, nq, ng, n_ids, removal, quantise, negative)
        kw = dict(cmc=cmc, removal=removal, max_rank=max_rank)
        ref = loop_rank(*case, **kw)
        assert ref[3] < nq  # the case holds invalid queries
        assert_same(rank(*case, **kw), ref)
        assert_same(rank(*case, **kw, threads=1), ref)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    cmc=st.sampled_from(["identity", "image"]),
    removal=st.sampled_from([None, "sysu", "llcm"]),
)
def test_invariant_to_permutations(seed, cmc, removal):
    rng = np.random.default_rng(seed)
    dist, q_pids, g_pids, q_cams, g_cams = random_case(rng, 20, 30, 6, removal)
    kw = dict(cmc=cmc, removal=removal, max_rank=10)
    try:
        base = rank(dist, q_pids, g_pids, q_cams, g_cams, **kw)
    except DataError:
        return  # no valid query in this draw
    qp, gp = rng.permutation(20), rng.permutation(30)  # distances are distinct: no ties
    res = rank(dist[qp][:, gp], q_pids[qp], g_pids[gp], q_cams[qp], g_cams[gp], **kw)
    assert_same(res, (base.cmc, base.mAP, base.mINP, base.num_valid))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), transform=st.sampled_from(["affine", "exp", "cube"]))
def test_invariant_to_monotone_transforms_with_ties(seed, transform):
    rng = np.random.default_rng(seed)
    dist = rng.integers(0, 6, (15, 25)).astype(float)  # many ties
    q_pids, g_pids = rng.integers(0, 4, 15), rng.integers(0, 4, 25)
    f = {"affine": lambda d: 3 * d - 7, "exp": lambda d: np.exp(d / 3), "cube": lambda d: d**3}
    try:
        base = rank(dist, q_pids, g_pids)
    except DataError:
        return
    res = rank(f[transform](dist), q_pids, g_pids)
    assert_same(res, (base.cmc, base.mAP, base.mINP, base.num_valid))


def test_bad_input_raises_clear_errors():
    dist = np.zeros((2, 3))
    with pytest.raises(DataError, match="g_pids has shape"):
        rank(dist, [1, 2], [1, 2])
    with pytest.raises(DataError, match="at least one of each"):
        rank(np.zeros((2, 0)), [1, 2], [])
    with pytest.raises(DataError, match="2-D"):
        rank(np.zeros(3), [1], [1, 2, 3])
    with pytest.raises(NumericalError, match="NaN in 1 of 2"):
        rank(np.array([[0, np.nan, 1], [0, 1, 2]]), [1, 2], [1, 2, 3])
    with pytest.raises(DataError, match="none of the 2 queries"):
        rank(dist, [7, 8], [1, 2, 3])
    with pytest.raises(DataError, match="needs q_cams"):
        rank(dist, [1, 2], [1, 2, 3], removal="sysu")
    with pytest.raises(ConfigError, match="cmc="):
        rank(dist, [1, 2], [1, 2, 3], cmc="images")
    with pytest.raises(ConfigError, match="removal="):
        rank(dist, [1, 2], [1, 2, 3], [1, 1], [1, 1, 1], removal="market")
    with pytest.raises(ConfigError, match="max_rank"):
        rank(dist, [1, 2], [1, 2, 3], max_rank=0)
    # all positives removed by the SYSU rule: a cam-3 query whose identity is only in cam 2
    with pytest.raises(DataError, match="removal='sysu'"):
        rank(np.zeros((1, 2)), [1], [1, 2], [3], [2, 1], removal="sysu")
