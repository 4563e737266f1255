"""Synthetic look-alikes of SYSU-MM01, RegDB and LLCM (same layout, learnable identities).

``synthesize(layout, out, ...)`` plans the tree (:mod:`.plan`) and renders
it (:mod:`.person`, :mod:`.writer`). See docs/datasets.md.
"""

from __future__ import annotations

from pathlib import Path

from vdreid.data.synth.plan import LAYOUTS, Plan, Shape, make_plan
from vdreid.data.synth.writer import write_plan

__all__ = ["LAYOUTS", "Plan", "Shape", "make_plan", "synthesize"]


def synthesize(
    layout: str,
    out: str | Path,
    *,
    shape: Shape = Shape(),
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
) -> Plan:
    """Write a synthetic ``layout`` tree under ``out`` (a new or empty folder); returns its plan."""
    plan = make_plan(layout, shape, seed)
    write_plan(plan, Path(out), seed, workers=workers, progress=progress)
    return plan
