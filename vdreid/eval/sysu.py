"""SYSU-MM01 trials: infrared queries against sampled visible galleries.

Queries: every test image of the infrared cameras 3 and 6. Gallery: ``shots``
images of every (test id, visible camera) pair, cameras 1, 2, 4, 5
(``all``) or 1, 2 (``indoor``), drawn by one of two samplers:

- ``official``: the permutation file of the dataset's evaluation code
  (rand_perm_cam.mat): the first ``shots`` entries of row ``t`` for trial
  ``t``, camera-major. Indoor galleries are the all-search ones restricted to
  cameras 1, 2. Protocol of the MVD paper.
- ``agw``: Python's ``random`` seeded with the trial number, one random file
  per (id, camera), id-major, single-shot only. Protocol of AGW and most
  later papers.

Removal: a camera-3 query ignores every camera-2 gallery image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vdreid.data.records import Modality, Record
from vdreid.errors import ConfigError, DataError
from vdreid.eval.trials import Trial, group_by_pid_cam, one_random_per_pid_cam

QUERY_CAMS = (3, 6)
GALLERY_CAMS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}
SAMPLERS = ("official", "agw")
SHOTS = (1, 10)
OFFICIAL_TRIALS = 10  # rows of the permutation file


def sysu_trials(
    test_records: Sequence[Record],
    *,
    mode: str = "all",
    shots: int = 1,
    sampler: str = "official",
    trials: int = 10,
) -> list[Trial]:
    """The SYSU-MM01 trials of ``mode`` / ``shots`` drawn by ``sampler`` (module doc)."""
    _check_options(mode, shots, sampler, trials)
    cams = GALLERY_CAMS[mode]
    query = np.asarray(
        [i for i, r in enumerate(test_records) if r.cam in QUERY_CAMS], dtype=np.int64
    )
    if query.size == 0:
        raise DataError(
            f"the {len(test_records)} SYSU-MM01 test records hold no image of the infrared "
            f"cameras {QUERY_CAMS}; expected the test ids' cam3/cam6 images - check the "
            "dataset root"
        )
    groups = group_by_pid_cam(test_records, cams, Modality.VISIBLE)
    pids = sorted({r.pid for r in test_records})
    if sampler == "official":
        galleries = _official_galleries(groups, pids, cams, shots, trials)
    else:
        galleries = [one_random_per_pid_cam(groups, pids, cams, seed=t) for t in range(trials)]
    return [Trial(query=query, gallery=g, cmc="identity", removal="sysu") for g in galleries]


def _check_options(mode: str, shots: int, sampler: str, trials: int) -> None:
    if mode not in GALLERY_CAMS:
        raise ConfigError(
            f"mode={mode!r} is not a SYSU-MM01 mode; use one of {tuple(GALLERY_CAMS)}"
        )
    if shots not in SHOTS:
        raise ConfigError(
            f"shots={shots!r}; SYSU-MM01 galleries are single-shot (1) or 10-shot (10)"
        )
    if sampler not in SAMPLERS:
        raise ConfigError(f"sampler={sampler!r} is not known; use one of {SAMPLERS}")
    if sampler == "agw" and shots != 1:
        raise ConfigError(
            "sampler='agw' is single-shot only: its 10-shot variants draw with an unseeded "
            "global numpy generator, so no reproducible definition exists; use "
            "sampler='official' for 10-shot galleries"
        )
    if not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials={trials!r}; expected an integer >= 1")
    if sampler == "official" and trials > OFFICIAL_TRIALS:
        raise ConfigError(
            f"trials={trials}; the official permutation file holds {OFFICIAL_TRIALS} trials - "
            f"use trials <= {OFFICIAL_TRIALS}"
        )


def _official_galleries(
    groups: dict[tuple[int, int], list[int]],
    pids: Sequence[int],
    cams: Sequence[int],
    shots: int,
    trials: int,
) -> list[np.ndarray]:
    from vdreid.data.sysu_split_files import rand_perm_cam

    perms = rand_perm_cam()
    chosen: list[list[int]] = [[] for _ in range(trials)]
    for cam in cams:  # camera-major, as the official evaluation code
        for pid in pids:
            files = groups.get((pid, cam), [])
            perm = perms.get((cam, pid))
            n_perm = 0 if perm is None else perm.shape[1]
            if len(files) != n_perm:
                raise DataError(
                    f"SYSU-MM01 person {pid} camera {cam}: the test records hold {len(files)} "
                    f"images, the official permutation file (rand_perm_cam.mat) expects {n_perm}; "
                    f"check cam{cam}/{pid:04d}/ under the dataset root (missing or extra files)"
                )
            if perm is None:
                continue
            if n_perm < shots:
                raise DataError(
                    f"SYSU-MM01 person {pid} camera {cam} has {n_perm} images, fewer than "
                    f"shots={shots}; use shots=1"
                )
            for t in range(trials):
                chosen[t].extend(files[j - 1] for j in perm[t, :shots])  # 1-based
    return [np.asarray(c, dtype=np.int64) for c in chosen]
