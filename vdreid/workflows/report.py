"""``vdreid report RUN_DIR``: one self-contained HTML page about a training run.

What the page holds, from the run folder (docs/inference.md):

- the metrics table (mean ± std over trials) of eval.json and of any
  evaluations given to compare with, and their CMC curves;
- the loss curves of metrics.jsonl (validation overlaid);
- ranked lists (best and worst queries of the protocol's first trial) and
  an embedding map of test identities, computed with the run's last
  checkpoint on its dataset (a sample of queries, the full gallery);
- the checkpoints, each checked (spec, tensors, finite values) without a
  framework, and the exports recorded in exports.jsonl, each checked
  against the file on disk;
- the resolved configuration.

What cannot be drawn (no dataset at the configured root, no backend, no
matplotlib for one picture) is said in the page's notes, never skipped in
silence.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vdreid import __version__, outputs
from vdreid.checkpoint import load_checkpoint, model_state, state_report
from vdreid.config import TrainConfig, resolve_train_config
from vdreid.data.readers import read_dataset
from vdreid.data.records import Record
from vdreid.errors import DataError, VdreidError
from vdreid.eval.trials import Trial
from vdreid.report.figure import require_matplotlib
from vdreid.report.html_page import Block, Cell, Figure, Page, Table, Text, render_page
from vdreid.spec.model import spec_from_json, spec_hash
from vdreid.spec.params import param_table
from vdreid.workflows.embed import embed_images
from vdreid.workflows.evaluate import protocol_config_trials
from vdreid.workflows.export_log import read_exports, sha256
from vdreid.workflows.model_source import open_model
from vdreid.workflows.pictures import lists_title, trial_lists
from vdreid.workflows.run_dir import RunDir

#: Queries ranked for the pictures (evenly spread over the trial's queries).
SAMPLED_QUERIES = 200
#: The map: identities (most images first) and images per identity and modality.
MAP_IDS, MAP_PER_MODALITY = 10, 12
METRICS = ("R1", "R5", "R10", "R20", "mAP", "mINP")


@dataclasses.dataclass(frozen=True)
class Report:
    page: Page
    html: str

    @property
    def notes(self) -> tuple[str, ...]:
        return self.page.notes

    def write(self, path: Path, run: RunDir | None = None) -> Path:
        """Write the page to ``path``; inside ``run``'s folder it is claimed first."""
        path = Path(path)
        if run is not None and _inside(path, run.root):
            run.claim(path.absolute().relative_to(run.root.absolute()).as_posix())
        return outputs.write_text(path, self.html, "report")


def _inside(path: Path, folder: Path) -> bool:
    return folder.absolute() in path.absolute().parents


def run_folder(run_dir: Path) -> RunDir:
    """``run_dir`` as a run folder; a DataError when it is not one."""
    run = RunDir(Path(run_dir))
    if not any(p.is_file() for p in (run.config, run.metrics, run.evaluation)):
        raise DataError(
            f"{run.root} is not a run folder (no config.toml, metrics.jsonl or eval.json); pass "
            "the --out folder of `vdreid train` (the demo's is demo/run)"
        )
    return run


def check_target(path: Path, run: RunDir, compare: Sequence[Path] = ()) -> None:
    """Before any work: the report's ``path`` is writable and none of the files it reads."""
    reads = {
        "run's configuration": run.config,
        "run's metrics log": run.metrics,
        "run's evaluation": run.evaluation,
        "run's export log": run.exports,
        "run's last checkpoint": run.last,
        "run's best checkpoint": run.best,
        **{f"--compare {p}": p for p in compare},
    }
    outputs.refuse_input(path, reads, "--out")
    outputs.check_writable(path, "--out")


def build_report(
    run_dir: Path,
    *,
    label: str | None = None,
    compare: Sequence[tuple[str, Mapping[str, Any]]] = (),
    backend: str | None = None,
    device: str | None = None,
    model_pictures: bool = True,
    map_method: str = "pca",
    queries: int = 6,
    top_k: int = 10,
    batch_size: int = 64,
    progress: bool = True,
) -> Report:
    """The report of the run in ``run_dir``; ``compare``: (label, eval.json dict) pairs."""
    require_matplotlib()  # a report is its pictures: say which extra is missing, up front
    run = run_folder(run_dir)
    notes: list[str] = []
    cfg = _config(run, notes)
    own = _json(run.evaluation, notes)
    evaluations = ([(label or run.root.name, own)] if own else []) + list(compare)
    blocks: list[Block] = []
    if evaluations:
        blocks.append(_metrics_table(evaluations))
        _picture(blocks, notes, "CMC curves", lambda: _cmc(evaluations))
    else:
        notes.append(f"no evaluation: {run.evaluation} does not exist (trained with --no-eval?)")
    records = run.read_metrics()
    if any("global_step" in r for r in records):
        _picture(blocks, notes, "Loss curves", lambda: _losses(records, cfg))
    else:
        notes.append(f"no training records in {run.metrics}: no loss curves")
    if model_pictures:
        blocks += _model_pictures(
            run, cfg, notes, backend, device, map_method, queries, top_k, batch_size, progress
        )
    blocks.append(_checkpoints_table(run))
    blocks.append(_exports_table(run))
    if run.config.is_file():
        blocks.append(Text("Configuration (config.toml)", run.config.read_text(encoding="utf-8")))
    page = Page(
        title=f"vdreid report: {_name(run.root)}",
        facts=_facts(run, cfg, own),
        notes=tuple(notes),
        blocks=tuple(blocks),
        footer=f"vdreid {__version__}, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
    )
    return Report(page, render_page(page))


