"""The spec interpreter: a ModelSpec becomes a plain, static nn.Module.

The spec is walked once, here, into ordinary submodules laid out so that
every module's attribute path is its canonical name (names.py maps the
batch-norm leaves); forward() runs those modules and never looks at the
spec again. Each class is named after the spec node it interprets, as in
the MindSpore backend's build.py (docs/backends.md lists them side by
side). Normalised float32 NCHW images go in; the grey view is made on the
device (mirroring vdreid.spec.to_grey) and every path of ``spec.paths``
runs in order, so S sees grey first, then x, as two calls with their own
batch statistics.

Weights are not drawn here: build_model() leaves parameters zero
(batch-norm variances one) and callers load ``vdreid.spec.init_state`` or
a checkpoint with names.set_state, so every backend starts identical.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vdreid.losses.geometry import compose_feature
from vdreid.spec import nodes as sn
from vdreid.spec.model import ModelSpec
from vdreid_torch.names import check_layout
from vdreid_torch.ops import TorchOps


# -- layers -------------------------------------------------------------------
def batch_norm(node: sn.BatchNorm, *, maps: bool) -> nn.Module:
    """nn.BatchNorm2d (maps) or 1d (vectors) with the spec's momentum and a
    frozen shift when the spec freezes it."""
    cls = nn.BatchNorm2d if maps else nn.BatchNorm1d
    bn = cls(node.channels, eps=node.eps, momentum=node.momentum)
    bn.bias.requires_grad_(node.shift_trainable)
    return bn


class SamePadConv2d(nn.Conv2d):
    """nn.Conv2d with the spec's "same" padding: zeros resolved from the input
    size (vdreid.spec.nodes.same_padding), the odd pixel bottom/right, which
    nn.Conv2d's own padding="same" (stride 1 only, symmetric) cannot say."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        h, w = int(x.shape[-2]), int(x.shape[-1])  # static pads in a traced export
        top, bottom, left, right = sn.resolve_padding("same", k, s, h, w)
        return super().forward(F.pad(x, (left, right, top, bottom)))


def conv(node: sn.Conv) -> nn.Conv2d:
    same = node.padding == "same"
    return (SamePadConv2d if same else nn.Conv2d)(
        node.in_channels,
        node.out_channels,
        node.kernel,
        stride=node.stride,
        padding=0 if same else node.padding,
        bias=node.bias,
    )


def linear(node: sn.Linear) -> nn.Linear:
    """y = x W^T + b with W of shape (out, in)."""
    return nn.Linear(node.in_features, node.out_features, bias=node.bias)


