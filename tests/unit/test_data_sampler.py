"""The identity x modality sampler: order, balance, determinism, resumption, sharding."""

from __future__ import annotations

import numpy as np
import pytest

from vdreid.data.sampler import IdentitySampler
from vdreid.errors import ConfigError, DataError


def _dataset(ids: int = 13, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uneven image counts per identity and modality, some below K (drawn with replacement)."""
    rng = np.random.default_rng(seed)
    labels, modality = [], []
    for pid in range(ids):
        for mod in (0, 1):
            n = int(rng.integers(2, 9))
            labels += [pid] * n
            modality += [mod] * n
    order = rng.permutation(len(labels))  # records in no particular order
    return np.asarray(labels)[order], np.asarray(modality)[order]


def test_batches_hold_p_identities_with_k_visible_and_k_infrared_interleaved():
    labels, modality = _dataset()
    s = IdentitySampler(labels, modality, ids_per_batch=4, instances=3, seed=1)
    assert s.batch_size == 24 and len(s) == 13 // 4
    batches = s.epoch_batches(0)
    assert batches.shape == (3, 24)
    seen = []
    for b in batches:
        # v i v i ... as the official sampler
        assert np.array_equal(modality[b], np.tile([0, 1], 12))
        groups = labels[b].reshape(4, 6)
        assert np.all(groups == groups[:, :1])  # 2K consecutive images per identity
        seen += groups[:, 0].tolist()
    assert len(set(seen)) == len(seen) == 12  # one pass over identities, tail dropped


def test_without_replacement_when_an_identity_has_enough_images():
    labels, modality = _dataset()
    s = IdentitySampler(labels, modality, ids_per_batch=4, instances=2, seed=3)
    for b in s.epoch_batches(0):
        for group in b.reshape(4, 4):
            for mod in (0, 1):
                chosen = group[modality[group] == mod]
                if np.sum((labels == labels[group[0]]) & (modality == mod)) >= 2:
                    assert len(set(chosen.tolist())) == 2


def test_same_seed_same_batches_other_seed_or_epoch_other_batches():
    labels, modality = _dataset()
    a = IdentitySampler(labels, modality, ids_per_batch=4, instances=2, seed=7)
    b = IdentitySampler(labels, modality, ids_per_batch=4, instances=2, seed=7)
    c = IdentitySampler(labels, modality, ids_per_batch=4, instances=2, seed=8)
    assert np.array_equal(a.epoch_batches(2), b.epoch_batches(2))
    assert not np.array_equal(a.epoch_batches(2), c.epoch_batches(2))
    assert not np.array_equal(a.epoch_batches(2), a.epoch_batches(3))


def test_resuming_mid_epoch_gives_the_same_batches():
    labels, modality = _dataset(ids=30)
    straight = IdentitySampler(labels, modality, ids_per_batch=4, instances=2, seed=5)
    expected = [b for _ in range(2) for b in straight]  # epochs 0 and 1
    first = IdentitySampler(labels, modality, ids_per_batch=4, instances=2, seed=5)
    taken = []
    for b in first:
        taken.append(b)
        if len(taken) == 4:
            break
    state = first.state()
    assert state == {"epoch": 0, "position": 4, "seed": 5}
    resumed = IdentitySampler(labels, modality, ids_per_batch=4, instances=2, seed=5)
    resumed.load_state(state)
    taken += list(resumed) + list(resumed)
    assert resumed.state() == {"epoch": 2, "position": 0, "seed": 5}
    assert len(taken) == len(expected) == 2 * 7
    assert all(np.array_equal(x, y) for x, y in zip(taken, expected, strict=True))
    with pytest.raises(ConfigError, match="saved with seed 5"):
        IdentitySampler(labels, modality, ids_per_batch=4, instances=2, seed=6).load_state(state)


def test_ranks_get_disjoint_slices_of_each_global_batch():
    labels, modality = _dataset(ids=24)
    ranks = [
        IdentitySampler(labels, modality, ids_per_batch=6, instances=2, seed=9, rank=r, world=3)
        for r in range(3)
    ]
    whole = IdentitySampler(labels, modality, ids_per_batch=6, instances=2, seed=9)
    for step in range(len(whole)):
        parts = [s.batch(1, step) for s in ranks]
        assert all(len(p) == 8 for p in parts)
        assert np.array_equal(np.concatenate(parts), whole.batch(1, step))
        ids = [set(labels[p].tolist()) for p in parts]
        assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    with pytest.raises(ConfigError, match="ids_per_batch=6 is not divisible by world=4"):
        IdentitySampler(labels, modality, ids_per_batch=6, instances=2, world=4)


def test_identities_with_one_modality_error_or_are_dropped():
    labels, modality = _dataset(ids=10)
    lonely = np.concatenate([labels, [50, 50, 61]])
    mods = np.concatenate([modality, [0, 0, 1]])
    with pytest.raises(
        DataError,
        match=r"2 training identities have images of one modality only \(labels \[50, 61\]\)",
    ):
        IdentitySampler(lonely, mods, ids_per_batch=2, instances=2)
    s = IdentitySampler(lonely, mods, ids_per_batch=2, instances=2, single_modality="drop")
    assert len(s) == 5
    drawn = set(lonely[s.epoch_batches(0).ravel()].tolist())
    assert not drawn & {50, 61}


def test_too_few_identities_for_a_batch():
    labels, modality = _dataset(ids=3)
    with pytest.raises(
        DataError, match="only 3 identities have both modalities but a batch needs ids_per_batch=4"
    ):
        IdentitySampler(labels, modality, ids_per_batch=4, instances=2)
