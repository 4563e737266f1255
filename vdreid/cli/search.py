"""`vdreid search`: each query image's nearest gallery images."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from vdreid.cli._common import console, handle_errors, pick_backend, print_json
from vdreid.cli._model_options import (
    BackendName,
    BatchSize,
    Checkpoint,
    Device,
    ModalityChoice,
    ModelFile,
    Quiet,
    images_of,
)

if TYPE_CHECKING:  # pragma: no cover
    from vdreid.eval.retrieval import RankedItem, RankedList
    from vdreid.workflows.search import SearchResult


class Order(str, Enum):
    given = "given"
    best = "best"
    worst = "worst"


@handle_errors
def search(
    gallery: Annotated[
        list[Path],
        typer.Option(
            "--gallery",
            "-g",
            help="Gallery image files or folders, or an embeddings file from `vdreid embed`.",
        ),
    ],
    query: Annotated[
        list[Path] | None, typer.Option("--query", "-q", help="Query image files or folders.")
    ] = None,
    more: Annotated[
        list[Path] | None, typer.Argument(help="More query images.", show_default=False)
    ] = None,
    checkpoint: Checkpoint = None,
    model: ModelFile = None,
    backend: BackendName = None,
    device: Device = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Matches per query.")] = 10,
    cross_modal: Annotated[
        bool,
        typer.Option(
            "--cross-modal/--any-modality",
            help="Infrared queries search visible images and back (default), or every image.",
        ),
    ] = True,
    query_modality: Annotated[
        ModalityChoice, typer.Option(help="auto decides per image (equal channels: infrared).")
    ] = ModalityChoice.auto,
    gallery_modality: Annotated[
        ModalityChoice, typer.Option(help="auto decides per image (equal channels: infrared).")
    ] = ModalityChoice.auto,
    dataset: Annotated[
        str | None,
        typer.Option(help="With --root: the dataset the images come from, to mark true matches."),
    ] = None,
    root: Annotated[Path | None, typer.Option(help="The dataset's folder (or manifest).")] = None,
    trial: Annotated[int | None, typer.Option(help="RegDB split 1..10.")] = None,
    distance: Annotated[
        str | None, typer.Option(help="euclidean or cosine (default: the model's, as eval).")
    ] = None,
    order: Annotated[
        Order, typer.Option(help="Queries as given, or by their first true match (--dataset).")
    ] = Order.given,
    flip: Annotated[
        bool | None,
        typer.Option(
            "--flip/--no-flip",
            help="Flip averaging (default: as the gallery file was embedded; off for folders).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON instead of tables.")
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json-out", help="Also write the results to this JSON file.")
    ] = None,
    picture: Annotated[
        Path | None,
        typer.Option(help="Also draw the ranked lists (PNG): modality badges, true/false frames."),
    ] = None,
    batch_size: BatchSize = 64,
    quiet: Quiet = False,
) -> None:
    """Rank gallery images for each query by the evaluation's distance, ties in gallery order."""
    import json

    from vdreid.data.image_files import list_images, parse_modality
    from vdreid.errors import ConfigError
    from vdreid.outputs import write_bytes, write_text
    from vdreid.workflows.model_source import open_model
    from vdreid.workflows.search import dataset_identities, search

    if (dataset is None) != (root is None):
        raise ConfigError("--dataset and --root go together: pass both to mark true matches")
    queries = list_images(images_of(query, more, "--query"))  # before the model is loaded
    _check_outputs(
        {"--json-out": json_out, "--picture": picture},
        [("--checkpoint", checkpoint), ("--model", model), *(("--gallery", g) for g in gallery)],
        queries,
    )
    if picture is not None:
        from vdreid.report.figure import require_matplotlib

        require_matplotlib()
    identities = dataset_identities(dataset, root, trial=trial) if dataset and root else None
    if checkpoint is not None:
        backend = pick_backend(backend, "features", checkpoint=checkpoint)
    loaded = open_model(checkpoint=checkpoint, model_file=model, backend=backend, device=device)
    result = search(
        loaded,
        queries,
        gallery,
        top_k=top_k,
        query_modality=parse_modality(query_modality.value, "--query-modality"),
        gallery_modality=parse_modality(gallery_modality.value, "--gallery-modality"),
        cross_modal=cross_modal,
        distance=distance,
        identities=identities,
        order=order.value,
        flip=flip,
        batch_size=batch_size,
        progress=not (quiet or as_json),
    )
    if json_out is not None:
        write_text(json_out, json.dumps(result.to_dict(), indent=2), "--json-out")
    if picture is not None:
        from vdreid.report.ranked_grid import ranked_grid

        grid = ranked_grid(list(result.lists), title=_picture_title(result))
        write_bytes(picture, grid.png, "--picture")
    if as_json:
        print_json(result.to_dict())
        return
    for i, ranked in enumerate(result.lists, start=1):
        console.print(_table(i, len(result.lists), ranked, result.labelled))
    hits, judged = result.true_at_rank1()
    if result.labelled:
        console.print(f"true match at rank 1: {hits} of {judged} queries with one in the gallery")
    console.print(
        f"{result.distance} distance, "
        + ("cross-modal" if result.cross_modal else "every modality")
        + f"; gallery {result.gallery_counts['visible']} visible + "
        f"{result.gallery_counts['infrared']} infrared images",
        highlight=False,
    )


def _check_outputs(
    outs: dict[str, Path | None], sources: list[tuple[str, Path | None]], queries: list[Path]
) -> None:
    """Before any work: each output is writable and none is a file this search reads
    (a model, a gallery embeddings file or its index, a query image)."""
    from vdreid import outputs
    from vdreid.workflows.embed import SUFFIXES, index_path

    reads = [*sources, *(("query image", q) for q in queries)]
    reads += [
        ("gallery index", index_path(p))
        for name, p in sources
        if name == "--gallery" and p is not None and p.suffix.lower() in SUFFIXES
    ]
    for flag, path in outs.items():
        if path is None:
            continue
        for name, source in reads:
            outputs.refuse_input(path, {name: source}, flag)
        outputs.check_writable(path, flag)


def _picture_title(result: SearchResult) -> str:
    k = max((len(r.matches) for r in result.lists), default=0)
    scope = "other modality" if result.cross_modal else "every modality"
    total = sum(result.gallery_counts.values())
    return f"search: {len(result.lists)} queries, top {k} of {total} gallery images ({scope}; {result.distance})"


def _shown(path: str) -> str:
    """A path as short as is unambiguous: relative to the working folder when below it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _name(item: RankedItem) -> str:
    """The item's path (escaped: brackets in a file name are not markup) and what it shows."""
    mod = "infrared" if int(item.modality) == 1 else "visible"
    who = f", id {item.pid}" if item.pid is not None else ""
    return f"{escape(_shown(item.path))} ({mod}{who})"


def _table(i: int, n: int, ranked: RankedList, labelled: bool) -> Table:
    table = Table(title=f"query {i}/{n}: {_name(ranked.query)}", title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("distance", justify="right")
    table.add_column("gallery image", overflow="fold")
    if labelled:
        table.add_column("match")
    for m in ranked.matches:
        row = [str(m.rank), f"{m.distance:.4f}", _name(m)]
        if labelled:
            truth = ranked.is_true(m)
            row.append("-" if truth is None else "[green]true[/]" if truth else "[red]false[/]")
        table.add_row(*row)
    if ranked.first_true is not None:
        table.caption = (
            f"first true match at rank {ranked.first_true.rank}: {_shown(ranked.first_true.path)}"
        )
    return table
