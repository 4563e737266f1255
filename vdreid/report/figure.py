"""What every picture shares: matplotlib loaded on demand, colours, PNG output.

Figures are made with matplotlib's object API on the Agg canvas, never
through pyplot, so drawing a picture changes no global state of the
caller's matplotlib (a notebook's backend stays as it was).
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

from vdreid.errors import ExtraNotInstalled

#: Pixels per inch of every picture (figure sizes are given in pixels / DPI).
DPI = 100
#: Frame colours of ranked lists (RGB): same person, another person, unknown, the query.
TRUE_RGB = (0, 150, 60)
FALSE_RGB = (215, 35, 35)
UNKNOWN_RGB = (150, 150, 150)
QUERY_RGB = (30, 110, 200)
#: Modality badges: (text, background, text colour).
BADGES = {0: ("VIS", "#f4c430", "black"), 1: ("IR", "#222222", "white")}
EXTRA = "vdreid[report]"


@dataclasses.dataclass(frozen=True)
class Picture:
    """A PNG image and its size in pixels. ``cells`` (ranked lists only): per
    shown image (row, column, (left, top, right, bottom) pixel box of the
    framed image, True / False / None: same person, another one, unknown)."""

    png: bytes
    width: int
    height: int
    cells: tuple[tuple[int, int, tuple[int, int, int, int], bool | None], ...] = ()


def new_figure(width_px: int, height_px: int) -> Any:
    """A matplotlib Figure of exactly ``width_px`` x ``height_px`` pixels."""
    figure = _matplotlib_figure()
    return figure.Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)


def render(fig: Any) -> Picture:
    """The figure as PNG bytes (its full canvas, no cropping, so sizes are exact)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    width, height = canvas.get_width_height()
    return Picture(buffer.getvalue(), int(width), int(height))


def hex_colour(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def require_matplotlib() -> None:
    """An ExtraNotInstalled naming the extra unless matplotlib can be imported."""
    _matplotlib_figure()


def _matplotlib_figure() -> Any:
    try:
        import matplotlib.figure
    except ImportError:
        raise ExtraNotInstalled(
            f"pictures need matplotlib, which is not installed; install it with "
            f"`pip install '{EXTRA}'` (or leave out the picture options)"
        ) from None
    return matplotlib.figure
