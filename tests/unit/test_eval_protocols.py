"""Protocols: SYSU-MM01 samplers on a synthetic test set shaped by the official
permutation file, RegDB / LLCM / manifest trials, dispatch and errors."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from vdreid.data.records import DatasetIndex, Modality, Record
from vdreid.data.sysu_split_files import official_ids, rand_perm_cam
from vdreid.errors import ConfigError, DataError
from vdreid.eval import (
    count_valid_queries,
    llcm_trials,
    protocol_trials,
    regdb_trials,
    sysu_trials,
)

IR_CAMS = (3, 6)


def sysu_like_test_records(skip: tuple[int, int] | None = None) -> tuple[Record, ...]:
    """Every test-id image with the real per-(person, camera) counts; fake paths.

    Records are listed in a shuffled order so that the samplers must sort.
    """
    perms = rand_perm_cam()
    out = []
    for pid in official_ids("test"):
        for cam in range(1, 7):
            n = perms[(cam, pid)].shape[1] if (cam, pid) in perms else 0
            if (cam, pid) == skip:
                n -= 1
            mod = Modality.INFRARED if cam in IR_CAMS else Modality.VISIBLE
            out += [
                Record(f"cam{cam}/{pid:04d}/{k:04d}.jpg", pid, cam, mod) for k in range(1, n + 1)
            ]
    random.Random(0).shuffle(out)
    return tuple(out)


@pytest.fixture(scope="module")
def sysu_records():
    return sysu_like_test_records()


@pytest.mark.parametrize(
    "mode,shots,gallery_size,valid",
    [
        ("all", 1, 301, 3803),
        ("indoor", 1, 112, 2208),
        ("all", 10, 3010, 3803),
        ("indoor", 10, 1120, 2208),
    ],
)
def test_official_sampler_reproduces_sysu_statistics(
    sysu_records, mode, shots, gallery_size, valid
):
    trials = sysu_trials(sysu_records, mode=mode, shots=shots, sampler="official")
    assert len(trials) == 10
    for t in trials:
        assert len(t.query) == 3803
        assert len(t.gallery) == gallery_size
        assert len(set(t.gallery.tolist())) == gallery_size
        assert (t.cmc, t.removal) == ("identity", "sysu")
    assert count_valid_queries(sysu_records, trials[0]) == valid
    cams = {sysu_records[i].cam for i in trials[0].query}
    assert cams == set(IR_CAMS)


def test_official_sampler_takes_permutation_rows(sysu_records):
    perms = rand_perm_cam()
    trials = sysu_trials(sysu_records, mode="all", shots=10, sampler="official")
    pid = official_ids("test")[5]
    for r in (0, 7):
        picked = [sysu_records[i] for i in trials[r].gallery]
        mine = [rec.path for rec in picked if rec.pid == pid and rec.cam == 4]
        want = [f"cam4/{pid:04d}/{j:04d}.jpg" for j in perms[(4, pid)][r, :10]]
        assert mine == want
    # camera-major: every cam-1 item comes before every cam-2 item
    gallery_cams = [sysu_records[i].cam for i in trials[0].gallery]
    assert gallery_cams == sorted(gallery_cams, key=[1, 2, 4, 5].index)


def test_official_indoor_gallery_is_all_search_restricted(sysu_records):
    every = sysu_trials(sysu_records, mode="all", sampler="official", trials=3)
    indoor = sysu_trials(sysu_records, mode="indoor", sampler="official", trials=3)
    for a, b in zip(every, indoor, strict=True):
        restricted = [i for i in a.gallery if sysu_records[i].cam in (1, 2)]
        assert b.gallery.tolist() == restricted


def test_official_sampler_names_a_count_mismatch():
    pid = next(p for p in official_ids("test") if (2, p) in rand_perm_cam())
    records = sysu_like_test_records(skip=(2, pid))
    n = rand_perm_cam()[(2, pid)].shape[1]
    with pytest.raises(DataError, match=f"person {pid} camera 2: .* {n - 1} images.* expects {n}"):
        sysu_trials(records, sampler="official")


def agw_by_hand(records, mode, trial):
    """The AGW gallery draw written the way its code reads (global random)."""
    cams = (1, 2, 4, 5) if mode == "all" else (1, 2)
    random.seed(trial)
    files = []
    for pid in sorted({r.pid for r in records}):
        for cam in cams:
            listing = sorted(r.path for r in records if r.pid == pid and r.cam == cam)
            if listing:
                files.append(random.choice(listing))
    return files


@pytest.mark.parametrize("mode", ["all", "indoor"])
def test_agw_sampler_is_deterministic_and_matches_its_definition(sysu_records, mode):
    a = sysu_trials(sysu_records, mode=mode, sampler="agw", trials=3)
    b = sysu_trials(sysu_records, mode=mode, sampler="agw", trials=3)
    for t, (x, y) in enumerate(zip(a, b, strict=True)):
        np.testing.assert_array_equal(x.gallery, y.gallery)
        assert [sysu_records[i].path for i in x.gallery] == agw_by_hand(sysu_records, mode, t)
    assert not np.array_equal(a[0].gallery, a[1].gallery)
    assert len(a[0].gallery) == (301 if mode == "all" else 112)


def test_agw_ten_shot_and_bad_options_are_refused(sysu_records):
    with pytest.raises(ConfigError, match="single-shot only"):
        sysu_trials(sysu_records, shots=10, sampler="agw")
    with pytest.raises(ConfigError, match="mode="):
        sysu_trials(sysu_records, mode="outdoor")
    with pytest.raises(ConfigError, match="trials <= 10"):
        sysu_trials(sysu_records, trials=11)
    with pytest.raises(ConfigError, match="shots="):
        sysu_trials(sysu_records, shots=5)


def two_modality_records(n_ids=4, per=3, vis_cams=(1, 2), ir_cams=(1, 3)):
    out = []
    for pid in range(1, n_ids + 1):
        for mod, cams in ((Modality.VISIBLE, vis_cams), (Modality.INFRARED, ir_cams)):
            for cam in cams:
                for k in range(per):
                    tag = "vis" if mod == Modality.VISIBLE else "nir"
                    out.append(Record(f"test_{tag}/cam{cam}/{pid:04d}/{k}.jpg", pid, cam, mod))
    return tuple(out)


def test_regdb_trials_both_directions():
    records = two_modality_records()
    vis = [i for i, r in enumerate(records) if r.modality == Modality.VISIBLE]
    ir = [i for i, r in enumerate(records) if r.modality == Modality.INFRARED]
    (v2t,) = regdb_trials(records, direction="v2t")
    (t2v,) = regdb_trials(records, direction="t2v")
    assert v2t.query.tolist() == vis and v2t.gallery.tolist() == ir
    assert t2v.query.tolist() == ir and t2v.gallery.tolist() == vis
    assert (v2t.cmc, v2t.removal) == ("image", None)
    with pytest.raises(ConfigError, match="direction="):
        regdb_trials(records, direction="i2v")


def test_llcm_trials_one_random_image_per_id_and_camera():
    records = two_modality_records(n_ids=5, per=4, vis_cams=(1, 2, 5), ir_cams=(1, 2))
    trials = llcm_trials(records)
    again = llcm_trials(records)
    assert len(trials) == 10
    for t, u in zip(trials, again, strict=True):
        np.testing.assert_array_equal(t.gallery, u.gallery)
        assert all(records[i].modality == Modality.INFRARED for i in t.query)
        assert len(t.query) == 5 * 2 * 4
        keys = [(records[i].pid, records[i].cam) for i in t.gallery]
        assert keys == [(p, c) for p in range(1, 6) for c in (1, 2, 5)]  # id-major
        assert all(records[i].modality == Modality.VISIBLE for i in t.gallery)
        assert (t.cmc, t.removal) == ("identity", "llcm")
    assert len({tuple(t.gallery) for t in trials}) > 1
    v2t = llcm_trials(records, direction="v2t", trials=2)
    assert all(records[i].modality == Modality.INFRARED for i in v2t[0].gallery)


def test_llcm_removal_counts_valid_queries():
    records = two_modality_records(n_ids=2, per=1, vis_cams=(1,), ir_cams=(1, 2))
    (trial,) = llcm_trials(records, trials=1)
    # infrared cam-1 queries lose their only positive (same id, same camera 1)
    assert count_valid_queries(records, trial) == 2


def test_protocol_trials_dispatch(sysu_records):
    def index(name, records):
        return DatasetIndex(name=name, root=Path("."), train=(), test=records)

    records = two_modality_records()
    sysu = protocol_trials(index("sysu", sysu_records), mode="indoor", trials=2)
    assert len(sysu) == 2 and len(sysu[0].gallery) == 112
    (manifest,) = protocol_trials(index("manifest", records))
    assert all(records[i].modality == Modality.INFRARED for i in manifest.query)
    assert (manifest.cmc, manifest.removal) == ("identity", None)
    (regdb,) = protocol_trials(index("regdb", records))
    assert all(records[i].modality == Modality.VISIBLE for i in regdb.query)
    assert len(protocol_trials(index("llcm", records), trials=3)) == 3
    with pytest.raises(ConfigError, match="no evaluation protocol"):
        protocol_trials(index("market", records))
    with pytest.raises(ConfigError, match="direction='t2v'"):
        protocol_trials(index("sysu", sysu_records), direction="v2t")
    with pytest.raises(ConfigError, match="one trial per loaded split"):
        protocol_trials(index("regdb", records), trials=10)
