"""Any other dataset, described by a CSV manifest.

Columns (header row required, any order, extra columns ignored):
``path`` (relative to the manifest's folder), ``pid`` (integer identity),
``cam`` (integer camera), ``modality`` (``visible`` or ``infrared``),
``split`` (``train``, ``val`` or ``test``). ``train`` holds the train rows
only; ``val`` and ``test`` their rows; records keep the manifest's order.
The file is UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8").

Errors, each naming the line(s): a row that repeats another, two rows that
give one image different values, and an identity (pid) in the test split
that is also in train or val (a model evaluated on identities it was
trained on measures memorisation).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from vdreid.data.records import DatasetIndex, Modality, Record
from vdreid.errors import DataError

COLUMNS = ("path", "pid", "cam", "modality", "split")
MODALITY_NAMES = {"visible": Modality.VISIBLE, "infrared": Modality.INFRARED}
SPLITS = ("train", "val", "test")
DEFAULT_NAME = "manifest.csv"


def manifest_path(root: Path) -> Path:
    """``root`` itself when it is a file, else ``root/manifest.csv``."""
    path = root / DEFAULT_NAME if root.is_dir() else root
    if not path.is_file():
        raise DataError(
            f"manifest {path} does not exist; pass a CSV file (or a folder holding {DEFAULT_NAME}) "
            f"with columns {', '.join(COLUMNS)}"
        )
    return path


def read_manifest(root: Path) -> DatasetIndex:
    path = manifest_path(root)
    base = path.parent
    rows: dict[str, list[Record]] = {s: [] for s in SPLITS}
    seen: dict[str, tuple[int, str, Record]] = {}  # image -> (line, split, record)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise DataError(
                    f"manifest {path} lacks column(s) {', '.join(missing)} (header: {', '.join(header) or 'empty'}); "
                    f"expected a header row with {', '.join(COLUMNS)}"
                )
            reader.fieldnames = header
            for row in reader:
                lineno = reader.line_num
                split, record = _row(row, path, lineno, base)
                _check_repeat(seen, path, lineno, split, record)
                rows[split].append(record)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"manifest {path} is not UTF-8 text ({exc}); save it as UTF-8 CSV"
        ) from None
    if not rows["train"] and not rows["test"]:
        raise DataError(
            f"manifest {path} has no train or test rows; expected split values {', '.join(SPLITS)}"
        )
    _check_test_ids(seen, path)
    return DatasetIndex(
        name="manifest",
        root=base,
        train=tuple(rows["train"]),
        val=tuple(rows["val"]),
        test=tuple(rows["test"]),
    )


def _row(row: dict[str, str | None], path: Path, lineno: int, base: Path) -> tuple[str, Record]:
    where = f"{path}:{lineno}"
    values = {c: (row.get(c) or "").strip() for c in COLUMNS}
    for name in ("pid", "cam"):
        if not values[name].lstrip("-").isdigit() or int(values[name]) < 0:
            raise DataError(f"{where}: {name} {values[name]!r} is not a non-negative integer")
    modality = values["modality"].lower()
    if modality not in MODALITY_NAMES:
        raise DataError(f"{where}: modality {values['modality']!r}; expected visible or infrared")
    split = values["split"].lower()
    if split not in SPLITS:
        raise DataError(f"{where}: split {values['split']!r}; expected one of {', '.join(SPLITS)}")
    image = base / values["path"]
    if not values["path"] or not image.is_file():
        raise DataError(
            f"{where}: image {image} does not exist; paths are relative to the manifest's folder"
        )
    return split, Record(
        str(image), int(values["pid"]), int(values["cam"]), MODALITY_NAMES[modality]
    )


def _describe(split: str, r: Record) -> str:
    return f"pid {r.pid}, cam {r.cam}, {r.modality.name.lower()}, {split}"


def _check_repeat(
    seen: dict[str, tuple[int, str, Record]], path: Path, lineno: int, split: str, r: Record
) -> None:
    key = os.path.normpath(r.path)
    if key not in seen:
        seen[key] = (lineno, split, r)
        return
    first, first_split, other = seen[key]
    if (first_split, other.pid, other.cam, other.modality) == (split, r.pid, r.cam, r.modality):
        raise DataError(
            f"{path}:{lineno} repeats line {first} (image {r.path}); a repeated row counts the "
            "image twice (in training, and as two queries or gallery items in evaluation): "
            "delete one of them"
        )
    raise DataError(
        f"{path}: lines {first} and {lineno} both list image {r.path}, as "
        f"({_describe(first_split, other)}) and ({_describe(split, r)}); an image has one "
        "identity, camera, modality and split: keep the right row, delete the other"
    )


def _check_test_ids(seen: dict[str, tuple[int, str, Record]], path: Path) -> None:
    """No test identity may also be a train or val identity."""
    first_line: dict[tuple[str, int], int] = {}
    for lineno, split, r in seen.values():
        first_line.setdefault(("test" if split == "test" else "fit", r.pid), lineno)
    shared = sorted(
        pid for kind, pid in first_line if kind == "test" and ("fit", pid) in first_line
    )
    if shared:
        pid = shared[0]
        raise DataError(
            f"{path}: {len(shared)} identit{'y is' if len(shared) == 1 else 'ies are'} in the test "
            f"split and in train/val, first pid {pid} (lines {first_line[('fit', pid)]} and "
            f"{first_line[('test', pid)]}), all: {', '.join(map(str, shared[:20]))}"
            f"{' ...' if len(shared) > 20 else ''}; evaluating on identities the model was "
            "trained on measures memorisation, not re-identification: give every identity one "
            "side of the split"
        )
