"""What a synthetic tree holds: image jobs and text files, per layout.

A plan is pure bookkeeping (no pixels): for each identity, which images
to render under which relative paths, plus the split/index text files of
the layout. :mod:`vdreid.data.synth.writer` turns it into files.

- ``sysu``: ids from the official split files. ``full_shape``: all 491
  listed ids with the real per-(person, camera) image counts of
  rand_perm_cam.mat. Otherwise a seeded subset: ``ids`` training ids
  (3/4 from train_id, 1/4 from val_id) with ``per_cam`` images in each
  camera that saw the person in the real data, and ``test_ids`` test ids
  with their REAL counts in the RGB cameras (so the official gallery
  permutations apply) and ``per_cam`` images in the IR cameras.
- ``regdb``: ids 1..N, ``per_cam`` (10) visible and thermal images each,
  visible and thermal views of one shot share the pose (the two cameras
  fire together); 10 trials of seeded ``ids``/``test_ids`` splits.
- ``llcm``: train ids 1..ids, test ids after them; each person seen by a
  few of the 9 VIS and 8 NIR cameras, ``per_cam`` images each.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vdreid.data import llcm, regdb, sysu
from vdreid.data.sysu_split_files import official_ids, rand_perm_cam
from vdreid.errors import ConfigError

LAYOUTS = ("sysu", "regdb", "llcm")


@dataclasses.dataclass(frozen=True)
class Shot:
    """``len(paths)`` views of one person by one camera."""

    camera: int  # selects the camera style (background, cast, noise)
    infrared: bool
    pose_key: int  # shots sharing a key share their poses (RegDB's paired cameras)
    paths: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Job:
    pid: int
    shots: tuple[Shot, ...]

    @property
    def n_images(self) -> int:
        return sum(len(s.paths) for s in self.shots)


@dataclasses.dataclass(frozen=True)
class Plan:
    layout: str
    size: tuple[int, int]  # (H, W) of the written images
    jobs: tuple[Job, ...]
    texts: dict[str, str]  # relative path -> content
    folders: tuple[str, ...]  # created even when empty (camera folders)

    @property
    def n_images(self) -> int:
        return sum(j.n_images for j in self.jobs)


@dataclasses.dataclass(frozen=True)
class Shape:
    full_shape: bool = False
    ids: int | None = None  # training identities
    test_ids: int | None = None
    per_cam: int | None = None
    size: tuple[int, int] | None = None


DEFAULTS = {  # layout -> (ids, test_ids, per_cam)
    "sysu": (380, 20, 4),  # enough ids for the tiny recipe to learn (docs/datasets.md)
    "regdb": (20, 20, 10),
    "llcm": (30, 20, 4),
}
DEFAULT_SIZE = (128, 64)
FULL_SHAPE_SIZE = (16, 8)


def make_plan(layout: str, shape: Shape, seed: int) -> Plan:
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    if shape.full_shape and layout == "llcm":
        raise ConfigError(
            "--full-shape is available for sysu and regdb only: LLCM's per-camera image counts are "
            "not published in a verifiable form; drop --full-shape and choose --ids/--test-ids"
        )
    n_ids, n_test, per_cam = DEFAULTS[layout]
    n_ids = shape.ids if shape.ids is not None else n_ids
    n_test = shape.test_ids if shape.test_ids is not None else n_test
    per_cam = shape.per_cam if shape.per_cam is not None else per_cam
    for flag, value in (("--ids", n_ids), ("--test-ids", n_test), ("--per-cam", per_cam)):
        if value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    size = shape.size or (FULL_SHAPE_SIZE if shape.full_shape else DEFAULT_SIZE)
    if min(size) < 4:
        raise ConfigError(f"image size must be at least 4x4, got {size[0]}x{size[1]}")
    rng = np.random.default_rng([seed, 0x5EED])
    if layout == "sysu":
        return _sysu(shape.full_shape, n_ids, n_test, per_cam, size, rng)
    if layout == "regdb":
        if shape.full_shape:
            n_ids, n_test, per_cam = 206, 206, 10
        return _regdb(n_ids, n_test, per_cam, size, rng)
    return _llcm(n_ids, n_test, per_cam, size, rng)


def _ids_line(ids: list[int]) -> str:
    return ",".join(str(i) for i in sorted(ids)) + "\n"


def _subset(rng: np.random.Generator, pool: tuple[int, ...], n: int, what: str) -> list[int]:
    if n > len(pool):
        raise ConfigError(f"the SYSU-MM01 layout has {len(pool)} {what} ids; asked for {n}")
    return sorted(int(i) for i in rng.choice(pool, n, replace=False))


def _sysu(full: bool, n_ids: int, n_test: int, per_cam: int, size, rng) -> Plan:
    perm = rand_perm_cam()
    if full:
        train, val, test = (list(official_ids(s)) for s in sysu.SPLITS)
    else:
        n_val = max(1, n_ids // 4) if n_ids > 1 else 0
        train = _subset(rng, official_ids("train"), n_ids - n_val, "train")
        val = _subset(rng, official_ids("val"), n_val, "val")
        test = _subset(rng, official_ids("test"), n_test, "test")
    test_set = set(test)
    jobs = []
    for pid in sorted(train + val + test):
        shots = []
        for cam in sysu.CAMERAS:
            if (cam, pid) not in perm:
                continue  # this camera never saw this person
            real = perm[(cam, pid)].shape[1]
            keep_real = full or (pid in test_set and cam in sysu.RGB_CAMERAS)
            n = real if keep_real else per_cam
            paths = tuple(f"cam{cam}/{pid:04d}/{k:04d}.jpg" for k in range(1, n + 1))
            shots.append(Shot(cam, cam in sysu.IR_CAMERAS, cam, paths))
        jobs.append(Job(pid, tuple(shots)))
    texts = {
        "exp/train_id.txt": _ids_line(train),
        "exp/val_id.txt": _ids_line(val),
        "exp/test_id.txt": _ids_line(test),
        "exp/available_id.txt": _ids_line(train + val + test),
    }
    folders = tuple(f"cam{c}" for c in sysu.CAMERAS)
    return Plan("sysu", size, tuple(jobs), texts, folders)


def _regdb(n_train: int, n_test: int, per_cam: int, size, rng) -> Plan:
    n = n_train + n_test
    jobs, names = [], {}
    for pid in range(1, n + 1):
        gender = "female" if rng.random() < 0.5 else "male"
        view = "front" if rng.random() < 0.5 else "back"
        frame = int(rng.integers(1000, 9000))
        stems = [f"{gender}_{view}_{{m}}_{frame + 7 * k:05d}_{pid}.bmp" for k in range(per_cam)]
        vis = tuple(f"Visible/{pid}/{s.format(m='v')}" for s in stems)
        thr = tuple(f"Thermal/{pid}/{s.format(m='t')}" for s in stems)
        names[pid] = {"visible": vis, "thermal": thr}
        jobs.append(Job(pid, (Shot(1, False, 1, vis), Shot(2, True, 1, thr))))
    texts: dict[str, str] = {}
    for trial in regdb.TRIALS:
        order = np.random.default_rng([int(rng.integers(1 << 31)), trial]).permutation(
            np.arange(1, n + 1)
        )
        for split, members in (("train", order[:n_train]), ("test", order[n_train:])):
            for label, pid in enumerate(sorted(int(p) for p in members)):
                for modality in ("visible", "thermal"):
                    key = f"idx/{split}_{modality}_{trial}.txt"
                    texts[key] = texts.get(key, "") + "".join(
                        f"{p} {label}\n" for p in names[pid][modality]
                    )
    return Plan("regdb", size, tuple(jobs), texts, ("Visible", "Thermal"))


def _llcm(n_train: int, n_test: int, per_cam: int, size, rng) -> Plan:
    jobs: list[Job] = []
    lines: dict[str, list[str]] = {"train_vis.txt": [], "train_nir.txt": []}
    test_ids = list(range(n_train + 1, n_train + n_test + 1))
    for pid in range(1, n_train + n_test + 1):
        train = pid <= n_train
        shots = []
        for top, cams, infrared in (
            ("vis", llcm.VIS_CAMERAS, False),
            ("nir", llcm.NIR_CAMERAS, True),
        ):
            seen = sorted(int(c) for c in rng.choice(cams, int(rng.integers(2, 5)), replace=False))
            for cam in seen:
                folder = f"{'train' if train else 'test'}_{top}/cam{cam}/{pid:04d}"
                paths = tuple(
                    f"{folder}/{pid:04d}_c{cam:02d}_{k:04d}.jpg" for k in range(1, per_cam + 1)
                )
                shots.append(Shot(cam + (100 if infrared else 0), infrared, cam, paths))
                if train:
                    lines[f"train_{top}.txt"] += [f"{p} {pid - 1}\n" for p in paths]
        jobs.append(Job(pid, tuple(shots)))
    texts = {f"idx/{k}": "".join(v) for k, v in lines.items()}
    texts["idx/test_id.txt"] = _ids_line(test_ids)
    folders = tuple(f"{top}/cam{c}" for top, (_, cams) in llcm.TEST_FOLDERS.items() for c in cams)
    return Plan("llcm", size, tuple(jobs), texts, folders)