def _name(folder: Path) -> str:
    """A run folder by its last two names (``runs/sysu``, ``demo/run``): the last
    alone is often just ``run``."""
    folder = folder.absolute()
    return f"{folder.parent.name}/{folder.name}" if folder.parent.name else folder.name


def _config(run: RunDir, notes: list[str]) -> TrainConfig | None:
    if not run.config.is_file():
        notes.append(f"{run.config} does not exist: the run's settings are unknown")
        return None
    try:
        return resolve_train_config(run.config)
    except VdreidError as exc:
        notes.append(f"cannot read {run.config}: {exc}")
        return None


def _json(path: Path, notes: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"cannot read {path}: {exc}")
        return None


def _facts(run: RunDir, cfg: TrainConfig | None, own: Mapping[str, Any] | None) -> tuple:
    facts = [("run folder", str(run.root.absolute()))]
    if cfg is not None:
        facts += [
            ("model", f"{cfg.preset} preset, input {_size(cfg)}"),
            ("data", f"{cfg.dataset} at {cfg.root}"),
            ("training", f"{cfg.backend} backend, {cfg.epochs} epochs, seed {cfg.seed}"),
        ]
    if own:
        facts.append(("evaluation", _protocol(own)))
    return tuple(facts)


def _size(cfg: TrainConfig) -> str:
    return "the preset's" if cfg.input_size is None else f"{cfg.input_size[0]}x{cfg.input_size[1]}"


def _protocol(ev: Mapping[str, Any], *, short: bool = False) -> str:
    """ "sysu, all-search, 1-shot, official sampler, 10 trial(s), euclidean distance"."""
    p = ev.get("protocol", {})
    parts = [str(ev.get("dataset", "?"))]
    if ev.get("dataset") == "sysu":
        sampler = p.get("sampler") if short else f"{p.get('sampler')} sampler"
        parts += [f"{p.get('mode')}-search", f"{p.get('shots')}-shot", str(sampler)]
    elif p.get("direction"):
        parts.append(str(p["direction"]))
    trials, distance = ev.get("num_trials", "?"), ev.get("distance", "?")
    if short:
        return " ".join(parts) + f", {trials} trials, {distance}"
    return ", ".join(parts) + f", {trials} trial(s), {distance} distance"


def _metrics_table(evaluations: Sequence[tuple[str, Mapping[str, Any]]]) -> Table:
    rows = []
    for name, ev in evaluations:
        s = ev.get("summary", {})
        cells: list[Cell] = [
            (f"{s[m]['mean']:.2f} ± {s[m]['std']:.2f}", "num") if m in s else "-" for m in METRICS
        ]
        rows.append((name, _protocol(ev, short=True), *cells))
    return Table(
        "Metrics",
        ("evaluation", "protocol", *(f"{m} (%)" for m in METRICS)),
        tuple(rows),
        note="mean ± standard deviation over the trials (population, ddof 0)",
    )


def _picture(blocks: list[Block], notes: list[str], title: str, draw) -> None:
    """Append ``draw()``'s figure, or a note saying why it is missing."""
    try:
        blocks.append(draw())
    except VdreidError as exc:
        notes.append(f"{title} omitted: {exc}")


def _cmc(evaluations: Sequence[tuple[str, Mapping[str, Any]]]) -> Figure:
    from vdreid.report.cmc import cmc_curve, cmc_picture

    curves = [cmc_curve(name, ev) for name, ev in evaluations]
    return Figure("CMC curves", cmc_picture(curves, title="CMC, mean over trials (band: ± std)"))


