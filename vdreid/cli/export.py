"""`vdreid export`: write a checkpoint's feature extractor (ONNX, ...) and verify it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vdreid.cli._common import console, handle_errors, pick_backend, print_json
from vdreid.verified_export import EXAMPLE_BATCH, EXPORT_TOLERANCE


@handle_errors
def export(
    checkpoint: Annotated[
        Path, typer.Option("--checkpoint", "-c", help="A vdreid .safetensors checkpoint.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the exported model.")],
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            "-b",
            help="Backend that exports (default: the checkpoint's writer when installed and "
            "it writes --format, else the first installed that does).",
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="Export format (default: the backend's own; torch: onnx, mindspore: mindir).",
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help="torch: cpu, cuda or cuda:N; mindspore: CPU, GPU or Ascend (default: an accelerator when present).",
        ),
    ] = None,
    tolerance: Annotated[
        float,
        typer.Option("--tolerance", help="Largest allowed |exported - eager| feature difference."),
    ] = EXPORT_TOLERANCE,
    batch: Annotated[
        int, typer.Option("--batch", help="Images in the seeded verification batch.")
    ] = EXAMPLE_BATCH,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Export the feature extractor of CHECKPOINT and check it against the eager model.

    The exported graph takes normalised float32 NCHW images (any batch size)
    and returns the test feature. Exits 2 when the runtime's features drift
    past --tolerance (--out is then left as it was).
    """
    from vdreid.workflows.export import export_checkpoint

    backend = pick_backend(backend, "export", checkpoint=checkpoint, fmt=fmt)
    with console.status(
        f"exporting {checkpoint} with {backend} to {fmt or 'its own format'}...", spinner="dots"
    ):
        result = export_checkpoint(
            checkpoint,
            out,
            backend=backend,
            fmt=fmt,
            device=device,
            tolerance=tolerance,
            batch=batch,
        )
    r = result.report
    row = {
        "path": r.path,
        "format": r.format,
        "backend": result.backend,
        "preset": result.preset,
        "feature_dim": result.feature_dim,
        "max_abs_diff": r.max_abs_diff,
        "min_cosine": r.min_cosine,
        "tolerance": r.tolerance,
        "ok": r.ok,
    }
    if as_json:
        print_json(row)
        return
    table = Table(title=f"export verified: {r.path}", show_header=False)
    for key in ("format", "backend", "preset", "feature_dim"):
        table.add_row(key, str(row[key]))
    table.add_row("max abs diff", f"{r.max_abs_diff:.3e} (tolerance {r.tolerance:g})")
    table.add_row("min cosine", f"{r.min_cosine:.8f}")
    table.add_row("status", "[green]ok[/]")
    console.print(table)
