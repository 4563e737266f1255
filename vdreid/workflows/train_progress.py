"""The training progress bar: epoch, step, loss terms, images/s, ETA.

It only shows values the workflow already fetched at a log interval, so it
never forces a host synchronisation of its own.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column

EPOCH_WIDTH, BAR_WIDTH, COUNT_WIDTH, SPEED_WIDTH = 24, 8, 11, 12
#: Columns left of the loss terms: the fixed ones, the ETA (7) and the separating spaces.
FIXED_WIDTH = EPOCH_WIDTH + BAR_WIDTH + COUNT_WIDTH + SPEED_WIDTH + 7 + 6


class TrainProgress:
    def __init__(
        self,
        total_steps: int,
        done_steps: int,
        *,
        enabled: bool = True,
        console: Console | None = None,
    ):
        self.enabled = enabled
        # Fixed widths for what matters most; the loss terms get the rest of
        # the line (see show), so a narrow terminal cuts them, not the ETA.
        self._bar = Progress(
            TextColumn("[bold]{task.fields[epoch]}", table_column=Column(width=EPOCH_WIDTH)),
            BarColumn(bar_width=BAR_WIDTH),
            MofNCompleteColumn(table_column=Column(width=COUNT_WIDTH, justify="right")),
            TextColumn("{task.fields[speed]}", table_column=Column(width=SPEED_WIDTH)),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}", table_column=Column(no_wrap=True)),
            console=console or Console(stderr=True),
            disable=not enabled,
        )
        self._task = self._bar.add_task(
            "train", total=total_steps, completed=done_steps, epoch="", losses="", speed=""
        )
        self._t0 = time.perf_counter()
        self._images = 0

    def __enter__(self) -> TrainProgress:
        self._bar.__enter__()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.__exit__(et, e, tb)

    def step(self, epoch: int, epochs: int, step: int, steps: int, images: int) -> None:
        self._images += images
        self._bar.update(
            self._task, advance=1, epoch=f"epoch {epoch + 1}/{epochs} step {step + 1}/{steps}"
        )

    def show(self, metrics: dict[str, float]) -> float:
        """Display fetched loss terms; returns images/s since the last call."""
        now = time.perf_counter()
        speed = self._images / max(now - self._t0, 1e-9)
        self._t0, self._images = now, 0
        # the total first: it is what a cut line still shows
        ordered = sorted(metrics.items(), key=lambda kv: kv[0] != "total")
        losses = " ".join(f"{k} {v:.3f}" for k, v in ordered)
        room = max(self._bar.console.width - FIXED_WIDTH, 0)
        if len(losses) > room:
            losses = losses[: max(room - 1, 0)] + "…"
        self._bar.update(self._task, losses=losses, speed=_images_per_s(speed))
        return speed

    def print(self, text: str) -> None:
        self._bar.console.print(text)


def _images_per_s(speed: float) -> str:
    """At most SPEED_WIDTH characters for any speed: 950 img/s, 12k img/s."""
    return f"{speed:.0f} img/s" if speed < 10_000 else f"{speed / 1000:.0f}k img/s"
