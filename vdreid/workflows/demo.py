"""The demo: the main job end to end on a synthetic SYSU-like dataset.

synthesise -> evaluate the untrained `tiny` network -> train it -> evaluate
it with the SYSU protocol -> export ONNX (torch) and MindIR (MindSpore, from
the same checkpoint) and verify both -> write the HTML report (report.html;
the untrained evaluation, untrained.json, is its comparison). The untrained
and trained numbers come from the same network, data and protocol in the
same run.

``--out`` is an OwnedFolder (vdreid.outputs): ``data/`` (synthesised once,
reused while complete; a dataset put there by the user is read, never
changed), ``run/`` (a run folder, started afresh each time), the exports,
untrained.json and report.html. Anything else in it, or a ``data/`` or ``run/`` vdreid did not
write, stops the demo before it starts: it never deletes a user's file.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from vdreid import outputs, registry
from vdreid.config import resolve_train_config
from vdreid.data.readers import read_dataset
from vdreid.data.synth import synthesize
from vdreid.data.sysu import SPLITS
from vdreid.spec import init_state
from vdreid.workflows.evaluate import Evaluation, evaluate_model
from vdreid.workflows.export import ExportResult, export_checkpoint
from vdreid.workflows.report import build_report
from vdreid.workflows.run_dir import RunDir
from vdreid.workflows.train import run_spec, train

#: Exports the demo makes: (backend, format, file name).
EXPORTS = (("torch", "onnx", "tiny.onnx"), ("mindspore", "mindir", "tiny.mindir"))
#: The other files it writes in --out: the untrained evaluation, the report.
UNTRAINED, REPORT = "untrained.json", "report.html"


@dataclasses.dataclass(frozen=True)
class DemoResult:
    untrained: Evaluation
    trained: Evaluation
    exports: tuple[ExportResult, ...]
    seconds: dict[str, float]
    run_dir: Path
    report: Path


def run_demo(
    out: Path,
    *,
    backend: str = "torch",
    epochs: int | None = None,
    overrides: dict[str, Any] | None = None,
    exports: tuple[tuple[str, str, str], ...] = EXPORTS,
    progress: bool = True,
    console: Console | None = None,
) -> DemoResult:
    console = console or Console(stderr=True)
    folder = outputs.OwnedFolder(out, "demo")
    _check_folder(folder, exports)  # before anything, the lock file included, is written
    with folder.locked():
        return _demo(folder, backend, epochs, overrides or {}, exports, progress, console)


def _check_folder(folder: outputs.OwnedFolder, exports: tuple[tuple[str, str, str], ...]) -> bool:
    """Refuse a folder holding anything the demo did not write; True when
    ``data/`` holds a complete tree to reuse."""
    data, run = folder.root / "data", folder.root / "run"
    # synthesis writes the split files last, each atomically
    complete = all((data / "exp" / f"{s}_id.txt").is_file() for s in SPLITS)
    names = ", ".join(["data/", "run/", *(f for _, _, f in exports), UNTRAINED, REPORT])
    folder.refuse_foreign(
        f"the demo writes {names} there: choose a new or empty --out, or an earlier demo's folder",
        inputs=("data",) if complete else (),
    )
    if run.is_dir():
        RunDir(run).files.refuse_foreign(
            f"the demo starts {run} afresh: move those files away, or choose another --out"
        )
    return complete


def _demo(
    folder: outputs.OwnedFolder,
    backend: str,
    epochs: int | None,
    overrides: dict[str, Any],
    exports: tuple[tuple[str, str, str], ...],
    progress: bool,
    console: Console,
) -> DemoResult:
    out = folder.root
    data, run_dir = out / "data", out / "run"
    fields: dict[str, Any] = {
        "backend": backend,
        "preset": "tiny",
        "dataset": "sysu",
        "root": str(data),
        "out": str(run_dir),
        "device": "cpu" if backend == "torch" else None,
    }
    if epochs is not None:
        fields["epochs"] = epochs
    cfg = resolve_train_config(
        None, {**overrides, **{k: v for k, v in fields.items() if v is not None}}
    )
    b = registry.get(backend)
    reuse = _check_folder(folder, exports)

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    if not reuse:
        console.print(f"[bold]1/5[/] synthesising a SYSU-like dataset in {data}")
        folder.remove_owned(["data/"])  # an interrupted synthesis of an earlier demo
        folder.claim("data/")
        synthesize("sysu", data, seed=0, progress=progress)
    seconds["synthesise"] = time.perf_counter() - t0

    run = RunDir(run_dir)
    if run_dir.is_dir():  # a demo always trains from scratch
        with run.writing():
            run.files.remove_owned()
    folder.claim("run/", *(f for _, _, f in exports), UNTRAINED, REPORT)

    console.print("[bold]2/5[/] evaluating the untrained network (same spec, same initial weights)")
    t0 = time.perf_counter()
    index = read_dataset(cfg.dataset, cfg.root)
    spec = run_spec(cfg, index.train_labels()[1])
    model = b.build(spec, device=cfg.device)
    b.set_state(model, init_state(spec, cfg.seed))
    untrained = evaluate_model(
        b, model, spec, index, cfg.protocol, cache_dir=cfg.cache_dir, progress=progress
    )
    seconds["untrained eval"] = time.perf_counter() - t0

    console.print(f"[bold]3/5[/] training `tiny` on {backend} for {cfg.epochs} epochs")
    t0 = time.perf_counter()
    result = train(cfg, progress=progress, console=console)
    assert result.evaluation is not None  # the test split is never empty here
    seconds["train + eval"] = time.perf_counter() - t0

    console.print(
        "[bold]4/5[/] exporting and verifying: " + ", ".join(f"{f} ({n})" for n, f, _ in exports)
    )
    done = []
    for name, fmt, filename in exports:
        t0 = time.perf_counter()
        done.append(
            export_checkpoint(result.checkpoint, out / filename, backend=name, fmt=fmt, device=None)
        )
        seconds[f"export {fmt}"] = time.perf_counter() - t0

    console.print("[bold]5/5[/] writing the report: metrics, curves, ranked lists, checks")
    t0 = time.perf_counter()
    untrained.save(folder.path(UNTRAINED))
    page = build_report(
        run_dir,
        label="trained",
        compare=[("untrained", untrained.to_dict())],
        backend=backend,
        device=cfg.device,
        progress=progress,
    )
    report = page.write(folder.path(REPORT))
    seconds["report"] = time.perf_counter() - t0
    return DemoResult(untrained, result.evaluation, tuple(done), seconds, run_dir, report)
