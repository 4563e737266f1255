"""One rich progress bar for long data work (cache builds, synthetic trees)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


@contextlib.contextmanager
def progress_bar(
    total: int, description: str, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``; draws on stderr while enabled (transient: gone when done)."""
    if not enabled:
        yield lambda n: None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def note(text: str) -> None:
    """One line on stderr about something vdreid did on the user's behalf."""
    Console(stderr=True).print(f"[yellow]note:[/] {text}", highlight=False, soft_wrap=True)
