"""Conversion: another code base's weight file -> canonical tensors (+ spec).

- A whole MVD model (``official``, ``msport``) becomes a vdreid checkpoint
  of that preset: the class count is read from the file's classifier, every
  tensor of the preset's parameter table is taken from the file (missing or
  mis-shaped ones are one error naming them all), and what the file holds
  beyond the model (the unused ImageNet fc, batch-norm counters, optimiser
  state) is reported as dropped.
- An ImageNet ResNet (``torchvision``, ``timm``, ``mindspore-zoo``) becomes a
  branch-less backbone file (``backbone.*``), which ``--pretrained`` loads
  into every branch. Its depth and width are read from the file; its
  batch-norm eps is recorded (``bn_eps``: MindSpore's zoo trains with 1e-4,
  torchvision with 1e-5) and folded into each target batch norm when the
  file is applied (:func:`fold_bn_eps`).

The metadata of the result records the source file's name, sha256 and
layout, and its epoch and best_top1 where it has them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from vdreid.checkpoint import load_checkpoint, model_state
from vdreid.errors import CheckpointError
from vdreid.interchange.layouts import LAYOUTS, MODEL_LAYOUTS
from vdreid.interchange.sources import VDREID_KINDS, SourceFile, detect_layout, read_source
from vdreid.presets import recipe
from vdreid.spec.builders import RESNET_LAYOUTS, resnet
from vdreid.spec.model import ModelSpec
from vdreid.spec.params import ParamInfo, param_table, resnet_params

#: --from choices: auto, every layout, vdreid's own files
FROM_CHOICES = ("auto", *LAYOUTS, *VDREID_KINDS)
#: metadata keys a conversion writes
META_SOURCE = "source"
META_SOURCE_SHA256 = "source_sha256"
META_SOURCE_FORMAT = "source_format"
META_BN_EPS = "bn_eps"
#: the batch-norm eps of each backbone layout's files
BACKBONE_BN_EPS = {"torchvision": 1e-5, "timm": 1e-5, "mindspore-zoo": 1e-4}
#: a source's top-level numbers kept in the metadata as source_<name>
KEPT_EXTRAS = ("epoch", "best_top1")


@dataclasses.dataclass(frozen=True)
class Converted:
    """Canonical tensors of a converted file and what the conversion did."""

    layout: str
    kind: str  # "model" (a spec and every tensor) or "backbone" (backbone.* only)
    tensors: dict[str, np.ndarray]
    spec: ModelSpec | None
    #: why -> the file's keys left out for that reason
    dropped: dict[str, list[str]]
    meta: dict[str, str]

    def summary(self) -> str:
        what = (
            f"the {self.spec.preset!r} preset, {self.spec.num_classes} classes"
            if self.spec is not None
            else "a branch-less backbone"
        )
        line = f"{self.layout} file -> {what}: {len(self.tensors)} tensors placed"
        for why, keys in self.dropped.items():
            line += f"; dropped {len(keys)} ({why})"
        return line


def convert_file(path: str | Path, from_: str = "auto") -> Converted:
    """Read ``path`` and convert it; ``from_`` names its layout (auto: by content)."""
    if from_ not in FROM_CHOICES:
        raise CheckpointError(
            f"--from {from_!r} is not a format; choose one of {', '.join(FROM_CHOICES)}"
        )
    source = read_source(path)
    layout = detect_layout(source) if from_ == "auto" else from_
    meta = _source_meta(source, layout)
    if layout == "vdreid":
        ckpt = load_checkpoint(source.path)
        return Converted(layout, "model", model_state(ckpt.tensors), ckpt.spec, {}, meta)
    if layout == "vdreid-backbone":
        tensors = dict(source.tensors)
        eps = source.extras.get(META_BN_EPS)
        if eps is not None:
            meta[META_BN_EPS] = str(eps)
        return Converted(layout, "backbone", tensors, None, {}, meta)
    if layout in MODEL_LAYOUTS:
        spec = recipe(layout).model_spec(_num_classes(source, layout))
        tensors, dropped = _take(source, layout, param_table(spec))
        return Converted(layout, "model", tensors, spec, dropped, meta)
    table = dict(resnet_params(_backbone_node(source, layout), "backbone"))
    tensors, dropped = _take(source, layout, table)
    meta[META_BN_EPS] = repr(BACKBONE_BN_EPS[layout])
    return Converted(layout, "backbone", tensors, None, dropped, meta)


def _source_meta(source: SourceFile, layout: str) -> dict[str, str]:
    meta = {
        META_SOURCE: source.path.name,
        META_SOURCE_SHA256: source.sha256,
        META_SOURCE_FORMAT: layout,
    }
    for name in KEPT_EXTRAS:
        if isinstance(source.extras.get(name), (int, float)):
            meta[f"source_{name}"] = repr(source.extras[name])
    return meta


def _num_classes(source: SourceFile, layout: str) -> int:
    """Rows of the V branch's classifier on feat."""
    key = LAYOUTS[layout].key("V.classifier.fc.weight")
    weight = source.tensors.get(key)
    if weight is None or weight.ndim != 2:
        raise CheckpointError(
            f"{source.path} has no {key} (the visible branch's classifier), so it is no "
            f"{layout} checkpoint: {source.describe()}"
        )
    return int(weight.shape[0])


