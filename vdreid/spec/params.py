"""The parameter table: every tensor of a spec under its canonical name.

Canonical names are dotted, framework-neutral and rooted at the branch:

  {B}.backbone.conv1.weight                 stem conv (OIHW)
  {B}.backbone.bn1.{scale,shift,mean,var}   stem batch norm
  {B}.backbone.cam{k}.attn_scale            channel attention on layer k's input, shape (1,)
  {B}.backbone.layer{k}.{i}.conv{j}.weight / .bn{j}.*      residual block i of layer k
  {B}.backbone.layer{k}.{i}.downsample.{conv,bn}.*         its projection shortcut
  {B}.neck.bn.*                             BNNeck
  {B}.classifier.fc.{weight,bias}           ID classifier on feat
  {B}.head.fc{j}.{weight,bias}, {B}.head.bn{j}.*           bottleneck head (j from 1)
  {B}.z_classifier.{hidden,fc}.{weight,bias}, {B}.z_classifier.bn.*

``mean`` and ``var`` of a batch norm are running statistics (not learnable,
never trainable); every other entry is a learnable parameter, trainable
unless the spec freezes it (the official BNNeck shift).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Literal

from vdreid.spec.model import ModelSpec
from vdreid.spec.nodes import (
    ONES,
    ZEROS,
    BasicBlock,
    BatchNorm,
    BottleneckBlock,
    Branch,
    Classifier,
    Conv,
    Init,
    Linear,
    ResNet,
)

Role = Literal["weight", "bias", "bn_scale", "bn_shift", "bn_mean", "bn_var", "scalar"]


@dataclasses.dataclass(frozen=True)
class ParamInfo:
    """What one named tensor is. ``running``: a batch-norm running statistic;
    ``batch_norm``: the node a batch-norm tensor belongs to (its eps, momentum)."""

    shape: tuple[int, ...]
    role: Role
    trainable: bool
    running: bool
    init: Init
    batch_norm: BatchNorm | None = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)


Entries = Iterator[tuple[str, ParamInfo]]


def conv_params(node: Conv, name: str) -> Entries:
    shape = (node.out_channels, node.in_channels, node.kernel, node.kernel)
    yield f"{name}.weight", ParamInfo(shape, "weight", True, False, node.init)
    if node.bias:
        yield f"{name}.bias", ParamInfo((node.out_channels,), "bias", True, False, ZEROS)


def bn_params(node: BatchNorm, name: str) -> Entries:
    c = (node.channels,)
    yield f"{name}.scale", ParamInfo(c, "bn_scale", True, False, node.scale_init, node)
    yield f"{name}.shift", ParamInfo(c, "bn_shift", node.shift_trainable, False, ZEROS, node)
    yield f"{name}.mean", ParamInfo(c, "bn_mean", False, True, ZEROS, node)
    yield f"{name}.var", ParamInfo(c, "bn_var", False, True, ONES, node)


def linear_params(node: Linear, name: str) -> Entries:
    yield (
        f"{name}.weight",
        ParamInfo((node.out_features, node.in_features), "weight", True, False, node.init),
    )
    if node.bias:
        yield f"{name}.bias", ParamInfo((node.out_features,), "bias", True, False, ZEROS)


def block_params(node: BasicBlock | BottleneckBlock, name: str) -> Entries:
    """Children in field order: conv1 bn1 conv2 bn2 [conv3 bn3] [downsample]."""
    for field, child in node:
        if isinstance(child, Conv):
            yield from conv_params(child, f"{name}.{field}")
        elif isinstance(child, BatchNorm):
            yield from bn_params(child, f"{name}.{field}")
    if node.downsample is not None:
        yield from conv_params(node.downsample.conv, f"{name}.downsample.conv")
        yield from bn_params(node.downsample.bn, f"{name}.downsample.bn")


def resnet_params(node: ResNet, name: str) -> Entries:
    yield from conv_params(node.stem.conv, f"{name}.conv1")
    yield from bn_params(node.stem.bn, f"{name}.bn1")
    for k, stage in enumerate(node.stages, start=1):
        if stage.attention is not None:
            yield (
                f"{name}.cam{k}.attn_scale",
                ParamInfo((1,), "scalar", True, False, stage.attention.init),
            )
        for i, block in enumerate(stage.blocks):
            yield from block_params(block, f"{name}.layer{k}.{i}")


def classifier_params(node: Classifier, name: str) -> Entries:
    if node.hidden is not None:
        yield from linear_params(node.hidden, f"{name}.hidden")
    if node.norm is not None:
        yield from bn_params(node.norm, f"{name}.bn")
    yield from linear_params(node.fc, f"{name}.fc")


def branch_params(node: Branch) -> Entries:
    b = node.name
    yield from resnet_params(node.backbone, f"{b}.backbone")
    if node.neck is not None:
        yield from bn_params(node.neck.bn, f"{b}.neck.bn")
    yield from classifier_params(node.classifier, f"{b}.classifier")
    for j, lin in enumerate(node.head.linears, start=1):
        yield from linear_params(lin, f"{b}.head.fc{j}")
        if j <= len(node.head.norms):
            yield from bn_params(node.head.norms[j - 1], f"{b}.head.bn{j}")
    yield from classifier_params(node.z_classifier, f"{b}.z_classifier")


def param_table(spec: ModelSpec) -> dict[str, ParamInfo]:
    """Canonical name -> ParamInfo for every tensor, branches in spec order."""
    return {name: info for branch in spec.branches for name, info in branch_params(branch)}


def count_params(
    table: Mapping[str, ParamInfo], prefix: str = "", *, trainable_only: bool = False
) -> int:
    """Learnable elements (running statistics excluded) under ``prefix``."""
    return sum(
        info.size
        for name, info in table.items()
        if name.startswith(prefix) and not info.running and (info.trainable or not trainable_only)
    )


def running_names(table: Mapping[str, ParamInfo]) -> list[str]:
    return [name for name, info in table.items() if info.running]


def trainable_names(table: Mapping[str, ParamInfo]) -> list[str]:
    """The tensors an optimiser updates (and keeps moments for), in table order."""
    return [name for name, info in table.items() if info.trainable and not info.running]


def renamed_leaves(names: Iterable[str], leaves: Mapping[str, str]) -> dict[str, str]:
    """Canonical name -> the name a framework gives the tensor, for frameworks
    whose module layout follows the canonical names and only some leaves are
    named otherwise (``leaves``: canonical leaf -> the framework's, say batch
    norm's ``scale`` -> ``weight``)."""
    out = {}
    for name in names:
        head, _, leaf = name.rpartition(".")
        out[name] = f"{head}.{leaves[leaf]}" if leaf in leaves else name
    return out


def check_layout(expected: Iterable[str], have: Iterable[str], interpreter: str) -> None:
    """AssertionError (a bug in ``interpreter``, not a user error) when the
    tensor names a built model holds differ from the ``expected`` ones."""
    expected, have = set(expected), set(have)
    if have != expected:
        raise AssertionError(
            f"{interpreter} laid out tensors that do not match param_table: "
            f"missing {sorted(expected - have)[:5]}, extra {sorted(have - expected)[:5]}"
        )