def _losses(records: list[dict[str, Any]], cfg: TrainConfig | None) -> Figure:
    from vdreid.report.loss_curves import loss_picture

    title = (
        "Training" if cfg is None else f"Training: {cfg.preset} on {cfg.dataset} ({cfg.backend})"
    )
    return Figure(
        "Loss curves",
        loss_picture(records, title=title),
        "each loss term as logged (averaged over each log interval); validation mAP / R1 "
        "on the total's panel when the run validated",
    )


@dataclasses.dataclass(frozen=True)
class _Sample:
    """What the model's pictures are drawn from: trial 1 of the run's protocol,
    its sampled queries, the map's images, and features of all of them
    (``features[i]`` belongs to ``records[rows[i]]``)."""

    dataset: str
    records: tuple[Record, ...]
    trial: Trial
    queries: np.ndarray
    shown: np.ndarray
    rows: np.ndarray
    features: np.ndarray
    distance: str


def _model_pictures(
    run: RunDir,
    cfg: TrainConfig | None,
    notes: list[str],
    backend: str | None,
    device: str | None,
    map_method: str,
    queries: int,
    top_k: int,
    batch_size: int,
    progress: bool,
) -> list[Block]:
    """Ranked lists (best and worst first) and the map, from the last checkpoint."""
    if cfg is None or not run.last.is_file():
        notes.append(
            f"ranked lists and the embedding map need the run's config.toml and {run.last}"
        )
        return []
    try:
        sample = _sample(run.last, cfg, backend, device, batch_size, progress)
    except VdreidError as exc:
        notes.append(f"ranked lists and the embedding map omitted: {exc}")
        return []
    if cfg.protocol.rerank:
        notes.append(
            "the ranked lists use plain distances: re-ranking depends on the whole query set, "
            "and the pictures rank a sample of it"
        )
    blocks: list[Block] = []
    for order in ("best", "worst"):
        draw = functools.partial(_ranked_figure, sample, order, queries, top_k)
        _picture(blocks, notes, f"Ranked lists ({order} first)", draw)
    _picture(blocks, notes, "Embedding map", functools.partial(_map_figure, sample, map_method))
    return blocks


def _sample(
    checkpoint: Path,
    cfg: TrainConfig,
    backend: str | None,
    device: str | None,
    batch_size: int,
    progress: bool,
) -> _Sample:
    index = read_dataset(cfg.dataset, cfg.root, trial=cfg.trial)  # before the framework loads
    trial = protocol_config_trials(index, cfg.protocol, count=1)[0]
    model = open_model(checkpoint=checkpoint, backend=backend or cfg.backend, device=device)
    spread = np.linspace(0, len(trial.query) - 1, SAMPLED_QUERIES).astype(int)
    queries = trial.query[np.unique(spread)]
    shown = _map_records(index.test)
    rows = np.unique(np.concatenate([queries, trial.gallery, shown]))
    features = embed_images(
        model,
        [Path(index.test[i].path) for i in rows],
        batch_size=batch_size,
        flip=cfg.protocol.flip,  # the evaluation's features
        progress=progress,
        description="report:",
    ).features
    distance = cfg.protocol.distance or model.distance
    return _Sample(index.name, index.test, trial, queries, shown, rows, features, distance)


def _ranked_figure(s: _Sample, order: str, queries: int, top_k: int) -> Figure:
    from vdreid.report.ranked_grid import ranked_grid

    lists = trial_lists(
        s.records,
        s.trial,
        s.features,
        s.rows,
        distance=s.distance,
        top_k=top_k,
        order=order,
        limit=queries,
        queries=s.queries,
    )
    title = f"{s.dataset} trial 1: " + lists_title(
        lists, order, queries=len(s.queries), gallery=len(s.trial.gallery), distance=s.distance
    )
    return Figure(
        f"Ranked lists, {order} first",
        ranked_grid(lists, title=title),
        f"queries ordered by the rank of their first true match ({order} first), sampled "
        f"evenly from the trial's {len(s.trial.query)}; the trial's whole gallery and removal "
        "rule, as the metrics rank them",
    )


def _map_figure(s: _Sample, method: str) -> Figure:
    from vdreid.report.embedding_map import embedding_picture

    pick = [s.records[i] for i in s.shown]
    picture = embedding_picture(
        s.features[np.searchsorted(s.rows, s.shown)],
        np.array([r.pid for r in pick]),
        np.array([int(r.modality) for r in pick]),
        method=method,
        distance=s.distance,
        title=f"Embedding map ({method.upper()}): {len({r.pid for r in pick})} test identities",
    )
    return Figure(
        "Embedding map",
        picture,
        "circles: visible images, triangles: infrared images; one colour per person",
    )