def _backbone_node(source: SourceFile, layout: str):
    """The ResNet the file holds: depth from the blocks per stage, width from the stem."""
    key = LAYOUTS[layout].key
    stem = source.tensors.get(key("backbone.conv1.weight"))
    if stem is None or stem.ndim != 4 or stem.shape[1:] != (3, 7, 7):
        raise CheckpointError(
            f"{source.path} has no 7x7 RGB stem convolution at {key('backbone.conv1.weight')}, "
            f"so it is not a plain ResNet vdreid can use ({source.describe()}); variants with a "
            "deep stem (resnet50d ...) do not fit the spec's trunk"
        )
    counts = tuple(
        sum(1 for i in range(64) if key(f"backbone.layer{k}.{i}.conv1.weight") in source.tensors)
        for k in range(1, 5)
    )
    kind = "bottleneck" if key("backbone.layer1.0.conv3.weight") in source.tensors else "basic"
    depth = next((d for d, layout_ in RESNET_LAYOUTS.items() if layout_ == (kind, counts)), None)
    if depth is None:
        raise CheckpointError(
            f"{source.path} holds a ResNet with {kind} blocks {counts} per stage, which no "
            f"supported depth has ({', '.join(str(d) for d in RESNET_LAYOUTS)})"
        )
    return resnet(depth, width=stem.shape[0] / 64)


def _take(
    source: SourceFile, layout: str, table: Mapping[str, ParamInfo]
) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """One source tensor per table entry; every problem reported at once."""
    keys = LAYOUTS[layout].source_keys(list(table))
    missing = [f"{k} (for {n})" for n, k in keys.items() if k not in source.tensors]
    shapes = [
        f"{k}: {tuple(source.tensors[k].shape)}, expected {table[n].shape}"
        for n, k in keys.items()
        if k in source.tensors and tuple(source.tensors[k].shape) != table[n].shape
    ]
    not_float = [
        f"{k} ({source.tensors[k].dtype})"
        for k in keys.values()
        if k in source.tensors and not np.issubdtype(source.tensors[k].dtype, np.floating)
    ]
    used = set(keys.values())
    dropped: dict[str, list[str]] = {}
    unexpected = []
    for key in source.tensors:
        if key in used:
            continue
        why = LAYOUTS[layout].leftover(key)
        if why is None:
            unexpected.append(key)
        else:
            dropped.setdefault(why, []).append(key)
    problems = [
        (f"{len(missing)} missing", missing),
        (f"{len(shapes)} with another shape", shapes),
        (f"{len(not_float)} not float", not_float),
        (f"{len(unexpected)} unexpected", unexpected),
    ]
    found = [f"{title}: {_listed(items)}" for title, items in problems if items]
    if found:
        raise CheckpointError(
            f"{source.path} does not fit the {layout} layout ({LAYOUTS[layout].description}): "
            + "; ".join(found)
            + ". Pass the right --from (or auto), or report the file if it should convert"
        )
    tensors = {n: np.asarray(source.tensors[k], np.float32) for n, k in keys.items()}
    return tensors, dropped


def _listed(items: list[str], shown: int = 6) -> str:
    return ", ".join(items[:shown]) + (f", ... ({len(items)} in all)" if len(items) > shown else "")


def fold_bn_eps(
    scale: np.ndarray, var: np.ndarray, source_eps: float, target_eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """(scale, var) for a batch norm with ``target_eps`` that normalises as the
    source's did with ``source_eps`` (exact in eval mode): the difference goes
    into the running variance, and where that would turn negative the rest
    into the scale."""
    var = np.asarray(var, np.float64)
    folded = np.maximum(var + source_eps - target_eps, 0.0)
    ratio = np.sqrt((folded + target_eps) / (var + source_eps))
    return (np.asarray(scale, np.float64) * ratio).astype(np.float32), folded.astype(np.float32)
