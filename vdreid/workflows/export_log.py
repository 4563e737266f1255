"""What was exported from a run, and how it was verified: ``<run>/exports.jsonl``.

When ``vdreid export`` (or the demo) verifies an export of a checkpoint
that lives in a run folder (``<run>/checkpoints/*.safetensors`` beside
``<run>/config.toml``), it appends one line to the run's exports.jsonl:
the file, its format, the backend, the verification numbers and the file's
sha256. ``vdreid report`` lists them and checks that each file is still
there, unchanged since it was verified.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from vdreid import __version__
from vdreid.errors import OutputError
from vdreid.verified_export import ExportReport
from vdreid.workflows.run_dir import RunDir


def run_of_checkpoint(checkpoint: str | Path) -> Path | None:
    """The run folder a checkpoint belongs to, or None."""
    folder = Path(checkpoint).absolute().parent
    run = folder.parent
    if folder.name == "checkpoints" and (run / "config.toml").is_file():
        return run
    return None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record_export(r: ExportReport, *, backend: str, checkpoint: str | Path) -> Path | None:
    """Append the verified export ``r`` of ``checkpoint`` to its run's
    exports.jsonl; the file written, or None when the checkpoint is not in a
    run folder (or the folder cannot take it: the export itself stands either way)."""
    run = run_of_checkpoint(checkpoint)
    if run is None:
        return None
    line = {
        "time": round(time.time(), 3),
        "path": str(Path(r.path).absolute()),
        "format": r.format,
        "backend": backend,
        "checkpoint": str(Path(checkpoint).absolute()),
        "max_abs_diff": r.max_abs_diff,
        "min_cosine": r.min_cosine,
        "tolerance": r.tolerance,
        "ok": r.ok,
        "sha256": sha256(Path(r.path)),
        "vdreid": __version__,
    }
    log = RunDir(run)
    try:
        log.append(log.exports, line)
    except OutputError:  # read-only, or an older run being written: the export stands
        return None
    return log.exports


def read_exports(run: Path) -> list[dict[str, Any]]:
    """The run's export records, latest per file (later lines replace earlier ones)."""
    path = RunDir(run).exports
    if not path.is_file():
        return []
    latest: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn last line of an interrupted append
        if isinstance(record, dict) and "path" in record:
            latest[str(record["path"])] = record
    return list(latest.values())
