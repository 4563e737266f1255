"""Pretrained weights from a local file (nothing is downloaded).

The file is a safetensors checkpoint keyed by canonical names, either of a
whole model (``V.backbone.conv1.weight`` ...) or of one branch-less
backbone (``backbone.conv1.weight`` ...), which then initialises the
backbone of every branch (how ImageNet weights start all three encoders).
Converters from torchvision / MindSpore model-zoo files write the second
form. Keys the model lacks and shape mismatches are errors; model keys the
file lacks keep their initial values and are counted in the report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from vdreid.checkpoint import load_checkpoint, model_state
from vdreid.errors import CheckpointError
from vdreid.spec.model import ModelSpec


@dataclasses.dataclass(frozen=True)
class PretrainedReport:
    loaded: int
    kept_initial: int


def apply_pretrained(
    spec: ModelSpec, state: Mapping[str, np.ndarray], path: Path
) -> tuple[dict[str, np.ndarray], PretrainedReport]:
    source = model_state(load_checkpoint(path).tensors)
    out = dict(state)
    problems: list[str] = []
    loaded = 0
    branches = [b.name for b in spec.branches]
    for key, value in source.items():
        targets = [key] if key in out else [f"{b}.{key}" for b in branches if f"{b}.{key}" in out]
        if not targets:
            problems.append(f"unexpected {key}")
            continue
        for t in targets:
            if tuple(out[t].shape) != tuple(value.shape):
                problems.append(f"{key}: file {tuple(value.shape)} vs model {tuple(out[t].shape)}")
                continue
            out[t] = np.asarray(value, dtype=out[t].dtype)
            loaded += 1
    if problems:
        shown = "; ".join(problems[:8]) + (
            f"; ... ({len(problems)} in all)" if len(problems) > 8 else ""
        )
        raise CheckpointError(
            f"pretrained file {path} does not fit preset {spec.preset!r}: {shown}. Expected canonical "
            "names of this model or of one branch-less backbone ('backbone.*') with the same shapes"
        )
    if loaded == 0:
        raise CheckpointError(
            f"pretrained file {path} holds no tensor of this model; nothing was loaded"
        )
    return out, PretrainedReport(loaded=loaded, kept_initial=len(out) - loaded)
