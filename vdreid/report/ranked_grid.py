"""The ranked-list grid: one row per query, its top-k gallery images beside it.

Every image carries a modality badge (VIS / IR) in its top-left corner and
a frame: blue for the query, green when the gallery image shows the query's
person, red when it shows another one, grey when identities are unknown.
Under each gallery image: its rank, a check or a cross, and its distance.
A query whose first true match ranks below the images shown gets that
match at the end of its row, so a bad list shows what it missed. The frames are painted into the pixels (not drawn by matplotlib) and every
image is placed at its own pixel size, so their colours are exact and the
picture's :attr:`~vdreid.report.figure.Picture.cells` say where each one is.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vdreid.data.images import load_image
from vdreid.errors import DataError
from vdreid.eval.retrieval import RankedItem, RankedList
from vdreid.report.figure import (
    BADGES,
    FALSE_RGB,
    QUERY_RGB,
    TRUE_RGB,
    UNKNOWN_RGB,
    Picture,
    hex_colour,
    new_figure,
    render,
)

THUMB = (160, 80)  # (H, W) of every image shown: people are about twice as tall as wide
FRAME = 5
PAD = 14
TEXT_H = 46
COL_GAP = 6
QUERY_GAP = 28
ROW_GAP = 12
CELL_W, CELL_H = THUMB[1] + 2 * FRAME, THUMB[0] + 2 * FRAME
LEGEND = (
    "frame: green = same person, red = another person, blue = the query;  "
    "badge: VIS visible, IR infrared;  under each: rank and distance"
)


def ranked_grid(lists: Sequence[RankedList], *, title: str) -> Picture:
    """The grid of ``lists`` (one row each, in the order given)."""
    if not lists:
        raise DataError("no ranked lists to draw; search or evaluate some queries first")
    k = max(1, max(len(r.matches) for r in lists))
    missed = any(r.first_true is not None for r in lists)
    row_h = CELL_H + TEXT_H + ROW_GAP
    width = 2 * PAD + CELL_W + QUERY_GAP + k * CELL_W + (k - 1) * COL_GAP
    width += (QUERY_GAP + CELL_W) if missed else 0
    # a few images make a narrow picture: wrap the header (glyph widths: 11 pt bold ~8.2
    # pixels, 8 pt ~5.6 pixels at 100 dpi)
    heads = textwrap.wrap(title, int((width - 2 * PAD) / 8.2)) or [""]
    legend = textwrap.wrap(LEGEND, int((width - 2 * PAD) / 5.6))
    header = 10 + 18 * len(heads) + 13 * len(legend) + 10
    height = header + len(lists) * row_h + PAD
    fig = new_figure(width, height)
    fig.text(PAD / width, 1 - 8 / height, "\n".join(heads), fontsize=11, weight="bold", va="top")
    fig.text(
        PAD / width,
        1 - (10 + 18 * len(heads)) / height,
        "\n".join(legend),
        fontsize=8,
        va="top",
        color="#444444",
    )
    cells: list[tuple[int, int, tuple[int, int, int, int], bool | None]] = []
    for row, ranked in enumerate(lists):
        top = header + row * row_h
        box = _place(fig, ranked.query, PAD, top, width, height, QUERY_RGB)
        cells.append((row, 0, box, None))
        _caption(fig, PAD, top, width, height, _query_caption(ranked), "#1e6ec8")
        shown = [(col, item) for col, item in enumerate(ranked.matches, start=1)]
        if ranked.first_true is not None:
            shown.append((k + 1, ranked.first_true))
        for col, item in shown:
            left = PAD + CELL_W + QUERY_GAP + (col - 1) * (CELL_W + COL_GAP)
            left += (QUERY_GAP - COL_GAP) if col > k else 0
            truth = ranked.is_true(item)
            colour = UNKNOWN_RGB if truth is None else TRUE_RGB if truth else FALSE_RGB
            box = _place(fig, item, left, top, width, height, colour)
            cells.append((row, col, box, truth))
            mark = "" if truth is None else " ✓" if truth else " ✗"
            _caption(
                fig,
                left,
                top,
                width,
                height,
                f"{item.rank}{mark}  {item.distance:.3f}",
                hex_colour(colour) if truth is not None else "#333333",
            )
    picture = render(fig)
    return Picture(picture.png, picture.width, picture.height, tuple(cells))


def _place(
    fig, item: RankedItem, left: int, top: int, width: int, height: int, rgb: tuple[int, int, int]
) -> tuple[int, int, int, int]:
    """Draw ``item`` framed in ``rgb`` with its top-left at (left, top) pixels."""
    framed = np.empty((CELL_H, CELL_W, 3), np.uint8)
    framed[:] = rgb
    framed[FRAME:-FRAME, FRAME:-FRAME] = _thumbnail(item.path)
    ax = fig.add_axes((left / width, 1 - (top + CELL_H) / height, CELL_W / width, CELL_H / height))
    ax.imshow(framed, interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    text, face, ink = BADGES[int(item.modality)]
    ax.text(
        (FRAME + 3) / CELL_W,
        1 - (FRAME + 3) / CELL_H,
        text,
        transform=ax.transAxes,
        fontsize=7,
        weight="bold",
        color=ink,
        va="top",
        ha="left",
        bbox={"boxstyle": "round,pad=0.25", "facecolor": face, "edgecolor": "none"},
    )
    return left, top, left + CELL_W, top + CELL_H


def _caption(fig, left: int, top: int, width: int, height: int, text: str, colour: str) -> None:
    fig.text(
        (left + CELL_W / 2) / width,
        1 - (top + CELL_H + 4) / height,
        text,
        fontsize=8,
        ha="center",
        va="top",
        color=colour,
        linespacing=1.2,
    )


def _query_caption(ranked: RankedList) -> str:
    """Two folders and the file name (datasets reuse file names: SYSU's
    cam3/0006/0001.jpg and cam6/0006/0001.jpg), then the first true match."""
    path = Path(ranked.query.path)
    folders = "/".join(p for p in (path.parent.parent.name, path.parent.name) if p)
    lines = [_short(folders + "/", 15), _short(path.name, 15)] if folders else [path.name]
    if ranked.first_match is None:
        lines.append("query")
    else:
        lines.append(f"1st true: {ranked.first_match}" if ranked.first_match else "no true match")
    return "\n".join(lines)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n // 2 - 1] + "…" + text[-(n - n // 2) :]


def _thumbnail(path: str) -> np.ndarray:
    """The image at the thumbnail size; a grey tile when it cannot be read
    (a gallery file may have moved since it was embedded)."""
    try:
        return load_image(path, THUMB)
    except DataError:
        tile = np.full((*THUMB, 3), 200, np.uint8)
        tile[::8] = 170  # stripes: visibly not a photo
        return tile
