"""`vdreid convert`: weights of the authors' code, the MindSpore port or an
ImageNet model zoo -> vdreid; vdreid -> torch or MindSpore files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from vdreid.cli._common import console, handle_errors, print_json
from vdreid.interchange.convert import FROM_CHOICES
from vdreid.workflows.convert import TO_CHOICES

#: the choices as Literal types, which Typer lists in the help
FromChoice = Literal[FROM_CHOICES]  # type: ignore[valid-type]
ToChoice = Literal[TO_CHOICES]  # type: ignore[valid-type]


@handle_errors
def convert(
    source: Annotated[
        Path,
        typer.Argument(metavar="SOURCE", help="The weight file to convert.", show_default=False),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the result.")],
    from_: Annotated[
        FromChoice,
        typer.Option(
            "--from",
            help="The source's layout (auto: recognised by its content).",
        ),
    ] = "auto",
    to: Annotated[
        ToChoice,
        typer.Option(
            "--to",
            help="vdreid: a .safetensors checkpoint (or backbone file); torch: the torch "
            "model's state dict; mindspore: the MindSpore model's .ckpt.",
        ),
    ] = "vdreid",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Convert SOURCE (official MVD .pth.tar, MindSpore port .ckpt, torchvision / timm /
    MindSpore-zoo ResNet, or a vdreid checkpoint) into --out (docs/interchange.md)."""
    from vdreid.workflows.convert import convert as run_convert

    result = run_convert(source, out, from_=from_, to=to)
    c = result.converted
    row: dict[str, Any] = {
        "source": str(result.source),
        "layout": c.layout,
        "sha256": c.meta["source_sha256"],
        "out": str(result.out),
        "to": result.to,
        "kind": c.kind,
        "preset": c.spec.preset if c.spec is not None else None,
        "num_classes": c.spec.num_classes if c.spec is not None else None,
        "tensors": len(c.tensors),
        "dropped": {why: len(keys) for why, keys in c.dropped.items()},
        # what the source said of itself (epoch, best_top1); layout and sha256 are above
        "source_meta": {
            k: v
            for k, v in c.meta.items()
            if k.startswith("source_") and k not in ("source_sha256", "source_format")
        },
    }
    if as_json:
        print_json(row)
        return
    table = Table(title=f"converted: {result.out}", show_header=False)
    table.add_row("source", f"{result.source} ({c.layout})")
    table.add_row("sha256", f"{c.meta['source_sha256'][:16]}... (full: --json)")
    if c.spec is not None:
        table.add_row("model", f"preset {c.spec.preset}, {c.spec.num_classes} classes")
    else:
        table.add_row("model", "one ResNet backbone: --pretrained loads it into every branch")
    table.add_row("tensors", f"{len(c.tensors)} placed")
    for why, keys in c.dropped.items():
        table.add_row("dropped", f"{len(keys)}: {why}")
    for key, value in row["source_meta"].items():
        table.add_row(key.removeprefix("source_"), value)
    table.add_row("written as", result.to)
    console.print(table)
