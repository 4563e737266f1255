"""Options shared by the commands that run a trained model on images
(embed, search): where the model comes from and how images are read."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class ModalityChoice(str, Enum):
    auto = "auto"
    visible = "visible"
    infrared = "infrared"


Checkpoint = Annotated[
    Path | None,
    typer.Option("--checkpoint", "-c", help="A vdreid checkpoint (from `vdreid train`)."),
]
ModelFile = Annotated[
    Path | None,
    typer.Option(
        "--model",
        help="An exported model file (.onnx), run by the backend that reads it; "
        "instead of --checkpoint.",
    ),
]
BackendName = Annotated[
    str | None,
    typer.Option(
        "--backend",
        "-b",
        help="Backend computing the features (default: the checkpoint's writer when "
        "installed, else the first installed; the file format's own for --model).",
    ),
]
Device = Annotated[str | None, typer.Option("--device", help="Device for the backend.")]
BatchSize = Annotated[
    int,
    typer.Option(
        "--batch-size", min=1, help="Images per feature batch (a CPU forwards at most 8 at a time)."
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]


def images_of(option: list[Path] | None, extra: list[Path] | None, flag: str) -> list[Path]:
    """Paths given with ``flag`` (repeatable) and those that followed it as
    arguments (a shell glob: ``--images photos/*.jpg``)."""
    from vdreid.errors import ConfigError

    paths = [*(option or []), *(extra or [])]
    if not paths:
        raise ConfigError(f"no images given; pass {flag} with image files or folders")
    return paths
