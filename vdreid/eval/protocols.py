"""Evaluation trials of every dataset, chosen by the dataset index's name.

- ``sysu``: see :mod:`vdreid.eval.sysu`.
- ``regdb``: one trial per loaded split (the index holds one of the ten):
  ``v2t`` queries every visible test image against every thermal one,
  ``t2v`` the reverse; image-level CMC, no removal, no sampling.
- ``llcm``: ``t2v`` (default, infrared -> visible) queries every infrared
  test image against one random visible image per (id, camera), ``v2t`` the
  reverse; trials seeded 0..trials-1 (the sampler of the LLCM code, shared
  with SYSU ``agw``); identity-level CMC; same id AND same camera removed.
- ``manifest`` (user-supplied lists, no official protocol): one trial,
  ``t2v`` (default) queries every infrared test record against every
  visible one, ``v2t`` the reverse; identity-level CMC, no removal.

Directions: ``v2t`` = visible queries, ``t2v`` = infrared (thermal / NIR)
queries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vdreid.data.records import DatasetIndex, Modality, Record
from vdreid.errors import ConfigError, DataError
from vdreid.eval.sysu import sysu_trials
from vdreid.eval.trials import Trial, group_by_pid_cam, one_random_per_pid_cam

DIRECTIONS = ("v2t", "t2v")
DATASETS = ("sysu", "regdb", "llcm", "manifest")
DEFAULT_DIRECTION = {"sysu": "t2v", "regdb": "v2t", "llcm": "t2v", "manifest": "t2v"}


def _modality_indices(test_records: Sequence[Record], modality: Modality) -> np.ndarray:
    return np.asarray(
        [i for i, r in enumerate(test_records) if r.modality == modality], dtype=np.int64
    )


def _query_gallery_modalities(direction: str) -> tuple[Modality, Modality]:
    if direction not in DIRECTIONS:
        raise ConfigError(
            f"direction={direction!r} is not known; use 'v2t' (visible queries) or "
            "'t2v' (infrared queries)"
        )
    if direction == "v2t":
        return Modality.VISIBLE, Modality.INFRARED
    return Modality.INFRARED, Modality.VISIBLE


def _all_against_all(
    test_records: Sequence[Record], direction: str, cmc: str, dataset: str
) -> list[Trial]:
    q_mod, g_mod = _query_gallery_modalities(direction)
    query = _modality_indices(test_records, q_mod)
    gallery = _modality_indices(test_records, g_mod)
    if query.size == 0 or gallery.size == 0:
        raise DataError(
            f"{dataset} test records: {query.size} {q_mod.name.lower()} queries and "
            f"{gallery.size} {g_mod.name.lower()} gallery images; expected both non-empty - "
            "check the test split"
        )
    return [Trial(query=query, gallery=gallery, cmc=cmc, removal=None)]


def regdb_trials(test_records: Sequence[Record], *, direction: str = "v2t") -> list[Trial]:
    """The one trial of a loaded RegDB split (module doc)."""
    return _all_against_all(test_records, direction, "image", "RegDB")


def manifest_trials(test_records: Sequence[Record], *, direction: str = "t2v") -> list[Trial]:
    """The generic protocol of a manifest dataset (module doc)."""
    return _all_against_all(test_records, direction, "identity", "manifest")


def llcm_trials(
    test_records: Sequence[Record], *, direction: str = "t2v", trials: int = 10
) -> list[Trial]:
    """LLCM trials: all queries of one modality, one random image per (id, camera) of the other."""
    q_mod, g_mod = _query_gallery_modalities(direction)
    if not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials={trials!r}; expected an integer >= 1")
    query = _modality_indices(test_records, q_mod)
    gallery_cams = sorted({r.cam for r in test_records if r.modality == g_mod})
    if query.size == 0 or not gallery_cams:
        raise DataError(
            f"LLCM test records hold {query.size} {q_mod.name.lower()} query images and "
            f"{len(gallery_cams)} {g_mod.name.lower()} gallery cameras; expected both - "
            "check test_vis/ and test_nir/ under the dataset root"
        )
    groups = group_by_pid_cam(test_records, gallery_cams, g_mod)
    pids = sorted({r.pid for r in test_records})
    return [
        Trial(
            query=query,
            gallery=one_random_per_pid_cam(groups, pids, gallery_cams, seed=t),
            cmc="identity",
            removal="llcm",
        )
        for t in range(trials)
    ]


def protocol_trials(
    index: DatasetIndex,
    *,
    mode: str = "all",
    shots: int = 1,
    sampler: str = "official",
    direction: str | None = None,
    trials: int | None = None,
) -> list[Trial]:
    """The trials of ``index.test`` under its dataset's protocol.

    ``mode``, ``shots`` and ``sampler`` apply to SYSU-MM01 only; ``direction``
    defaults per dataset (:data:`DEFAULT_DIRECTION`); ``trials`` defaults to 10
    for the sampled protocols (SYSU-MM01, LLCM) and must be 1 or None for the
    others (RegDB: one trial per loaded split).
    """
    name = index.name
    if name not in DATASETS:
        raise ConfigError(f"dataset {name!r} has no evaluation protocol; known: {DATASETS}")
    direction = direction or DEFAULT_DIRECTION[name]
    records = index.test
    if name == "sysu":
        if direction != "t2v":
            raise ConfigError(
                f"direction={direction!r}: the SYSU-MM01 protocol queries infrared images "
                "against visible galleries only; use direction='t2v'"
            )
        return sysu_trials(
            records,
            mode=mode,
            shots=shots,
            sampler=sampler,
            trials=10 if trials is None else trials,
        )
    if name == "llcm":
        return llcm_trials(records, direction=direction, trials=10 if trials is None else trials)
    if trials not in (None, 1):
        raise ConfigError(
            f"trials={trials}: the {name} protocol has one trial per loaded split; "
            "leave trials unset (RegDB: evaluate each split's model separately)"
        )
    if name == "regdb":
        return regdb_trials(records, direction=direction)
    return manifest_trials(records, direction=direction)
