"""The spec interpreter: a ModelSpec becomes a static MindSpore Cell tree.

Attribute paths of the tree are the canonical names (names.py maps the
batch-norm leaves), so ``parameters_and_names()`` lists exactly
``param_table(spec)``. The same Cells run eagerly (PYNATIVE) and inside
``ms.jit`` (GRAPH): construct methods branch only on Python constants fixed
at build time.

``lowered`` selects the CPU lowerings: the im2col + matmul convolution
(conv.py) for kernels > 1 and the window-view max pool (MaxPool), fast on
the CPU where MindSpore's native kernels (the convolution, the max-pool
backward) are slow. Export and GPU/Ascend use the native kernels.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from vdreid.spec import nodes as sn
from vdreid.spec.model import PATH_OUTPUTS, ModelSpec
from vdreid_mindspore._quiet import mindspore as ms
from vdreid_mindspore.conv import Conv2d, cast_like
from vdreid_mindspore.names import bn_momentum, check_layout


def batch_norm(node: sn.BatchNorm, *, maps: bool) -> nn.Cell:
    """nn.BatchNorm2d (maps) or 1d (vectors) with the spec's momentum and a
    frozen shift when the spec freezes it."""
    cls = nn.BatchNorm2d if maps else nn.BatchNorm1d
    bn = cls(node.channels, eps=node.eps, momentum=bn_momentum(node.momentum))
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


class MaxPool(nn.Cell):
    """Windowed max; padding counts as -inf (as in torch and the oracle).

    ``lowered`` (the CPU): -inf padding, the k*k windows as columns
    (ops.unfold), and ops.max over them, whose backward routes each gradient
    to the first maximum of its window, as torch's max pool does. MindSpore's
    CPU max-pool backward takes ~8 s for one ResNet stem map (batch 8 at
    256x128), 150x its forward, and made a training step 9x slower than
    torch's. The -inf border is concatenated: ops.pad's backward returns
    different (wrong) gradients from run to run on MindSpore 2.10's CPU. Native
    otherwise: on GPU/Ascend and in exported graphs (whose dynamic batch
    axis the explicit -inf pad would lose).
    """

    def __init__(self, node: sn.Pool, lowered: bool):
        super().__init__()
        self.kernel, self.stride, self.padding = node.kernel, node.stride, node.padding
        self.lowered = lowered

    def construct(self, x: Tensor) -> Tensor:
        if not self.lowered:
            return ops.max_pool2d(x, self.kernel, self.stride, self.padding)
        k, s, p = self.kernel, self.stride, self.padding
        n, c, h, w = x.shape
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        if p > 0:
            x = _pad_with_minus_inf(x, p)
        windows = ops.unfold(x, k, 1, 0, s).reshape(n, c, k * k, ho * wo)
        return ops.max(windows, 2)[0].reshape(n, c, ho, wo)


def _pad_with_minus_inf(x: Tensor, p: int) -> Tensor:
    n, c, h, w = x.shape
    side = ops.full((n, c, h, p), float("-inf"), dtype=x.dtype)
    x = ops.cat([side, x, side], 3)
    edge = ops.full((n, c, p, w + 2 * p), float("-inf"), dtype=x.dtype)
    return ops.cat([edge, x, edge], 2)


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
        if self.depth == 3:
            self.conv3, self.bn3 = conv(node.conv3, lowered), batch_norm(node.bn3, maps=True)
        self.has_downsample = node.downsample is not None
        if self.has_downsample:
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
        self.maxpool = MaxPool(node.stem.pool, lowered)
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
        if self.has_hidden:
            self.hidden = Linear(node.hidden)
        self.has_norm = node.norm is not None
        if self.has_norm:
            self.bn = batch_norm(node.norm, maps=False)
        self.negative_slope = node.negative_slope
        self.fc = Linear(node.fc)

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
            setattr(self, f"fc{j}", Linear(lin))
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
        if self.has_neck:
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


class Grey(nn.Cell):
    """The spec's grey view of a normalised NCHW batch (mirrors vdreid.spec.to_grey)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        channel = lambda v: Tensor(np.asarray(v, np.float32).reshape(1, 3, 1, 1))  # noqa: E731
        self.k = channel(spec.grey.coefficients)
        self.mean, self.std = channel(spec.input.mean), channel(spec.input.std)
        self.pixel = spec.grey.space == "pixel"

    def construct(self, x: Tensor) -> Tensor:
        if self.pixel:
            y = ops.sum((x * self.std + self.mean) * self.k, 1, True)
            return (y - self.mean) / self.std
        g = ops.sum(x * self.k, 1, True)
        return ops.tile(g, (1, 3, 1, 1))


