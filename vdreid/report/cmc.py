"""CMC curves of one or several evaluations on one plot.

Each curve is the mean over the evaluation's trials, in percent, with a
band of one standard deviation (population, as the metrics table) when
there are several trials; the legend gives R1 and mAP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vdreid.errors import DataError
from vdreid.report.figure import Picture, new_figure, render

WIDTH, HEIGHT = 900, 480


@dataclasses.dataclass(frozen=True)
class CmcCurve:
    """One evaluation's CMC: mean and std over trials, percent, ranks 1..len."""

    label: str
    mean: np.ndarray
    std: np.ndarray
    r1: float
    mAP: float


def cmc_curve(label: str, evaluation: Mapping[str, Any]) -> CmcCurve:
    """The curve of an evaluation's dict (eval.json, ``Evaluation.to_dict()``)."""
    try:
        cmc = np.array([t["cmc"] for t in evaluation["trials"]], dtype=np.float64) * 100.0
        summary = evaluation["summary"]
        r1, mAP = float(summary["R1"]["mean"]), float(summary["mAP"]["mean"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(
            f"evaluation {label!r} has no per-trial CMC ({type(exc).__name__}: {exc}); expected "
            "the eval.json that `vdreid train` or `vdreid eval --json` writes"
        ) from None
    if cmc.ndim != 2 or cmc.size == 0:
        raise DataError(f"evaluation {label!r} holds no trials; expected at least one")
    return CmcCurve(label, cmc.mean(axis=0), cmc.std(axis=0), r1, mAP)


def cmc_picture(curves: Sequence[CmcCurve], *, title: str = "CMC") -> Picture:
    if not curves:
        raise DataError("no CMC curves to draw; pass at least one evaluation")
    fig = new_figure(WIDTH, HEIGHT)
    ax = fig.add_axes((0.08, 0.12, 0.62, 0.78))
    for curve in curves:
        ranks = np.arange(1, len(curve.mean) + 1)
        (line,) = ax.plot(
            ranks,
            curve.mean,
            marker="o",
            markersize=3.5,
            linewidth=2,
            label=f"{curve.label}\nR1 {curve.r1:.1f}%, mAP {curve.mAP:.1f}%",
        )
        if np.any(curve.std > 0):
            ax.fill_between(
                ranks,
                curve.mean - curve.std,
                curve.mean + curve.std,
                color=line.get_color(),
                alpha=0.15,
                linewidth=0,
            )
    ax.set_xlabel("rank k")
    ax.set_ylabel("CMC(k): queries matched within the first k (%)")
    ax.set_ylim(0, 101)
    ax.set_xlim(0.5, max(len(c.mean) for c in curves) + 0.5)
    ax.set_xticks([1, 5, 10, 15, 20][: 1 + sum(k <= len(curves[0].mean) for k in (5, 10, 15, 20))])
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=12, loc="left")
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=9, labelspacing=1.0
    )
    return render(fig)
