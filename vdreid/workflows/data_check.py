"""``vdreid data check``: read a dataset, count it, and size its evaluation protocols.

The report (a JSON-ready dict) holds, per split, the images, identities and
per-modality / per-camera counts, the identities seen in one modality only,
and per protocol mode the query and gallery sizes of trial 1 with the
number of valid queries (a query with at least one true match left after
the removal rule). Layout errors raise DataError at once; a protocol that
cannot be built on this tree (say, image counts that do not match the
official SYSU permutation file) is listed under ``problems``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vdreid.data import regdb
from vdreid.data.files import image_names
from vdreid.data.images import verify_image
from vdreid.data.progress import progress_bar
from vdreid.data.readers import read_dataset
from vdreid.data.records import DatasetIndex, Modality, Record
from vdreid.errors import DataError
from vdreid.eval.protocols import protocol_trials
from vdreid.eval.trials import count_valid_queries

#: (mode, shots, sampler, direction) rows of the report, per dataset.
PROTOCOL_ROWS: dict[str, list[dict[str, Any]]] = {
    "sysu": [
        {"mode": "all", "shots": 1, "sampler": "official"},
        {"mode": "indoor", "shots": 1, "sampler": "official"},
        {"mode": "all", "shots": 10, "sampler": "official"},
        {"mode": "indoor", "shots": 10, "sampler": "official"},
        {"mode": "all", "shots": 1, "sampler": "agw"},
        {"mode": "indoor", "shots": 1, "sampler": "agw"},
    ],
    "regdb": [{"direction": "v2t"}, {"direction": "t2v"}],
    "llcm": [{"direction": "t2v"}, {"direction": "v2t"}],
    "manifest": [{"direction": "t2v"}, {"direction": "v2t"}],
}
_LISTED = 20  # identities listed by number in the report (the count is always complete)


def check_dataset(
    name: str, root: str | Path, *, decode: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Validate ``root`` as dataset ``name`` and describe it (module doc)."""
    trial = 1 if name == "regdb" else None
    index = read_dataset(name, root, trial=trial)
    report: dict[str, Any] = {"dataset": name, "root": str(index.root), "notes": list(index.notes)}
    counts = index.split_counts()  # the counts `vdreid data synth` reports
    report["splits"] = {
        s: {**split_summary(records), **counts[s]} for s, records in index.splits().items()
    }
    problems: list[str] = []
    if name == "regdb":
        report["regdb"] = regdb_layout(index.root, problems)
    report["protocols"] = protocol_summary(index, problems)
    if decode:
        records = index.train + index.val + index.test
        paths = sorted({r.path for r in records})
        with progress_bar(len(paths), "decoding every image", enabled=progress) as advance:
            for p in paths:
                verify_image(p)
                advance(1)
        report["decoded"] = len(paths)
    report["problems"] = problems
    report["ok"] = not problems
    return report


def split_summary(records: Sequence[Record]) -> dict[str, Any]:
    by_mod: dict[int, set[int]] = {m: set() for m in Modality}
    for r in records:
        by_mod[r.modality].add(r.pid)
    vis_only = sorted(by_mod[Modality.VISIBLE] - by_mod[Modality.INFRARED])
    ir_only = sorted(by_mod[Modality.INFRARED] - by_mod[Modality.VISIBLE])
    mods = Counter(r.modality for r in records)
    cams = Counter(r.cam for r in records)
    return {
        "images": len(records),
        "identities": len({r.pid for r in records}),
        "visible": mods[Modality.VISIBLE],
        "infrared": mods[Modality.INFRARED],
        "cameras": {str(c): cams[c] for c in sorted(cams)},
        "visible_only_ids": {"count": len(vis_only), "first": vis_only[:_LISTED]},
        "infrared_only_ids": {"count": len(ir_only), "first": ir_only[:_LISTED]},
    }


def protocol_summary(index: DatasetIndex, problems: list[str]) -> list[dict[str, Any]]:
    rows = []
    for options in PROTOCOL_ROWS[index.name]:
        row: dict[str, Any] = {**options, "trial": 1}
        try:
            trials = protocol_trials(
                index, trials=1 if index.name in ("sysu", "llcm") else None, **options
            )
        except DataError as exc:
            problems.append(f"protocol {_label(options)}: {exc}")
            row["error"] = str(exc)
            rows.append(row)
            continue
        first = trials[0]
        row.update(
            queries=int(len(first.query)),
            gallery=int(len(first.gallery)),
            valid_queries=count_valid_queries(index.test, first),
        )
        rows.append(row)
    return rows


def _label(options: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in options.items())


def regdb_layout(root: Path, problems: list[str]) -> dict[str, Any]:
    """Identity folders, images per identity, and every trial's index files."""
    folders = regdb.identity_folders(root)
    per_id = {
        top: [len(image_names(root / top / n)) for n in names] for top, names in folders.items()
    }
    trials = []
    for t in regdb.TRIALS:
        row: dict[str, Any] = {"trial": t}
        missing = [
            str(regdb.index_file(root, s, m, t).relative_to(root))
            for s in ("train", "test")
            for m in regdb.MODALITIES
            if not regdb.index_file(root, s, m, t).is_file()
        ]
        if missing:
            problems.append(
                f"RegDB trial {t}: missing index file(s) {', '.join(missing)} under {root}"
            )
            row["missing"] = missing
            trials.append(row)
            continue
        index = read_dataset("regdb", root, trial=t)  # validates paths and labels
        row["lines"] = {
            regdb.index_file(root, s, m, t).name: sum(1 for r in getattr(index, s) if r.cam == cam)
            for s in ("train", "test")
            for m, (_, cam) in regdb.MODALITIES.items()
        }
        row["train_ids"] = len({r.pid for r in index.train})
        row["test_ids"] = len({r.pid for r in index.test})
        trials.append(row)
    return {
        "identity_folders": {top: len(names) for top, names in folders.items()},
        "images_per_identity": {
            top: {"min": min(c, default=0), "max": max(c, default=0)} for top, c in per_id.items()
        },
        "trials": trials,
    }
