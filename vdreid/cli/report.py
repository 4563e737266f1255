"""`vdreid report`: one self-contained HTML page about a training run."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from vdreid.cli._common import console, err_console, handle_errors, print_json
from vdreid.cli._model_options import BackendName, BatchSize, Device, Quiet


class MapMethod(str, Enum):
    pca = "pca"
    tsne = "tsne"


@handle_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (the --out of `vdreid train`).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="HTML file (default: RUN_DIR/report.html).")
    ] = None,
    compare: Annotated[
        list[Path] | None,
        typer.Option(help="Evaluations to compare with: eval.json files or run folders."),
    ] = None,
    model_pictures: Annotated[
        bool,
        typer.Option(
            help="Ranked lists and the embedding map (features of a sample of test images, "
            "last checkpoint, the run's dataset).",
        ),
    ] = True,
    map_method: Annotated[
        MapMethod, typer.Option("--map", help="pca (numpy) or tsne (scikit-learn, [tsne] extra).")
    ] = MapMethod.pca,
    queries: Annotated[int, typer.Option(min=1, help="Queries per ranked-list picture.")] = 6,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Matches per query.")] = 10,
    backend: BackendName = None,
    device: Device = None,
    batch_size: BatchSize = 64,
    quiet: Quiet = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the report's path and notes as JSON on stdout."),
    ] = False,
) -> None:
    """One HTML page about a training run: metrics, curves, ranked lists, a map, checks.

    The page embeds its pictures and needs no network: the metrics table and
    CMC curves, the loss curves, ranked lists and an embedding map, the
    checkpoints and exports with their checks, and the configuration.
    """
    from vdreid.report.figure import require_matplotlib
    from vdreid.workflows.report import build_report, check_target, read_comparison, run_folder

    require_matplotlib()  # a report is its pictures: say which extra is missing, first
    run = run_folder(run_dir)  # before anything is written there
    target = out if out is not None else run.report
    check_target(target, run, compare or [])
    result = build_report(
        run_dir,
        compare=[read_comparison(p) for p in compare or []],
        backend=backend,
        device=device,
        model_pictures=model_pictures,
        map_method=map_method.value,
        queries=queries,
        top_k=top_k,
        batch_size=batch_size,
        progress=not quiet,
    )
    result.write(target, run)
    if as_json:
        print_json({"report": str(target), "run_dir": str(run_dir), "notes": list(result.notes)})
        return
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    console.print(f"report: {target}", highlight=False, soft_wrap=True, markup=False)
