"""`vdreid eval`: evaluate a checkpoint with a dataset's protocol."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vdreid.cli._common import console, handle_errors, pick_backend, print_json
from vdreid.data.readers import DatasetName


class PictureOrder(str, Enum):
    worst = "worst"
    best = "best"


@handle_errors
def evaluate(
    checkpoint: Annotated[
        Path, typer.Option(help="A checkpoint written by `vdreid train` (required).")
    ],
    dataset: Annotated[DatasetName, typer.Option(help="The dataset reader and protocol.")],
    root: Annotated[Path, typer.Option(help="Dataset folder (or manifest CSV).")],
    backend: Annotated[
        str | None,
        typer.Option(
            help="Backend computing the features (default: the checkpoint's writer when "
            "installed, else the first installed)."
        ),
    ] = None,
    mode: Annotated[
        str | None, typer.Option(help="SYSU-MM01 only: all (default) or indoor.")
    ] = None,
    shots: Annotated[
        int | None,
        typer.Option(help="SYSU-MM01 only: gallery images per (id, camera), 1 (default) or 10."),
    ] = None,
    sampler: Annotated[
        str | None,
        typer.Option(help="SYSU-MM01 only: gallery sampler, official (default) or agw."),
    ] = None,
    direction: Annotated[
        str | None, typer.Option(help="v2t or t2v (default: the dataset's).")
    ] = None,
    trials: Annotated[
        int | None, typer.Option(help="SYSU-MM01 and LLCM: sampled trials (default 10).")
    ] = None,
    trial: Annotated[
        int | None,
        typer.Option(help="RegDB split 1..10; default: the one the checkpoint was trained on."),
    ] = None,
    any_trial: Annotated[
        bool,
        typer.Option(
            "--any-trial",
            help="RegDB: allow a --trial other than the checkpoint's (its test ids were trained on).",
        ),
    ] = False,
    distance: Annotated[
        str | None, typer.Option(help="euclidean or cosine (default: the preset's).")
    ] = None,
    flip: Annotated[
        bool, typer.Option(help="Average features with horizontally flipped images.")
    ] = False,
    rerank: Annotated[bool, typer.Option(help="k-reciprocal re-ranking.")] = False,
    device: Annotated[str | None, typer.Option(help="Device for the backend.")] = None,
    batch_size: Annotated[
        int,
        typer.Option(min=1, help="Images per feature batch (a CPU forwards at most 8 at a time)."),
    ] = 64,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Decoded-image cache folder (default: $XDG_CACHE_HOME/vdreid)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full results as JSON instead of a table.")
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json-out", help="Also write the full results to this file.")
    ] = None,
    picture: Annotated[
        Path | None,
        typer.Option(help="Also draw trial 1's ranked lists (PNG): top 10, true/false framed."),
    ] = None,
    picture_order: Annotated[
        PictureOrder, typer.Option(help="Which queries the picture shows, by first true match.")
    ] = PictureOrder.worst,
    picture_queries: Annotated[int, typer.Option(min=1, help="Queries in the picture.")] = 8,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Features once per image, the dataset's protocol, R1/R5/R10/R20/mAP/mINP as mean ± std."""
    from vdreid import outputs
    from vdreid.config import ProtocolConfig, refuse_inapplicable, validate
    from vdreid.workflows.evaluate import evaluate_checkpoint, summary_rows

    chosen = {"mode": mode, "shots": shots, "sampler": sampler, "trials": trials}
    given = {k: v for k, v in chosen.items() if v is not None}
    refuse_inapplicable(dataset, {k: f"--{k} {v}" for k, v in given.items()})
    protocol = validate(
        ProtocolConfig,
        dict(**given, direction=direction, distance=distance, flip=flip, rerank=rerank),
        "evaluation options",
    )
    if json_out is not None:  # before the features are computed, not after
        outputs.refuse_input(json_out, {"--checkpoint": checkpoint, "--root": root}, "--json-out")
        outputs.check_writable(json_out, "--json-out")
    if picture is not None:  # before the work, not after it
        from vdreid.report.figure import require_matplotlib

        require_matplotlib()
        outputs.refuse_input(picture, {"--checkpoint": checkpoint, "--root": root}, "--picture")
        outputs.check_writable(picture, "--picture")
    ev = evaluate_checkpoint(
        pick_backend(backend, "features", checkpoint=checkpoint),
        checkpoint,
        dataset,
        root,
        protocol,
        trial=trial,
        any_trial=any_trial,
        device=device,
        cache_dir=cache_dir,
        batch_size=batch_size,
        progress=not (quiet or as_json),
    )
    if json_out is not None:
        ev.save(json_out)
    if picture is not None:
        from vdreid.workflows.pictures import evaluation_picture

        drawn = evaluation_picture(ev, order=picture_order.value, queries=picture_queries)
        outputs.write_bytes(picture, drawn.png, "--picture")
    if as_json:
        print_json(ev.to_dict())
        return
    table = Table(title=ev.title())
    table.add_column("metric")
    table.add_column(f"mean ± std over {len(ev.result.trials)} trial(s) (%)")
    for name, value in summary_rows(ev):
        table.add_row(name, value)
    console.print(table)
    if picture is not None:
        console.print(f"ranked lists: {picture}", highlight=False, soft_wrap=True, markup=False)
