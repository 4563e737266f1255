"""`vdreid embed`: features of any image files with a trained model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

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


@handle_errors
def embed(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Features file, .safetensors or .npy; F.csv beside it lists the images.",
        ),
    ],
    images: Annotated[
        list[Path] | None,
        typer.Option("--images", "-i", help="Image files or folders (searched recursively)."),
    ] = None,
    more: Annotated[
        list[Path] | None, typer.Argument(help="More image files or folders.", show_default=False)
    ] = None,
    checkpoint: Checkpoint = None,
    model: ModelFile = None,
    backend: BackendName = None,
    device: Device = None,
    modality: Annotated[
        ModalityChoice,
        typer.Option(
            help="The images' modality; auto decides per image (equal channels: infrared)."
        ),
    ] = ModalityChoice.auto,
    flip: Annotated[
        bool, typer.Option(help="Average each feature with the flipped image's (as eval --flip).")
    ] = False,
    batch_size: BatchSize = 64,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Threads decoding images ahead of the backend (default: up to 4)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    quiet: Quiet = False,
) -> None:
    """Embed image files (jpg, png, bmp; any size, grey or colour) with a trained model.

    Images are resized as the model's evaluation resizes them, so a feature
    equals the one `vdreid eval` computes for the same file.
    """
    from vdreid import outputs
    from vdreid.data.image_files import list_images, parse_modality
    from vdreid.workflows.embed import (
        DEFAULT_WORKERS,
        check_embeddings_path,
        embed_images,
        index_path,
        save_embeddings,
    )
    from vdreid.workflows.model_source import open_model

    wanted = parse_modality(modality.value)
    paths = list_images(images_of(images, more, "--images"))
    check_embeddings_path(out)
    sources = {"--checkpoint": checkpoint, "--model": model}
    outputs.refuse_input(out, sources, "--out")
    outputs.refuse_input(index_path(out), sources, "--out's index")
    outputs.check_writable(out, "--out")
    if checkpoint is not None:
        backend = pick_backend(backend, "features", checkpoint=checkpoint)
    loaded = open_model(checkpoint=checkpoint, model_file=model, backend=backend, device=device)
    start = time.perf_counter()
    result = embed_images(
        loaded,
        paths,
        modality=wanted,
        batch_size=batch_size,
        flip=flip,
        workers=workers or DEFAULT_WORKERS,
        progress=not (quiet or as_json),
    )
    seconds = time.perf_counter() - start
    features, index = save_embeddings(result, out)
    counts = result.counts()
    summary = {
        "images": len(result.images),
        **counts,
        "modality": "given" if wanted is not None else "auto (equal channels: infrared)",
        "feature_dim": int(result.features.shape[1]),
        "features": str(features),
        "index": str(index),
        "model": loaded.describe(),
        "seconds": round(seconds, 2),
        "images_per_s": round(len(result.images) / max(seconds, 1e-9), 1),
    }
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"embedded {len(result.images)} images", show_header=False)
    for key in ("visible", "infrared", "modality", "feature_dim", "features", "index", "model"):
        table.add_row(key.replace("_", " "), escape(str(summary[key])))
    table.add_row("speed", f"{summary['images_per_s']} images/s ({seconds:.1f} s)")
    console.print(table)
