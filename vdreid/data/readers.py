"""``read_dataset(name, root)``: one entry point for every dataset reader."""

from __future__ import annotations

from pathlib import Path

from vdreid.data.llcm import read_llcm
from vdreid.data.manifest import read_manifest
from vdreid.data.records import DatasetIndex
from vdreid.data.regdb import read_regdb
from vdreid.data.sysu import read_sysu
from vdreid.errors import ConfigError

DATASETS = ("sysu", "regdb", "llcm", "manifest")


def read_dataset(name: str, root: str | Path, *, trial: int | None = None) -> DatasetIndex:
    """Read a dataset folder (or a manifest CSV) into records.

    ``trial`` selects the RegDB trial (1..10, default 1); other datasets
    have one split and refuse it.
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    if trial is not None and name != "regdb":
        raise ConfigError(
            f"trial={trial} applies to RegDB only; {name} has a single split: leave it unset"
        )
    root = Path(root).expanduser().absolute()
    if name == "sysu":
        return read_sysu(root)
    if name == "regdb":
        return read_regdb(root, trial)
    if name == "llcm":
        return read_llcm(root)
    return read_manifest(root)
