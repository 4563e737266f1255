"""The spec interpreter: a ModelSpec becomes a static MindSpore Cell tree.

The spec is walked once, here, into Cells laid out so that every Cell's
attribute path is its canonical name (names.py maps the batch-norm leaves),
so ``parameters_and_names()`` lists exactly ``param_table(spec)``. Each
class is named after the spec node it interprets, as in the torch backend's
build.py (docs/backends.md lists them side by side). The same Cells run
eagerly (PYNATIVE) and inside ``ms.jit`` (GRAPH): construct methods branch
only on Python constants fixed at build time.

``lowered`` selects the CPU lowerings (lowering.py): the im2col + matmul
convolution for kernels > 1 and the window-view max pool, fast on the CPU
where MindSpore's native kernels are slow. Export and GPU/Ascend use the
native kernels.

Weights are not drawn here: build_model() leaves parameters zero
(batch-norm variances one) and callers load ``vdreid.spec.init_state`` or
a checkpoint with names.set_state, so every backend starts identical.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from vdreid.losses.geometry import compose_feature
from vdreid.spec import nodes as sn
from vdreid.spec.model import PATH_OUTPUTS, ModelSpec
from vdreid_mindspore._quiet import mindspore as ms
from vdreid_mindspore.lowering import Conv2d, MaxPool, cast_like
from vdreid_mindspore.names import check_layout
from vdreid_mindspore.ops import MSOps


# -- layers -------------------------------------------------------------------
def batch_norm(node: sn.BatchNorm, *, maps: bool) -> nn.Cell:
    """nn.BatchNorm2d (maps) or 1d (vectors) with the spec's momentum and a
    frozen shift when the spec freezes it.

    MindSpore's conventions (measured on 2.10, tested in
    tests/backends/mindspore/test_build.py): ``nn.BatchNorm*d(momentum=m)``
    weights the OLD running value (running = m * running + (1 - m) * batch),
    while the spec and torch weight the batch value, hence ``1 - momentum``.
    The running variance is updated with the UNBIASED batch variance and
    train mode normalises with the biased one, as torch does.
    """
    cls = nn.BatchNorm2d if maps else nn.BatchNorm1d
    bn = cls(node.channels, eps=node.eps, momentum=1.0 - node.momentum)
    if not node.shift_trainable:
        bn.beta.requires_grad = False
    return bn


def conv(node: sn.Conv, lowered: bool) -> Conv2d:
    return Conv2d(
        node.in_channels,
        node.out_channels,
        node.kernel,
        node.stride,
        node.padding,
        bias=node.bias,
        lowered=lowered,
    )


class Linear(nn.Cell):
    """y = x W^T + b with W of shape (out, in)."""

    def __init__(self, node: sn.Linear):
        super().__init__()
        self.weight = Parameter(
            Tensor(np.zeros((node.out_features, node.in_features), np.float32)), name="weight"
        )
        self.has_bias = node.bias
        self.bias = (
            Parameter(Tensor(np.zeros((node.out_features,), np.float32)), name="bias")
            if node.bias
            else None
        )

    def construct(self, x: Tensor) -> Tensor:
        y = ops.matmul(x, cast_like(self.weight, x).T)
        if self.has_bias:
            y = y + cast_like(self.bias, x)
        return y


def linear(node: sn.Linear) -> Linear:
    return Linear(node)


def max_pool(node: sn.Pool, lowered: bool) -> MaxPool:
    """Windowed max; padding counts as -inf (the lowering keeps that on the CPU)."""
    return MaxPool(node, lowered=lowered)


# -- nodes ----------------------------------------------------------------------
class ChannelAttention(nn.Cell):
    """DANet CAM: Y = s * softmax_rows(rowmax(E) - E) X + X, E = X X^T."""

    def __init__(self, node: sn.ChannelAttention):
        super().__init__()
        self.attn_scale = Parameter(Tensor(np.zeros((1,), np.float32)), name="attn_scale")

    def construct(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        q = x.reshape(n, c, h * w)
        energy = ops.bmm(q, q.transpose(0, 2, 1))
        energy = ops.amax(energy, -1, True) - energy
        attn = ops.softmax(energy, -1)
        return cast_like(self.attn_scale, x) * ops.bmm(attn, q).reshape(n, c, h, w) + x


class Downsample(nn.Cell):
    def __init__(self, node: sn.Downsample, lowered: bool):
        super().__init__()
        self.conv = conv(node.conv, lowered)
        self.bn = batch_norm(node.bn, maps=True)

    def construct(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class Block(nn.Cell):
    """Basic (2 convs) or bottleneck (3 convs) residual block."""

    def __init__(self, node: sn.BasicBlock | sn.BottleneckBlock, lowered: bool):
        super().__init__()
        self.depth = 3 if isinstance(node, sn.BottleneckBlock) else 2
        self.conv1, self.bn1 = conv(node.conv1, lowered), batch_norm(node.bn1, maps=True)
        self.conv2, self.bn2 = conv(node.conv2, lowered), batch_norm(node.bn2, maps=True)
        if isinstance(node, sn.BottleneckBlock):
            self.conv3, self.bn3 = conv(node.conv3, lowered), batch_norm(node.bn3, maps=True)
        self.has_downsample = node.downsample is not None
        if node.downsample is not None:
            self.downsample = Downsample(node.downsample, lowered)

    def construct(self, x: Tensor) -> Tensor:
        out = ops.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.depth == 3:
            out = self.bn3(self.conv3(ops.relu(out)))
        shortcut = self.downsample(x) if self.has_downsample else x
        return ops.relu(out + shortcut)


class ResNet(nn.Cell):
    """Stem, optional channel attention before layer k, layers, global average pool."""

    def __init__(self, node: sn.ResNet, lowered: bool):
        super().__init__()
        self.conv1 = conv(node.stem.conv, lowered)
        self.bn1 = batch_norm(node.stem.bn, maps=True)
        self.maxpool = max_pool(node.stem.pool, lowered)
        order = []
        for k, stage in enumerate(node.stages, start=1):
            if stage.attention is not None:
                setattr(self, f"cam{k}", ChannelAttention(stage.attention))
                order.append(f"cam{k}")
            setattr(self, f"layer{k}", nn.SequentialCell([Block(b, lowered) for b in stage.blocks]))
            order.append(f"layer{k}")
        self.order = tuple(order)  # attribute names in call order, constants for the graph

    def construct(self, x: Tensor) -> Tensor:
        x = self.maxpool(ops.relu(self.bn1(self.conv1(x))))
        for name in self.order:
            x = getattr(self, name)(x)
        return ops.mean(x, (2, 3))


class BNNeck(nn.Cell):
    def __init__(self, node: sn.BNNeck):
        super().__init__()
        self.bn = batch_norm(node.bn, maps=False)

    def construct(self, x: Tensor) -> Tensor:
        return self.bn(x)


class Classifier(nn.Cell):
    """[hidden, bn, LeakyReLU], dropout, fc.

    Dropout multiplies by a ``keep`` mask (0 or 1/(1-p), shape (batch,
    width)) that the trainer draws on the host from its seeded generator:
    MindSpore's CPU dropout cannot be reseeded inside a compiled graph, and
    host masks make a resumed run draw the same masks. ``keep=None`` (every
    forward outside training) is no dropout.
    """

    def __init__(self, node: sn.Classifier):
        super().__init__()
        self.has_hidden = node.hidden is not None
        if node.hidden is not None:
            self.hidden = linear(node.hidden)
        self.has_norm = node.norm is not None
        if node.norm is not None:
            self.bn = batch_norm(node.norm, maps=False)
        self.negative_slope = node.negative_slope
        self.fc = linear(node.fc)

    def construct(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        if self.has_hidden:
            x = self.hidden(x)
        if self.has_norm:
            x = self.bn(x)
        if self.has_hidden:
            x = ops.leaky_relu(x, self.negative_slope)
        if keep is not None:
            x = x * keep
        return self.fc(x)


class HeadMLP(nn.Cell):
    """fc1 bn1 relu ... fcL (norms after every linear but the last)."""

    def __init__(self, node: sn.HeadMLP):
        super().__init__()
        order = []
        for j, lin in enumerate(node.linears, start=1):
            setattr(self, f"fc{j}", linear(lin))
            order.append((f"fc{j}", False))
            if j <= len(node.norms):
                setattr(self, f"bn{j}", batch_norm(node.norms[j - 1], maps=False))
                order.append((f"bn{j}", True))
        self.order = tuple(order)  # (attribute, relu after it)

    def construct(self, x: Tensor) -> Tensor:
        for name, relu in self.order:
            x = getattr(self, name)(x)
            if relu:
                x = ops.relu(x)
        return x


class Branch(nn.Cell):
    """Encoder + neck (the observation) + classifier, head and z classifier."""

    def __init__(self, node: sn.Branch, lowered: bool):
        super().__init__()
        self.backbone = ResNet(node.backbone, lowered)
        self.has_neck = node.neck is not None
        if node.neck is not None:
            self.neck = BNNeck(node.neck)
        self.classifier = Classifier(node.classifier)
        self.head = HeadMLP(node.head)
        self.z_classifier = Classifier(node.z_classifier)

    def observe(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(global, feat): what the test feature needs."""
        g = self.backbone(x)
        return g, (self.neck(g) if self.has_neck else g)

    def construct(
        self, x: Tensor, keep: Tensor | None = None, z_keep: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        g, feat = self.observe(x)
        z = self.head(feat)
        return g, feat, self.classifier(feat, keep), z, self.z_classifier(z, z_keep)


# -- inputs ---------------------------------------------------------------------
def _channel(values: tuple[float, float, float]) -> Tensor:
    return Tensor(np.asarray(values, np.float32).reshape(1, 3, 1, 1))


class Normalise(nn.Cell):
    """uint8 NHWC -> normalised float32 NCHW (mirrors vdreid.spec.preprocess)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.mean, self.std = _channel(spec.input.mean), _channel(spec.input.std)

    def construct(self, images: Tensor) -> Tensor:
        x = images.astype(ms.float32).transpose(0, 3, 1, 2) / 255.0
        return (x - self.mean) / self.std


class Grey(nn.Cell):
    """The spec's grey view of a normalised NCHW batch (mirrors vdreid.spec.to_grey)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.k = _channel(spec.grey.coefficients)
        self.mean, self.std = _channel(spec.input.mean), _channel(spec.input.std)
        self.pixel = spec.grey.space == "pixel"

    def construct(self, x: Tensor) -> Tensor:
        if self.pixel:
            y = ops.sum((x * self.std + self.mean) * self.k, 1, True)
            return (y - self.mean) / self.std
        g = ops.sum(x * self.k, 1, True)
        return ops.tile(g, (1, 3, 1, 1))


# -- the model --------------------------------------------------------------------
class DropoutSlot(NamedTuple):
    """One dropout of a forward: path index, classifier attribute, mask shape per image, p."""

    path: int
    classifier: str
    width: int
    p: float


class MVDModel(nn.Cell):
    """Every branch, called once per path in the spec's order (S twice, grey first).

    construct(x, keeps=None) returns a TUPLE in the order of
    ``output_names(train)`` (``spec.output_names()``, then ``test_feature``
    in eval mode): a graph that returns a dict compiles for minutes in train
    mode on MindSpore 2.10, tuples compile in seconds, and callers zip them
    with the names. ``keeps`` holds one dropout mask per ``dropout_slots``
    entry, or None for no dropout. ``test_feature(x)`` runs only what the
    retrieval feature needs. Attributes named after the branches (``V``,
    ``I``, ``S``) hold the weights; ``normalise`` and ``grey`` hold the input
    constants (no state).
    """

    def __init__(self, spec: ModelSpec, *, lowered: bool = False):
        super().__init__()
        self.spec = spec
        for b in spec.branches:
            setattr(self, b.name, Branch(b, lowered))
        self.normalise = Normalise(spec)
        self.grey = Grey(spec)
        self.routes = tuple((p.name, p.branch, p.view) for p in spec.paths)
        self.feature_routes = tuple(
            r for name in spec.test_feature.paths for r in self.routes if r[0] == name
        )
        self.per_block = spec.test_feature.per_block
        self.array_ops = MSOps()
        slots = []
        for i, p in enumerate(spec.paths):
            b = spec.branch(p.branch)
            for attr in ("classifier", "z_classifier"):
                c = getattr(b, attr)
                if c.dropout > 0:
                    width = c.hidden.out_features if c.hidden is not None else c.fc.in_features
                    slots.append(DropoutSlot(i, attr, width, c.dropout))
        self.dropout_slots = tuple(slots)
        # per path: (index into keeps of its classifier mask, of its z_classifier mask), -1 = none
        self.keep_index = tuple(
            tuple(
                next((j for j, s in enumerate(slots) if s.path == i and s.classifier == attr), -1)
                for attr in ("classifier", "z_classifier")
            )
            for i in range(len(spec.paths))
        )
        # where each feat of the test feature sits in the output tuple
        names = [p.name for p in spec.paths]
        feat = PATH_OUTPUTS.index("feat")
        self.feature_index = tuple(
            names.index(name) * len(PATH_OUTPUTS) + feat for name in spec.test_feature.paths
        )

    def output_names(self, train: bool) -> tuple[str, ...]:
        names = self.spec.output_names()
        return names if train else (*names, "test_feature")

    def construct(self, x: Tensor, keeps: tuple[Tensor, ...] | None = None) -> tuple[Tensor, ...]:
        g = self.grey(x)
        out: tuple[Tensor, ...] = ()
        for i, (_, branch, view) in enumerate(self.routes):
            k, zk = None, None
            if keeps is not None:
                if self.keep_index[i][0] >= 0:
                    k = keeps[self.keep_index[i][0]]
                if self.keep_index[i][1] >= 0:
                    zk = keeps[self.keep_index[i][1]]
            out = out + getattr(self, branch)(g if view == "grey" else x, k, zk)
        if not self.training:
            out = out + (self.compose([out[i] for i in self.feature_index]),)
        return out

    def test_feature(self, x: Tensor) -> Tensor:
        g = self.grey(x)
        feats: tuple[Tensor, ...] = ()
        for _, branch, view in self.feature_routes:
            feats = feats + (getattr(self, branch).observe(g if view == "grey" else x)[1],)
        return self.compose(list(feats))

    def compose(self, blocks: list[Tensor]) -> Tensor:
        """The spec's retrieval feature (vdreid.losses.compose_feature)."""
        return compose_feature(self.array_ops, blocks, self.per_block)


def set_precision(model: nn.Cell, dtype) -> None:
    """Run ``model`` in ``dtype`` (float16 for mixed precision, float32 to undo):
    every cell casts its inputs to it, batch norms stay float32, and the
    float32 parameters are cast where they are used (cast_like). Unlike
    ``ms.amp.auto_mixed_precision``, which wraps cells and so renames the
    parameters, this leaves the Cell tree, and the canonical names, as they are."""
    model.to_float(dtype)
    for _, cell in model.cells_and_names():
        if isinstance(cell, (nn.BatchNorm1d, nn.BatchNorm2d)):
            cell.to_float(ms.float32)


def build_model(spec: ModelSpec, *, lowered: bool = False) -> MVDModel:
    """The Cell tree for ``spec`` with zero weights (batch-norm variances one);
    load canonical state next (names.set_state)."""
    model = MVDModel(spec, lowered=lowered)
    check_layout(model, spec)
    return model
