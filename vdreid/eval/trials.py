"""What an evaluation trial is, and the pieces the dataset protocols share.

A :class:`Trial` names, by index into the dataset's test records, the
queries and the gallery of one ranking, with the CMC kind and the removal
rule to rank them with. Features are computed once for every test record;
each trial then selects rows from them.
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import PurePath

import numpy as np

from vdreid.data.records import Modality, Record, arrays
from vdreid.errors import ConfigError
from vdreid.eval.metrics import CMC_KINDS, REMOVALS, removed_items

#: Query rows per chunk when counting valid queries (bounds the mask memory).
_COUNT_CHUNK = 2048


@dataclasses.dataclass(frozen=True, eq=False)
class Trial:
    """One ranking: ``query`` and ``gallery`` are int64 indices into the test records."""

    query: np.ndarray
    gallery: np.ndarray
    cmc: str
    removal: str | None

    def __post_init__(self) -> None:
        if self.cmc not in CMC_KINDS or self.removal not in REMOVALS:
            raise ConfigError(
                f"Trial got cmc={self.cmc!r}, removal={self.removal!r}; expected cmc in "
                f"{CMC_KINDS} and removal in {REMOVALS}"
            )
        object.__setattr__(self, "query", np.asarray(self.query, dtype=np.int64))
        object.__setattr__(self, "gallery", np.asarray(self.gallery, dtype=np.int64))


def file_name_order(records: Sequence[Record], indices: Iterable[int]) -> list[int]:
    """``indices`` sorted by file name (then full path), as the official tools list folders."""
    return sorted(indices, key=lambda i: (PurePath(records[i].path).name, records[i].path))


def group_by_pid_cam(
    records: Sequence[Record], cams: Iterable[int], modality: Modality | None = None
) -> dict[tuple[int, int], list[int]]:
    """{(pid, cam): indices in file-name order} of the records of ``cams`` (and ``modality``)."""
    wanted = set(cams)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        if r.cam in wanted and (modality is None or r.modality == modality):
            groups[(r.pid, r.cam)].append(i)
    return {key: file_name_order(records, idx) for key, idx in groups.items()}


def one_random_per_pid_cam(
    groups: dict[tuple[int, int], list[int]], pids: Sequence[int], cams: Sequence[int], seed: int
) -> np.ndarray:
    """The AGW / LLCM gallery draw: Python's ``random`` seeded with ``seed``, then for
    each pid (ascending) and each camera (in ``cams`` order) one choice among that
    folder's files in file-name order; absent (pid, cam) pairs draw nothing."""
    rng = random.Random(seed)  # same stream as random.seed(seed); random.choice(...)
    picked = [
        rng.choice(groups[(pid, cam)])
        for pid in sorted(pids)
        for cam in cams
        if groups.get((pid, cam))
    ]
    return np.asarray(picked, dtype=np.int64)


def count_valid_queries(test_records: Sequence[Record], trial: Trial) -> int:
    """Queries of ``trial`` with at least one same-identity gallery item left after removal."""
    pids, cams, _ = arrays(test_records)
    g_pids, g_cams = pids[trial.gallery], cams[trial.gallery]
    valid = 0
    for start in range(0, len(trial.query), _COUNT_CHUNK):
        q = trial.query[start : start + _COUNT_CHUNK]
        positive = pids[q][:, None] == g_pids[None, :]
        removed = removed_items(trial.removal, pids[q], cams[q], g_pids, g_cams)
        if removed is not None:
            positive &= ~removed
        valid += int(positive.any(axis=1).sum())
    return valid
