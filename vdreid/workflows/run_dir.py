"""The run folder: what a training run writes, and where.

<out>/config.toml            the resolved TrainConfig (readable by --config), as the run
                             continues; `--resume auto` takes it when no --config is given
<out>/spec.json, loss.json   the model and loss specs
<out>/metrics.jsonl          one JSON object per log interval / validation; each
                             (epoch, step) once: a resume cuts it back to its checkpoint
<out>/resumes.jsonl          one JSON object per resume: from which checkpoint, after which
                             epoch, and every setting that differs from the recorded run
<out>/checkpoints/last.safetensors, best.safetensors
<out>/eval.json              the final evaluation with the dataset's protocol
<out>/exports.jsonl          the verified exports of its checkpoints (workflows/export_log.py)
<out>/report.html            `vdreid report` (workflows/report.py)
<out>/.vdreid-files.json     the files above that vdreid wrote (vdreid.outputs.OwnedFolder)
<out>/.vdreid.lock           held while a process writes the folder

A run folder is vdreid's own: a fresh run refuses a folder holding a
checkpoint (resume it) or any file vdreid did not write there, and
replaces only the files it wrote.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vdreid import outputs
from vdreid.checkpoint import read_metadata
from vdreid.config import TrainConfig, dump_toml
from vdreid.errors import CheckpointError, ConfigError

#: metadata keys of a run's checkpoints
META_EPOCH = "epoch"  # epochs completed
META_SAMPLER = "sampler"
META_BEST = "best_val_map"  # the best validation mAP so far (%)
META_DATASET = "dataset"
META_TRIAL = "trial"  # RegDB: the split trained on (its test ids were never seen)

#: What a run writes, relative to its folder (the ones a run of an older
#: vdreid, without a file list, is known to have written).
RUN_FILES = (
    "config.toml",
    "spec.json",
    "loss.json",
    "metrics.jsonl",
    "resumes.jsonl",
    "checkpoints/last.safetensors",
    "checkpoints/best.safetensors",
    "eval.json",
    "exports.jsonl",
    "report.html",
)
_FRESH_TODO = "choose a new or empty --out (or one of vdreid's own runs), or move those files away"


class RunDir:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.files = outputs.OwnedFolder(self.root, "run")

    config = property(lambda self: self.root / "config.toml")
    spec = property(lambda self: self.root / "spec.json")
    loss = property(lambda self: self.root / "loss.json")
    metrics = property(lambda self: self.root / "metrics.jsonl")
    resumes = property(lambda self: self.root / "resumes.jsonl")
    checkpoints = property(lambda self: self.root / "checkpoints")
    last = property(lambda self: self.root / "checkpoints" / "last.safetensors")
    best = property(lambda self: self.root / "checkpoints" / "best.safetensors")
    evaluation = property(lambda self: self.root / "eval.json")
    exports = property(lambda self: self.root / "exports.jsonl")
    report = property(lambda self: self.root / "report.html")

    @contextlib.contextmanager
    def writing(self, *, resuming: bool = False) -> Iterator[RunDir]:
        """Create the folder and hold its lock: a second run into it is refused.
        A folder holding files vdreid did not write is refused before anything
        (the lock file included) is written there."""
        self.refuse_foreign(resuming=resuming)
        with self.files.locked():
            yield self

    def _legacy(self, resuming: bool) -> list[str]:
        """A run of a vdreid that kept no file list, resumed: its standard files are its own."""
        if not resuming or self.files.has_marker() or not self.last.is_file():
            return []
        return [f for f in RUN_FILES if (self.root / f).exists()]

    def claim(self, *rels: str) -> None:
        """List files written into a finished (or running) run by other commands
        (its report, its export log) before they are written. A run of an older
        vdreid, without a file list, gets its standard files listed too."""
        owned = set(self.files.owned())
        missing = [r for r in rels if r not in owned]
        if missing:  # a run of this vdreid listed its own at the start: no lock needed
            with self.files.locked():
                self.files.claim(*self._legacy(True), *missing)

    def append(self, path: Path, record: dict[str, Any]) -> None:
        """One JSON line at the end of the run's ``path`` (claimed first)."""
        self.claim(path.relative_to(self.root).as_posix())
        self._append(path, record)

    def refuse_foreign(self, *, resuming: bool) -> None:
        self.files.refuse_foreign(_FRESH_TODO, also_owned=self._legacy(resuming))

    def prepare(
        self,
        cfg: TrainConfig,
        spec_json: str,
        loss_json: str,
        *,
        resumed: tuple[Path, int] | None,
    ) -> list[str]:
        """Check the folder is this run's to write, and write the configuration.

        ``resumed``: the checkpoint the run resumes from and its epochs done,
        None for a fresh run. A fresh run refuses a folder with a
        checkpoint, and removes the files of a run of its own that stopped
        before its first checkpoint. A resume cuts metrics.jsonl back to the
        checkpoint and records the settings that changed. Returns notes for
        the user (one line each).
        """
        notes: list[str] = []
        if resumed is None and self.last.exists():
            raise ConfigError(
                f"{self.root} already holds a run ({self.last}); resume it with --resume auto "
                "or choose another --out"
            )
        self.refuse_foreign(resuming=resumed is not None)
        self.files.claim(*self._legacy(resumed is not None))
        if resumed is None:
            if self.files.remove_owned():
                notes.append(
                    f"{self.root} held a run stopped before its first checkpoint: "
                    "its files were removed, starting it again"
                )
        self.files.claim(*RUN_FILES)  # before any of them is written
        if resumed is not None:
            changes = self._changes(cfg)
            if changes:
                notes.append(
                    "settings changed since the recorded run: "
                    + "; ".join(f"{k} {_show(a)} -> {_show(b)}" for k, (a, b) in changes.items())
                    + f" (recorded in {self.resumes})"
                )
            self._record_resume(*resumed, changes)
            self._cut_metrics(resumed[1])
        for path, text in (
            (self.config, dump_toml(cfg)),
            (self.spec, spec_json),
            (self.loss, loss_json),
        ):
            outputs.write_text(path, text, "run file")
        return notes

    def _changes(self, cfg: TrainConfig) -> dict[str, tuple[Any, Any]]:
        """{field: (recorded, now)} for every setting that differs from config.toml."""
        from vdreid.config import read_toml, validate

        if not self.config.is_file():
            return {}
        try:
            recorded = validate(TrainConfig, read_toml(self.config), f"recorded {self.config}")
        except ConfigError:
            return {"config.toml": ("unreadable", "replaced")}
        was, now = _flat(recorded), _flat(cfg)
        return {
            k: (was.get(k), now.get(k))
            for k in sorted(was.keys() | now.keys())
            if k != "out" and was.get(k) != now.get(k)
        }

    def _record_resume(
        self, checkpoint: Path, epoch: int, changes: dict[str, tuple[Any, Any]]
    ) -> None:
        entry = {
            "time": round(time.time(), 3),
            "checkpoint": str(checkpoint),
            "after_epoch": epoch,
            "changed": {k: {"was": a, "now": b} for k, (a, b) in changes.items()},
        }
        self._append(self.resumes, entry)

    def _cut_metrics(self, epoch: int) -> None:
        """Keep the lines of epochs < ``epoch``: the resumed run writes the rest again."""
        kept = [r for r in self.read_metrics() if int(r.get("epoch", -1)) < epoch]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        outputs.write_text(self.metrics, text, "metrics log")

    def log(self, record: dict[str, Any]) -> None:
        self._append(self.metrics, {"time": round(time.time(), 3), **record})

    def _append(self, path: Path, record: dict[str, Any]) -> None:
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as exc:
            raise outputs.output_error(path, exc, "run log") from None

    def read_metrics(self) -> list[dict[str, Any]]:
        """The log's records; a line cut short by a kill is skipped."""
        if not self.metrics.exists():
            return []
        out = []
        for line in self.metrics.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out


def recorded_config(out: Path) -> Path | None:
    """The run folder's config.toml, for `--resume auto` without --config."""
    path = Path(out) / "config.toml"
    return path if path.is_file() else None


def _flat(cfg: TrainConfig) -> dict[str, Any]:
    def walk(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield from walk(f"{prefix}{k}.", v)
        else:
            yield prefix[:-1], value

    return dict(walk("", json.loads(cfg.model_dump_json())))


def _show(value: Any) -> str:
    return "unset" if value is None else json.dumps(value)


def epochs_in(path: Path) -> int | None:
    """The epochs done in a training checkpoint, None when there is none."""
    if not path.is_file():
        return None
    try:
        return int(read_metadata(path).get(META_EPOCH, ""))
    except (CheckpointError, ValueError):
        return None
