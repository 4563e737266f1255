"""Shared CLI plumbing: consoles and the user-error boundary."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from vdreid.errors import Interrupted, VdreidError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

#: Exit code for errors caused by the user's input (bad flag, missing file...).
USER_ERROR = 2
#: Exit code after Ctrl-C (128 + SIGINT), as a shell reports it.
INTERRUPTED = 130


def handle_errors(fn: F) -> F:
    """Print a VdreidError as one red line and exit 2, without a traceback;
    after Ctrl-C say what the command kept (Interrupted) and exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VdreidError as exc:
            # escaped: a message naming `pip install 'vdreid[torch]'` or a path with
            # brackets must print as written, not as rich markup
            err_console.print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(USER_ERROR) from None
        except (Interrupted, KeyboardInterrupt) as exc:
            said = str(exc) if isinstance(exc, Interrupted) else "stopped"
            err_console.print(
                f"[bold yellow]interrupted:[/] {escape(said)}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]


def pick_backend(
    backend: str | None,
    need: Literal["train", "features", "export"],
    *,
    checkpoint: Path | None = None,
    fmt: str | None = None,
) -> str:
    """``backend`` when given; else the checkpoint's writer when installed, else
    the first installed backend that can (vdreid.registry.choose), said on stderr."""
    if backend is not None:
        return backend
    from vdreid import registry
    from vdreid.checkpoint import META_BACKEND, read_metadata

    writer = read_metadata(checkpoint).get(META_BACKEND) if checkpoint is not None else None
    name, note = registry.choose(need, writer=writer, fmt=fmt)
    if note:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    return name


def print_json(obj: Any) -> None:
    """Plain JSON on stdout (no rich markup, so it pipes into jq)."""
    typer.echo(json.dumps(obj, indent=2, sort_keys=False))