def _map_records(records: Sequence[Record]) -> np.ndarray:
    """Indices of the map's images: the identities with the most images in both
    modalities, at most MAP_PER_MODALITY of each, evenly spread."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault((r.pid, int(r.modality)), []).append(i)
    both = {pid for pid, m in groups if (pid, 1 - m) in groups}
    size = {pid: len(groups[(pid, 0)]) + len(groups[(pid, 1)]) for pid in both}
    chosen = sorted(both, key=lambda pid: (-size[pid], pid))[:MAP_IDS]
    out: list[int] = []
    for pid in chosen:
        for m in (0, 1):
            idx = groups[(pid, m)]
            take = np.unique(
                np.linspace(0, len(idx) - 1, min(len(idx), MAP_PER_MODALITY)).astype(int)
            )
            out += [idx[t] for t in take]
    return np.asarray(sorted(out), dtype=np.int64)


def _checkpoints_table(run: RunDir) -> Table:
    expected = None
    if run.spec.is_file():
        try:
            expected = spec_hash(spec_from_json(run.spec.read_text(encoding="utf-8")))
        except VdreidError:
            expected = None
    rows = [_checkpoint_row(p, expected) for p in sorted(run.checkpoints.glob("*.safetensors"))]
    return Table(
        "Checkpoints",
        ("file", "size", "epochs done", "written by", "model tensors", "check"),
        tuple(rows),
        note="checked without a framework: the stored spec is the run's (spec.json), every "
        "tensor the spec names is present with its shape and nothing else, all values finite"
        if rows
        else f"no checkpoints in {run.checkpoints}",
    )


def _checkpoint_row(path: Path, expected: str | None) -> tuple[Cell, ...]:
    size = f"{path.stat().st_size / 1e6:.1f} MB"
    try:
        ckpt = load_checkpoint(path)
    except VdreidError as exc:
        return (path.name, size, "-", "-", "-", (f"unreadable: {exc}", "bad"))
    state = model_state(ckpt.tensors)
    problems = []
    if ckpt.spec is None:
        problems.append("no model spec in its metadata")
    else:
        if expected is not None and spec_hash(ckpt.spec) != expected:
            problems.append("its spec differs from the run's spec.json")
        report = state_report(param_table(ckpt.spec), state)
        if not report.ok:
            problems.append(report.describe())
    nonfinite = [
        n
        for n, v in state.items()
        if np.issubdtype(v.dtype, np.floating) and not np.isfinite(v).all()
    ]
    if nonfinite:
        problems.append(f"NaN or Inf in {len(nonfinite)} tensor(s), first {nonfinite[0]}")
    check: Cell = ("; ".join(problems), "bad") if problems else ("ok", "good")
    return (
        path.name,
        size,
        ckpt.meta.get("epoch", "-"),
        ckpt.backend or "-",
        str(len(state)),
        check,
    )


def _exports_table(run: RunDir) -> Table:
    rows = []
    for e in read_exports(run.root):
        path = Path(str(e.get("path")))
        if not path.is_file():
            now: Cell = ("missing", "bad")
        elif sha256(path) != e.get("sha256"):
            now = ("changed since it was verified", "bad")
        else:
            now = ("present, unchanged", "good")
        verified: Cell = ("verified", "good") if e.get("ok") else ("failed", "bad")
        rows.append(
            (
                str(path),
                str(e.get("format", "-")),
                str(e.get("backend", "-")),
                f"{float(e.get('max_abs_diff', float('nan'))):.2e}",
                f"{float(e.get('min_cosine', float('nan'))):.6f}",
                f"{float(e.get('tolerance', float('nan'))):g}",
                verified,
                now,
            )
        )
    return Table(
        "Exports",
        (
            "file",
            "format",
            "backend",
            "max abs diff",
            "min cosine",
            "tolerance",
            "check",
            "file now",
        ),
        tuple(rows),
        note="exported models give the eager model's features to within the tolerance on a "
        "seeded batch (vdreid export); the file's sha256 is compared with the verified one"
        if rows
        else "no exports recorded (vdreid export records those of this run's checkpoints)",
    )


def read_comparison(path: Path) -> tuple[str, dict[str, Any]]:
    """(label, evaluation) from an eval.json file or a run folder holding one."""
    path = Path(path)
    file = path / "eval.json" if path.is_dir() else path
    notes: list[str] = []
    data = _json(file, notes) if file.is_file() else None
    if data is None:
        raise DataError(
            f"--compare {path}: {notes[0] if notes else f'{file} does not exist'}; pass an "
            "eval.json (vdreid train, vdreid eval --json) or a run folder holding one"
        )
    # a run's eval.json is named after its run folder, any other file after itself
    return (file.parent.name if file.name == "eval.json" else file.stem), data
