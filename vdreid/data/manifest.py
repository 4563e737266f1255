"""Any other dataset, described by a CSV manifest.

Columns (header row required, any order, extra columns ignored):
``path`` (relative to the manifest's folder), ``pid`` (integer identity),
``cam`` (integer camera), ``modality`` (``visible`` or ``infrared``),
``split`` (``train``, ``val`` or ``test``). ``train`` holds the train rows
only; ``val`` and ``test`` their rows; records keep the manifest's order.
"""

from __future__ import annotations

import csv
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
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise DataError(
                    f"manifest {path} lacks column(s) {', '.join(missing)} (header: {', '.join(header) or 'empty'}); "
                    f"expected a header row with {', '.join(COLUMNS)}"
                )
            reader.fieldnames = header
            for lineno, row in enumerate(reader, start=2):
                split, record = _row(row, path, lineno, base)
                rows[split].append(record)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"manifest {path} is not UTF-8 text ({exc}); save it as UTF-8 CSV"
        ) from None
    if not rows["train"] and not rows["test"]:
        raise DataError(
            f"manifest {path} has no train or test rows; expected split values {', '.join(SPLITS)}"
        )
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
