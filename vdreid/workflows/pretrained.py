"""Pretrained weights for a training run: ``--pretrained imagenet`` or any file `convert` reads.

- ``imagenet``: torchvision's original ImageNet ResNet-50, from torch hub's
  cache folder or downloaded there once (vdreid.workflows.downloads);
- a path: any weight file ``vdreid convert`` reads (an ImageNet ResNet from
  torchvision, timm or MindSpore's model zoo, an official or msport MVD
  checkpoint, a vdreid checkpoint or backbone file), converted on the fly
  (vdreid.interchange).

A whole-model file loads tensor by tensor into the run's model; a backbone
(``backbone.*``) initialises the backbone of every branch, which is how
ImageNet weights start all three encoders, with its batch-norm eps folded
into each target batch norm's (fold_bn_eps). Tensors the file lacks keep
their initial values and are counted; a tensor the model lacks or of
another shape is an error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from vdreid.errors import CheckpointError
from vdreid.interchange.convert import META_BN_EPS, Converted, convert_file, fold_bn_eps
from vdreid.spec.model import ModelSpec
from vdreid.spec.params import ParamInfo, param_table
from vdreid.workflows.downloads import IMAGENET_RESNET50, fetch

#: the word --pretrained takes for torchvision's ImageNet ResNet-50
IMAGENET = "imagenet"


@dataclasses.dataclass(frozen=True)
class PretrainedReport:
    source: str
    layout: str
    loaded: int
    kept_initial: int
    branches: tuple[str, ...]

    def line(self) -> str:
        into = f"the backbones of {', '.join(self.branches)}" if self.branches else "the model"
        return (
            f"pretrained: {self.source} ({self.layout}, converted): {self.loaded} tensors into "
            f"{into}, {self.kept_initial} kept their initial values"
        )


def pretrained_file(source: str, *, progress: bool = True) -> Path:
    """The file ``--pretrained source`` means (``imagenet``: fetched into torch hub's cache)."""
    if source == IMAGENET:
        return fetch(IMAGENET_RESNET50, progress=progress)
    return Path(source)


def apply_pretrained(
    spec: ModelSpec, state: Mapping[str, np.ndarray], source: str | Path, *, progress: bool = True
) -> tuple[dict[str, np.ndarray], PretrainedReport]:
    """``state`` with the tensors of ``source`` (the word imagenet or a path) in place."""
    path = pretrained_file(str(source), progress=progress)
    converted = convert_file(path)
    if converted.kind == "backbone":
        updates, branches = _into_backbones(spec, converted)
    else:
        updates, branches = dict(converted.tensors), ()
    out = dict(state)
    problems = [f"unexpected {k}" for k in updates if k not in out]
    problems += [
        f"{k}: file {tuple(v.shape)} vs model {tuple(out[k].shape)}"
        for k, v in updates.items()
        if k in out and tuple(v.shape) != tuple(out[k].shape)
    ]
    if problems:
        shown = "; ".join(problems[:8]) + (
            f"; ... ({len(problems)} in all)" if len(problems) > 8 else ""
        )
        raise CheckpointError(
            f"pretrained file {path} does not fit preset {spec.preset!r}: {shown}. Expected "
            "the tensors of this model, or one ResNet backbone of the same depth and width"
        )
    if not updates:
        raise CheckpointError(f"pretrained file {path} holds no tensor of this model")
    for k, v in updates.items():
        out[k] = np.asarray(v, dtype=out[k].dtype)
    report = PretrainedReport(
        str(source), converted.layout, len(updates), len(out) - len(updates), branches
    )
    return out, report


def _into_backbones(
    spec: ModelSpec, converted: Converted
) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """A backbone file's tensors under every branch's backbone, eps folded."""
    table = param_table(spec)
    source_eps = float(converted.meta.get(META_BN_EPS, "nan"))
    updates: dict[str, np.ndarray] = {}
    branches = tuple(b.name for b in spec.branches)
    for branch in branches:
        for key, value in converted.tensors.items():
            updates[f"{branch}.{key}"] = value
    if np.isfinite(source_eps):
        _fold_eps(updates, table, source_eps)
    return updates, branches


def _fold_eps(
    updates: dict[str, np.ndarray], table: Mapping[str, ParamInfo], source_eps: float
) -> None:
    """Batch norms among ``updates`` whose eps is not ``source_eps`` (the file's)."""
    for name, info in table.items():
        if info.role != "bn_var" or name not in updates or info.batch_norm is None:
            continue
        head = name[: -len(".var")]
        eps = info.batch_norm.eps
        if eps != source_eps and f"{head}.scale" in updates:
            updates[f"{head}.scale"], updates[name] = fold_bn_eps(
                updates[f"{head}.scale"], updates[name], source_eps, eps
            )
