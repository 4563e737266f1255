"""What a dataset reader produces: records and a dataset index.

A Record is one image: where it is, who it shows (``pid``, the dataset's
own identity number), which camera took it and in which modality. Training
labels (0..C-1) are assigned separately (:meth:`DatasetIndex.train_labels`)
so that records keep the dataset's own ids, which the evaluation protocols
need.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path

import numpy as np


class Modality(IntEnum):
    """Modality codes used everywhere (losses use IR = 1, as the official code)."""

    VISIBLE = 0
    INFRARED = 1


@dataclasses.dataclass(frozen=True, order=True)
class Record:
    path: str
    pid: int
    cam: int
    modality: Modality


@dataclasses.dataclass(frozen=True)
class DatasetIndex:
    """A dataset read from disk.

    ``train`` are the training records (for SYSU: train + val ids, as the
    official recipe; ``val`` holds the val-id records again, and a run that
    selects checkpoints on them trains on :meth:`holding_out_val`), ``test``
    every record an evaluation protocol may draw its queries and galleries
    from. ``name`` is the dataset key (sysu, regdb, llcm, manifest) the
    protocols dispatch on; ``root`` the folder read; ``trial`` the RegDB
    trial (1..10) or None; ``notes`` what the reader decided on the user's
    behalf (a fallback, a default trial), one sentence each, for reports and
    logs.
    """

    name: str
    root: Path
    train: tuple[Record, ...]
    test: tuple[Record, ...]
    val: tuple[Record, ...] = ()
    trial: int | None = None
    notes: tuple[str, ...] = ()

    def holding_out_val(self) -> DatasetIndex:
        """This index with the val ids' records removed from ``train``.

        For runs that select checkpoints on ``val``: validating on identities
        the network was trained on would measure memorisation.
        """
        val_ids = {r.pid for r in self.val}
        return dataclasses.replace(self, train=tuple(r for r in self.train if r.pid not in val_ids))

    def splits(self) -> dict[str, tuple[Record, ...]]:
        """``train`` (what a run trains on: SYSU-MM01's val ids included, as
        the official recipe), ``val`` (those val ids again), ``test``; empty
        ones left out."""
        named = {"train": self.train, "val": self.val, "test": self.test}
        return {name: records for name, records in named.items() if records}

    def split_counts(self) -> dict[str, dict[str, int]]:
        """{split: {"images": n, "identities": k}} over :meth:`splits`: what
        `vdreid data synth` and `vdreid data check` report for a tree."""
        return {
            name: {"images": len(records), "identities": len({r.pid for r in records})}
            for name, records in self.splits().items()
        }

    def train_labels(self) -> tuple[np.ndarray, int]:
        """Contiguous 0..C-1 labels for ``train`` (sorted pid order) and C."""
        return relabel(self.train)


def relabel(records: Sequence[Record]) -> tuple[np.ndarray, int]:
    """Map pids to 0..C-1 in increasing pid order."""
    pids = sorted({r.pid for r in records})
    index = {p: i for i, p in enumerate(pids)}
    return np.array([index[r.pid] for r in records], dtype=np.int64), len(pids)


def arrays(records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pids, cams, modalities) as int64 arrays, in record order."""
    pids = np.fromiter((r.pid for r in records), dtype=np.int64, count=len(records))
    cams = np.fromiter((r.cam for r in records), dtype=np.int64, count=len(records))
    mods = np.fromiter((int(r.modality) for r in records), dtype=np.int64, count=len(records))
    return pids, cams, mods
