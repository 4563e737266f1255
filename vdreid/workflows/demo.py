"""The demo: the main job end to end on a synthetic SYSU-like dataset.

synthesise -> evaluate the untrained `tiny` network -> train it -> evaluate
it with the SYSU protocol -> export ONNX (torch) and MindIR (MindSpore, from
the same checkpoint) and verify both. The untrained and trained numbers come
from the same network, data and protocol in the same run.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from vdreid import registry
from vdreid.config import resolve_train_config
from vdreid.data.readers import read_dataset
from vdreid.data.synth import synthesize
from vdreid.spec import init_state
from vdreid.workflows.evaluate import Evaluation, evaluate_model
from vdreid.workflows.export import ExportResult, export_checkpoint
from vdreid.workflows.train import run_spec, train

#: Exports the demo makes: (backend, format, file name).
EXPORTS = (("torch", "onnx", "tiny.onnx"), ("mindspore", "mindir", "tiny.mindir"))


@dataclasses.dataclass(frozen=True)
class DemoResult:
    untrained: Evaluation
    trained: Evaluation
    exports: tuple[ExportResult, ...]
    seconds: dict[str, float]
    run_dir: Path


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
    out = Path(out)
    seconds: dict[str, float] = {}
    data = out / "data"
    t0 = time.perf_counter()
    if not (data / "exp").is_dir():
        console.print(f"[bold]1/4[/] synthesising a SYSU-like dataset in {data}")
        shutil.rmtree(data, ignore_errors=True)
        synthesize("sysu", data, seed=0, progress=progress)
    seconds["synthesise"] = time.perf_counter() - t0

    run_dir = out / "run"
    shutil.rmtree(run_dir, ignore_errors=True)  # a demo always trains from scratch
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
        None, {**(overrides or {}), **{k: v for k, v in fields.items() if v is not None}}
    )

    console.print("[bold]2/4[/] evaluating the untrained network (same spec, same initial weights)")
    t0 = time.perf_counter()
    index = read_dataset(cfg.dataset, cfg.root)
    spec = run_spec(cfg, index.train_labels()[1])
    b = registry.get(backend)
    model = b.build(spec, device=cfg.device)
    b.set_state(model, init_state(spec, cfg.seed))
    untrained = evaluate_model(
        b, model, spec, index, cfg.protocol, cache_dir=cfg.cache_dir, progress=progress
    )
    seconds["untrained eval"] = time.perf_counter() - t0

    console.print(f"[bold]3/4[/] training `tiny` on {backend} for {cfg.epochs} epochs")
    t0 = time.perf_counter()
    result = train(cfg, progress=progress, console=console)
    assert result.evaluation is not None  # the test split is never empty here
    seconds["train + eval"] = time.perf_counter() - t0

    console.print(
        "[bold]4/4[/] exporting and verifying: " + ", ".join(f"{f} ({n})" for n, f, _ in exports)
    )
    done = []
    for name, fmt, filename in exports:
        t0 = time.perf_counter()
        done.append(
            export_checkpoint(result.checkpoint, out / filename, backend=name, fmt=fmt, device=None)
        )
        seconds[f"export {fmt}"] = time.perf_counter() - t0
    return DemoResult(untrained, result.evaluation, tuple(done), seconds, run_dir)
