"""Loss curves of a training run, one small panel per term, from metrics.jsonl.

The x axis is in epochs (a record of step s of epoch e sits at
e + (s + 1) / steps per epoch). The total comes first; validation mAP and
R1 (the records a run with ``validate_every`` writes) are drawn on the
total's panel against a right-hand axis in percent; the learning rates get
the last panel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from vdreid.errors import DataError
from vdreid.report.figure import Picture, new_figure, render

#: Keys of a training record that are not loss terms.
NOT_TERMS = {"time", "epoch", "step", "global_step", "images_per_s", "processes", "error"}
COLUMNS = 3
PANEL_W, PANEL_H = 330, 230
TOP, BOTTOM = 50, 10


def loss_terms(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The loss terms of the step records, total first, then in first-seen order."""
    names: dict[str, None] = {}
    for r in _steps(records):
        for k, v in r.items():
            if k not in NOT_TERMS and not k.startswith(("lr_", "val_")) and _number(v):
                names[k] = None
    terms = list(names)
    return (["total"] if "total" in names else []) + [t for t in terms if t != "total"]


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _steps(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in records if "global_step" in r and "step" in r and "epoch" in r]


def _steps_per_epoch(steps: Sequence[Mapping[str, Any]]) -> int:
    for r in steps:  # global_step = epoch * steps + step + 1
        if r["epoch"] > 0:
            return max(1, round((r["global_step"] - r["step"] - 1) / r["epoch"]))
    return max(int(r["step"]) for r in steps) + 1


def loss_picture(records: Sequence[Mapping[str, Any]], *, title: str = "Training") -> Picture:
    """Small multiples of every term in ``records`` (metrics.jsonl, parsed)."""
    steps = _steps(records)
    terms = loss_terms(records)
    if not steps or not terms:
        raise DataError(
            "the metrics hold no training records with loss terms; expected the metrics.jsonl "
            "of a run (`vdreid train` writes one record per log interval)"
        )
    per_epoch = _steps_per_epoch(steps)
    x = [r["epoch"] + (r["step"] + 1) / per_epoch for r in steps]
    rates = sorted({k for r in steps for k in r if k.startswith("lr_")})
    panels = [*terms, *(["learning rate"] if rates else [])]
    rows = math.ceil(len(panels) / COLUMNS)
    width, height = COLUMNS * PANEL_W, TOP + rows * PANEL_H + BOTTOM
    fig = new_figure(width, height)
    fig.text(12 / width, 1 - 10 / height, title, fontsize=12, weight="bold", va="top")
    val = [r for r in records if "val_mAP" in r and "epoch" in r]
    for i, name in enumerate(panels):
        row, col = divmod(i, COLUMNS)
        ax = fig.add_axes(
            (
                (col * PANEL_W + 62) / width,
                1 - (TOP + (row + 1) * PANEL_H - 40) / height,
                (PANEL_W - 118) / width,  # room on the right for the validation axis
                (PANEL_H - 72) / height,
            )
        )
        if name == "learning rate":
            for key in rates:
                ax.plot(x, [r.get(key, math.nan) for r in steps], label=key[3:], linewidth=1.5)
            ax.legend(fontsize=7, frameon=False)
        else:
            ax.plot(x, [r.get(name, math.nan) for r in steps], linewidth=1.5, color="#1f5fa8")
        ax.set_title(name, fontsize=10, loc="left")
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if name == "total" and val:
            _overlay_validation(ax, val)
    return render(fig)


def _overlay_validation(ax: Any, val: Sequence[Mapping[str, Any]]) -> None:
    """Validation mAP / R1 (percent) at the end of their epochs, right-hand axis."""
    twin = ax.twinx()
    ends = [r["epoch"] + 1 for r in val]
    twin.plot(
        ends, [r["val_mAP"] for r in val], "o-", color="#d95f02", markersize=3, label="val mAP"
    )
    if all("val_R1" in r for r in val):
        twin.plot(
            ends, [r["val_R1"] for r in val], "s--", color="#7570b3", markersize=3, label="val R1"
        )
    twin.set_ylim(0, 100)
    twin.set_ylabel("validation (%)", fontsize=8)
    twin.tick_params(labelsize=7)
    twin.legend(fontsize=7, frameon=False, ncol=2, loc="lower right", bbox_to_anchor=(1.0, 1.0))