class SamePadMaxPool2d(nn.MaxPool2d):
    """nn.MaxPool2d with the spec's "same" padding (-inf, the odd pixel bottom/right)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = int(self.kernel_size), int(self.stride)  # type: ignore[arg-type]
        h, w = int(x.shape[-2]), int(x.shape[-1])  # static pads in a traced export
        top, bottom, left, right = sn.resolve_padding("same", k, s, h, w)
        return super().forward(F.pad(x, (left, right, top, bottom), value=float("-inf")))


def max_pool(node: sn.Pool) -> nn.MaxPool2d:
    """Windowed max; nn.MaxPool2d pads with -inf, as the spec says."""
    if node.padding == "same":
        return SamePadMaxPool2d(node.kernel, node.stride, 0)
    return nn.MaxPool2d(node.kernel, node.stride, node.padding)


# -- nodes ----------------------------------------------------------------------
class ChannelAttention(nn.Module):
    """DANet CAM: Y = s * softmax_rows(rowmax(E) - E) X + X, E = X X^T."""

    def __init__(self, node: sn.ChannelAttention):
        super().__init__()
        self.attn_scale = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = x.reshape(n, c, h * w)
        energy = torch.bmm(q, q.transpose(1, 2))
        energy = energy.amax(dim=-1, keepdim=True) - energy
        attn = torch.softmax(energy, dim=-1)
        return self.attn_scale * torch.bmm(attn, q).reshape(n, c, h, w) + x


class Downsample(nn.Module):
    def __init__(self, node: sn.Downsample):
        super().__init__()
        self.conv = conv(node.conv)
        self.bn = batch_norm(node.bn, maps=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class Block(nn.Module):
    """Basic (2 convs) or bottleneck (3 convs) residual block."""

    def __init__(self, node: sn.BasicBlock | sn.BottleneckBlock):
        super().__init__()
        self.depth = 3 if isinstance(node, sn.BottleneckBlock) else 2
        self.conv1, self.bn1 = conv(node.conv1), batch_norm(node.bn1, maps=True)
        self.conv2, self.bn2 = conv(node.conv2), batch_norm(node.bn2, maps=True)
        if isinstance(node, sn.BottleneckBlock):
            self.conv3, self.bn3 = conv(node.conv3), batch_norm(node.bn3, maps=True)
        self.has_downsample = node.downsample is not None
        if node.downsample is not None:
            self.downsample = Downsample(node.downsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.depth == 3:
            out = self.bn3(self.conv3(F.relu(out)))
        shortcut = self.downsample(x) if self.has_downsample else x
        return F.relu(out + shortcut)


class ResNet(nn.Module):
    """Stem, optional channel attention before layer k, layers, global average pool."""

    def __init__(self, node: sn.ResNet):
        super().__init__()
        self.conv1 = conv(node.stem.conv)
        self.bn1 = batch_norm(node.stem.bn, maps=True)
        self.maxpool = max_pool(node.stem.pool)
        order = []
        for k, stage in enumerate(node.stages, start=1):
            if stage.attention is not None:
                setattr(self, f"cam{k}", ChannelAttention(stage.attention))
                order.append(f"cam{k}")
            setattr(self, f"layer{k}", nn.Sequential(*(Block(b) for b in stage.blocks)))
            order.append(f"layer{k}")
        self.order = tuple(order)  # attribute names in call order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        for name in self.order:
            x = getattr(self, name)(x)
        return x.mean(dim=(2, 3))


class BNNeck(nn.Module):
    def __init__(self, node: sn.BNNeck):
        super().__init__()
        self.bn = batch_norm(node.bn, maps=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x)


class Classifier(nn.Module):
    """[hidden, bn, LeakyReLU], dropout, fc.

    ``dropout_on`` is the parity switch (MVDModel.set_dropout): off, train
    mode is deterministic and matches the oracle.
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
        self.p = node.dropout
        self.dropout_on = True
        self.fc = linear(node.fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.has_hidden:
            x = self.hidden(x)
        if self.has_norm:
            x = self.bn(x)
        if self.has_hidden:
            x = F.leaky_relu(x, self.negative_slope)
        if self.p > 0 and self.dropout_on:
            x = F.dropout(x, self.p, self.training)
        return self.fc(x)


class HeadMLP(nn.Module):
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name, relu in self.order:
            x = getattr(self, name)(x)
            if relu:
                x = F.relu(x)
        return x


class Branch(nn.Module):
    """Encoder + neck (the observation) + classifier, head and z classifier."""

    def __init__(self, node: sn.Branch):
        super().__init__()
        self.backbone = ResNet(node.backbone)
        self.has_neck = node.neck is not None
        if node.neck is not None:
            self.neck = BNNeck(node.neck)
        self.classifier = Classifier(node.classifier)
        self.head = HeadMLP(node.head)
        self.z_classifier = Classifier(node.z_classifier)

    def observe(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(global, feat): what the test feature needs."""
        g = self.backbone(x)
        return g, (self.neck(g) if self.has_neck else g)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        g, feat = self.observe(x)
        z = self.head(feat)
        return g, feat, self.classifier(feat), z, self.z_classifier(z)


# -- inputs ---------------------------------------------------------------------
def _constants(module: nn.Module, **channels: tuple[float, float, float]) -> None:
    """Per-channel constants as (1, 3, 1, 1) buffers that are not state."""
    for name, values in channels.items():
        value = torch.tensor(values, dtype=torch.float32).reshape(1, 3, 1, 1)
        module.register_buffer(name, value, persistent=False)


class Normalise(nn.Module):
    """uint8 NHWC -> normalised float32 NCHW (mirrors vdreid.spec.preprocess)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, spec: ModelSpec):
        super().__init__()
        _constants(self, mean=spec.input.mean, std=spec.input.std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float() / 255.0
        return (x - self.mean) / self.std


class Grey(nn.Module):
    """The spec's grey view of a normalised NCHW batch (mirrors vdreid.spec.to_grey)."""

    k: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, spec: ModelSpec):
        super().__init__()
        _constants(self, k=spec.grey.coefficients, mean=spec.input.mean, std=spec.input.std)
        self.pixel = spec.grey.space == "pixel"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pixel:
            y = ((x * self.std + self.mean) * self.k).sum(dim=1, keepdim=True)
            return (y - self.mean) / self.std
        g = (x * self.k).sum(dim=1, keepdim=True)
        return g.expand(-1, 3, -1, -1)


# -- the model --------------------------------------------------------------------
class MVDModel(nn.Module):
    """Every branch, called once per path in the spec's order (S twice, grey first).

    forward(x) returns a dict ``{path}.{global,feat,logits,z,z_logits}`` for
    every path (``spec.output_names()``), plus ``test_feature`` in eval mode.
    ``test_feature(x)`` runs only what the retrieval feature needs.
    Attributes named after the branches (``V``, ``I``, ``S``) hold the
    weights; ``normalise`` and ``grey`` hold the input constants (no state).
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        for b in spec.branches:
            setattr(self, b.name, Branch(b))
        self.normalise = Normalise(spec)
        self.grey = Grey(spec)
        self.routes = tuple((p.name, p.branch, p.view) for p in spec.paths)
        self.output_names = spec.output_names()
        self.feature_routes = tuple(
            r for name in spec.test_feature.paths for r in self.routes if r[0] == name
        )
        self.per_block = spec.test_feature.per_block
        self.array_ops = TorchOps()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        g = self.grey(x)
        out: tuple[torch.Tensor, ...] = ()
        for _, branch, view in self.routes:
            out = out + getattr(self, branch)(g if view == "grey" else x)
        named = dict(zip(self.output_names, out, strict=True))
        if not self.training:
            named["test_feature"] = self.compose(
                [named[f"{p}.feat"] for p, _, _ in self.feature_routes]
            )
        return named

    def test_feature(self, x: torch.Tensor) -> torch.Tensor:
        g = self.grey(x)
        feats = [
            getattr(self, branch).observe(g if view == "grey" else x)[1]
            for _, branch, view in self.feature_routes
        ]
        return self.compose(feats)

    def compose(self, blocks: list[torch.Tensor]) -> torch.Tensor:
        """The spec's retrieval feature (vdreid.losses.compose_feature), in float32."""
        return compose_feature(self.array_ops, [b.float() for b in blocks], self.per_block)

    def classifiers(self) -> list[Classifier]:
        return [m for m in self.modules() if isinstance(m, Classifier)]

    def set_dropout(self, enabled: bool) -> None:
        """Dropout off makes train mode deterministic (parity with the oracle)."""
        for m in self.classifiers():
            m.dropout_on = enabled


def build_model(spec: ModelSpec, device: torch.device | str = "cpu") -> MVDModel:
    """The module tree for ``spec`` on ``device`` with zero weights (batch-norm
    variances one); load canonical state next (names.set_state).

    Modules are created on the meta device (no memory, no torch init) and
    then given zeroed storage. ``device="meta"`` gives a model with names
    and shapes only (cheap for the big presets).
    """
    with torch.device("meta"):
        model = MVDModel(spec)
    check_layout(model, spec)
    device = torch.device(device)
    if device.type == "meta":
        return model
    model = model.to_empty(device=device)
    model.normalise = Normalise(spec).to(device)  # their constants were meta tensors
    model.grey = Grey(spec).to(device)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            tensor.fill_(1 if key.endswith("running_var") else 0)
    return model
