"""``read_dataset(name, root)``: one entry point for every dataset reader."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, get_args

from vdreid.data.llcm import read_llcm
from vdreid.data.manifest import read_manifest
from vdreid.data.records import DatasetIndex
from vdreid.data.regdb import read_regdb
from vdreid.data.sysu import read_sysu
from vdreid.errors import ConfigError, DataError

DatasetName = Literal["sysu", "regdb", "llcm", "manifest"]
DATASETS: tuple[str, ...] = get_args(DatasetName)


def read_dataset(name: str, root: str | Path, *, trial: int | None = None) -> DatasetIndex:
    """Read a dataset folder (or a manifest CSV) into records.

    ``trial`` selects the RegDB trial (1..10, default 1); other datasets
    have one split and refuse it. An image in both the training and the
    test split is an error (each reader also checks its identities where
    they are global: SYSU-MM01's split files, a manifest's pid column).
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    if trial is not None and name != "regdb":
        raise ConfigError(
            f"trial={trial} applies to RegDB only; {name} has a single split: leave it unset"
        )
    root = Path(root).expanduser().absolute()
    if name == "sysu":
        index = read_sysu(root)
    elif name == "regdb":
        index = read_regdb(root, trial)
    elif name == "llcm":
        index = read_llcm(root)
    else:
        index = read_manifest(root)
    check_no_shared_images(index)
    return index


def check_no_shared_images(index: DatasetIndex) -> None:
    """DataError when an image is listed for training and for testing.

    RegDB's and LLCM's labels are numbered per split, so their identities
    cannot be compared across splits; their files can.
    """
    test = {os.path.normpath(r.path) for r in index.test}
    shared = sorted({r.path for r in index.train if os.path.normpath(r.path) in test})
    if shared:
        trial = f" trial {index.trial}" if index.trial else ""
        raise DataError(
            f"{index.name}{trial} at {index.root}: {len(shared)} image(s) are in both the training "
            f"and the test split, first {shared[0]}; testing on training images measures "
            "memorisation: fix the split (index) files so that no image is in both"
        )