class Normalise(nn.Cell):
    """uint8 NHWC -> normalised float32 NCHW (mirrors vdreid.spec.preprocess)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.mean = Tensor(np.asarray(spec.input.mean, np.float32).reshape(1, 3, 1, 1))
        self.std = Tensor(np.asarray(spec.input.std, np.float32).reshape(1, 3, 1, 1))

    def construct(self, images: Tensor) -> Tensor:
        x = images.astype(ms.float32).transpose(0, 3, 1, 2) / 255.0
        return (x - self.mean) / self.std


class DropoutSlot(NamedTuple):
    """One dropout of a forward: path index, classifier attribute, mask shape per image, p."""

    path: int
    classifier: str
    width: int
    p: float


class MVDNet(nn.Cell):
    """Every branch, called once per path in the spec's order (S twice, grey first).

    construct(x, keeps=None) returns a TUPLE in the order of
    ``output_names(train)``: ``{path}.{global,feat,logits,z,z_logits}`` for
    every path, then ``test_feature`` in eval mode. (A graph that returns a
    dict compiles for minutes in train mode on MindSpore 2.10; tuples
    compile in seconds, and callers zip them with the names.) ``keeps``
    holds one dropout mask per ``dropout_slots`` entry, or None for no
    dropout. ``test_feature(x)`` runs only what the retrieval feature needs.
    """

    def __init__(self, spec: ModelSpec, *, lowered: bool = False):
        super().__init__()
        self.spec = spec
        for b in spec.branches:
            setattr(self, b.name, Branch(b, lowered))
        self.grey = Grey(spec)
        self.routes = tuple((p.name, p.branch, p.view) for p in spec.paths)
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
        tf = spec.test_feature
        self.feature_paths = tuple(tf.paths)
        self.feature_index = tuple(
            [p.name for p in spec.paths].index(name) * len(PATH_OUTPUTS) + 1 for name in tf.paths
        )
        self.per_block = tf.normalise == "per_block"

    def output_names(self, train: bool) -> tuple[str, ...]:
        names = tuple(f"{p}.{n}" for p, _, _ in self.routes for n in PATH_OUTPUTS)
        return names if train else (*names, "test_feature")

    def construct(self, x: Tensor, keeps: tuple[Tensor, ...] | None = None) -> tuple[Tensor, ...]:
        g = self.grey(x)
        out = ()
        for i, (_, branch, view) in enumerate(self.routes):
            k, zk = None, None
            if keeps is not None:
                if self.keep_index[i][0] >= 0:
                    k = keeps[self.keep_index[i][0]]
                if self.keep_index[i][1] >= 0:
                    zk = keeps[self.keep_index[i][1]]
            out = out + getattr(self, branch)(g if view == "grey" else x, k, zk)
        if not self.training:
            out = out + (self._combine([out[i] for i in self.feature_index]),)
        return out

    def test_feature(self, x: Tensor) -> Tensor:
        g = self.grey(x)
        feats = ()
        for path in self.feature_paths:
            for name, branch, view in self.routes:
                if name == path:
                    feats = feats + (getattr(self, branch).observe(g if view == "grey" else x)[1],)
        return self._combine(list(feats))

    def _combine(self, blocks: list[Tensor]) -> Tensor:
        if self.per_block:
            return ops.cat([_l2(b) for b in blocks], 1)
        return _l2(ops.cat(blocks, 1))


def _l2(x: Tensor) -> Tensor:
    # same floor as torch.nn.functional.normalize (eps 1e-12 on the norm)
    norm = ops.sqrt(ops.sum(x * x, 1, True))
    return x / ops.clamp(norm, 1e-12)


def set_lowered(model: nn.Cell, lowered: bool) -> None:
    """Switch every k > 1 convolution and max pool between the CPU lowering and
    the native kernel (takes effect in graphs compiled afterwards)."""
    for _, cell in model.cells_and_names():
        if isinstance(cell, Conv2d):
            cell.lowered = lowered and cell.kernel > 1
        elif isinstance(cell, MaxPool):
            cell.lowered = lowered


def is_lowered(model: nn.Cell) -> bool:
    return any(c.lowered for _, c in model.cells_and_names() if isinstance(c, (Conv2d, MaxPool)))


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


def build_model(spec: ModelSpec, *, lowered: bool = False) -> MVDNet:
    """The Cell tree for ``spec`` with zero weights (batch-norm variances one);
    load canonical state next (names.set_state)."""
    model = MVDNet(spec, lowered=lowered)
    check_layout(model, spec)
    return model
