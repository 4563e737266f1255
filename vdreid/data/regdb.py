"""RegDB: ``Visible/<id>/*.bmp``, ``Thermal/<id>/*.bmp`` and ``idx/`` trial files.

Each trial t (1..10) is four files ``idx/{train,test}_{visible,thermal}_{t}.txt``
of ``<relpath> <label>`` lines. The identity is the label column only (the
folder name is not parsed); a label must lie in ``0..N-1`` with N the number
of identity folders under ``Visible/``. RegDB has one camera per modality:
records get camera 1 (visible) and 2 (thermal).
"""

from __future__ import annotations

from pathlib import Path

from vdreid.data import files
from vdreid.data.records import DatasetIndex, Modality, Record
from vdreid.errors import ConfigError

TRIALS = tuple(range(1, 11))
MODALITIES = {"visible": (Modality.VISIBLE, 1), "thermal": (Modality.INFRARED, 2)}
FOLDERS = ("Visible", "Thermal")


def index_file(root: Path, split: str, modality: str, trial: int) -> Path:
    return root / "idx" / f"{split}_{modality}_{trial}.txt"


def identity_folders(root: Path) -> dict[str, list[str]]:
    """{"Visible": [...], "Thermal": [...]} identity folder names; each must hold images."""
    out = {}
    for top in FOLDERS:
        folder = files.require_dir(
            root / top,
            "RegDB folder",
            "expected Visible/<id>/ and Thermal/<id>/ with the .bmp images",
        )
        names = sorted(
            (p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=_num,
        )
        for name in names:
            files.nonempty_image_names(folder / name, "RegDB identity folder")
        out[top] = names
    return out


def _num(name: str) -> tuple[int, str]:
    return (int(name), name) if name.isdigit() else (1 << 30, name)


def read_regdb(root: Path, trial: int | None) -> DatasetIndex:
    root = files.require_dir(
        root, "RegDB folder", "pass the folder that holds Visible/, Thermal/ and idx/"
    )
    notes: tuple[str, ...] = ()
    if trial is None:
        trial, notes = 1, ("no trial given: reading RegDB trial 1 (pass trial=1..10)",)
    if trial not in TRIALS:
        raise ConfigError(f"RegDB trial must be one of 1..10, got {trial!r}")
    files.require_dir(
        root / "idx", "RegDB index folder", "expected idx/{train,test}_{visible,thermal}_{t}.txt"
    )
    n_ids = len(identity_folders(root)["Visible"])
    splits = {}
    for split in ("train", "test"):
        records: list[Record] = []
        for modality, (mod, cam) in MODALITIES.items():
            path = index_file(root, split, modality, trial)
            for rel, label in files.parse_index_file(path, root, max_label=n_ids):
                records.append(Record(str(root / rel), label, cam, mod))
        splits[split] = tuple(records)
    return DatasetIndex(
        name="regdb",
        root=root,
        train=splits["train"],
        test=splits["test"],
        trial=trial,
        notes=notes,
    )
