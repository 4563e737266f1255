"""The official SYSU-MM01 split files shipped as package data.

rand_perm_cam.mat: a 6x1 cell, entry [cam-1][pid-1] a 10 x n matrix of
1-based permutations of that (pid, cam)'s images in sorted file-name order,
row r = trial r (empty 10 x 0 where the person is absent). The id files
hold variable ``id`` (1 x N). See splits/sysu_mm01/README.md.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np

SPLIT_NAMES = ("train", "val", "test")


def _path(name: str):
    return resources.files("vdreid.data") / "splits" / "sysu_mm01" / name


@functools.cache
def official_ids(split: str) -> tuple[int, ...]:
    """The official train (296), val (99) or test (96) ids, sorted."""
    import scipy.io as sio

    if split not in SPLIT_NAMES:
        raise ValueError(f"split must be one of {SPLIT_NAMES}, got {split!r}")
    with resources.as_file(_path(f"{split}_id.mat")) as p:
        ids = sio.loadmat(str(p))["id"]
    return tuple(sorted(int(i) for i in np.asarray(ids).ravel()))


@functools.lru_cache(maxsize=1)
def rand_perm_cam() -> dict[tuple[int, int], np.ndarray]:
    """{(cam, pid): 10 x n int64 matrix of 1-based permutations}; absent pairs omitted."""
    import scipy.io as sio

    with resources.as_file(_path("rand_perm_cam.mat")) as p:
        cell = sio.loadmat(str(p))["rand_perm_cam"]
    out: dict[tuple[int, int], np.ndarray] = {}
    for cam_index in range(cell.shape[0]):
        per_pid = cell[cam_index, 0]
        for pid_index in range(per_pid.shape[0]):
            perm = np.asarray(per_pid[pid_index, 0], dtype=np.int64)
            if perm.size:
                out[(cam_index + 1, pid_index + 1)] = perm
    return out
