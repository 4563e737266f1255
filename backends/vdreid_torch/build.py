"""The spec interpreter: a ModelSpec becomes a plain, static nn.Module.

The spec is walked once, here, into ordinary submodules laid out so that
every module's attribute path is its canonical name (names.py maps the
batch-norm leaves); forward() runs those modules and never looks at the
spec again. Normalised float32 NCHW images go in; the grey view is made
on the device (mirroring vdreid.spec.to_grey) and every path of
``spec.paths`` runs in order, so S sees grey first, then x, as two calls
with their own batch statistics.

Weights are not drawn here: build() leaves parameters zero (batch-norm
variances one) and callers load ``vdreid.spec.init_state`` or a
checkpoint with names.set_state, so every backend starts identical.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vdreid.spec import (
    BasicBlock,
    BatchNorm,
    BottleneckBlock,
    Branch,
    ChannelAttention,
    Classifier,
    Conv,
    HeadMLP,
    Linear,
    ModelSpec,
    Pool,
    ResNet,
)
from vdreid.spec.model import FeatureRecipe, GreySpec, InputSpec
from vdreid_torch.names import check_layout

NORM_EPS = 1e-12  # L2 normalisation divides by max(norm, 1e-12), as the oracle


def conv(node: Conv) -> nn.Conv2d:
    return nn.Conv2d(
        node.in_channels,
        node.out_channels,
        node.kernel,
        stride=node.stride,
        padding=node.padding,
        bias=node.bias,
    )


def batch_norm(node: BatchNorm, dims: int) -> nn.Module:
    cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    bn = cls(node.channels, eps=node.eps, momentum=node.momentum)
    bn.bias.requires_grad_(node.shift_trainable)
    return bn


def linear(node: Linear) -> nn.Linear:
    return nn.Linear(node.in_features, node.out_features, bias=node.bias)


def pool(node: Pool) -> nn.Module:
    if node.kind == "max":  # nn.MaxPool2d pads with -inf, as the spec says
        return nn.MaxPool2d(node.kernel, node.stride, node.padding)
    return nn.AdaptiveAvgPool2d(1)


class ChannelAttentionModule(nn.Module):
    """DANet CAM: Y = s * softmax_rows(rowmax(E) - E) X + X, E = X X^T."""

    def __init__(self, node: ChannelAttention):
        super().__init__()
        self.attn_scale = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        flat = x.reshape(n, c, h * w)
        energy = torch.bmm(flat, flat.transpose(1, 2))
        energy = energy.amax(dim=-1, keepdim=True) - energy
        attn = torch.softmax(energy, dim=-1)
        return self.attn_scale * torch.bmm(attn, flat).reshape(n, c, h, w) + x


class Downsample(nn.Module):
    def __init__(self, conv_node: Conv, bn_node: BatchNorm):
        super().__init__()
        self.conv = conv(conv_node)
        self.bn = batch_norm(bn_node, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class ResidualBlock(nn.Module):
    """Basic (two convs) or bottleneck (three) block; children named as in the spec."""

    def __init__(self, node: BasicBlock | BottleneckBlock):
        super().__init__()
        self.depth = 3 if isinstance(node, BottleneckBlock) else 2
        for j in range(1, self.depth + 1):
            setattr(self, f"conv{j}", conv(getattr(node, f"conv{j}")))
            setattr(self, f"bn{j}", batch_norm(getattr(node, f"bn{j}"), 2))
        ds = node.downsample
        self.downsample = Downsample(ds.conv, ds.bn) if ds is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.depth == 3:
            y = self.bn3(self.conv3(F.relu(y)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(y + shortcut)


class Trunk(nn.Module):
    """ResNet: conv1 bn1 relu maxpool, [cam{k}] layer{k} for each stage, global pool."""

    def __init__(self, node: ResNet):
        super().__init__()
        self.conv1 = conv(node.stem.conv)
        self.bn1 = batch_norm(node.stem.bn, 2)
        self.maxpool = pool(node.stem.pool)
        self.stages: list[tuple[str | None, str]] = []
        for k, stage in enumerate(node.stages, start=1):
            cam = None
            if stage.attention is not None:
                cam = f"cam{k}"
                setattr(self, cam, ChannelAttentionModule(stage.attention))
            setattr(self, f"layer{k}", nn.Sequential(*(ResidualBlock(b) for b in stage.blocks)))
            self.stages.append((cam, f"layer{k}"))
        self.pool = pool(node.pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        for cam, layer in self.stages:
            if cam is not None:
                y = getattr(self, cam)(y)
            y = getattr(self, layer)(y)
        return self.pool(y).flatten(1)


class Neck(nn.Module):
    def __init__(self, node: BatchNorm):
        super().__init__()
        self.bn = batch_norm(node, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x)


class ClassifierModule(nn.Module):
    """[hidden, bn, LeakyReLU] -> dropout -> fc. ``dropout_on`` is the parity switch."""

    def __init__(self, node: Classifier):
        super().__init__()
        self.hidden = linear(node.hidden) if node.hidden is not None else None
        self.bn = batch_norm(node.norm, 1) if node.norm is not None else None
        self.negative_slope = node.negative_slope
        self.p = node.dropout
        self.dropout_on = True
        self.fc = linear(node.fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hidden is not None:
            x = self.hidden(x)
            if self.bn is not None:
                x = self.bn(x)
            x = F.leaky_relu(x, self.negative_slope)
        if self.p > 0 and self.dropout_on:
            x = F.dropout(x, self.p, self.training)
        return self.fc(x)


class Head(nn.Module):
    """fc1 bn1 relu ... fc{last}: the bottleneck head producing z."""

    def __init__(self, node: HeadMLP):
        super().__init__()
        self.count = len(node.linears)
        for j, lin in enumerate(node.linears, start=1):
            setattr(self, f"fc{j}", linear(lin))
            if j < self.count:
                setattr(self, f"bn{j}", batch_norm(node.norms[j - 1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for j in range(1, self.count):
            x = F.relu(getattr(self, f"bn{j}")(getattr(self, f"fc{j}")(x)))
        return getattr(self, f"fc{self.count}")(x)


class BranchModule(nn.Module):
    def __init__(self, node: Branch):
        super().__init__()
        self.backbone = Trunk(node.backbone)
        self.neck = Neck(node.neck.bn) if node.neck is not None else None
        self.classifier = ClassifierModule(node.classifier)
        self.head = Head(node.head)
        self.z_classifier = ClassifierModule(node.z_classifier)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.backbone(x)
        return pooled, (pooled if self.neck is None else self.neck(pooled))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled, feat = self.features(x)
        z = self.head(feat)
        return {
            "global": pooled,
            "feat": feat,
            "logits": self.classifier(feat),
            "z": z,
            "z_logits": self.z_classifier(z),
        }


class Views(nn.Module):
    """Device-side input handling: uint8 NHWC -> normalised NCHW, and the grey view."""

    def __init__(self, inp: InputSpec, grey: GreySpec):
        super().__init__()
        shape = (1, 3, 1, 1)
        self.register_buffer(
            "mean", torch.tensor(inp.mean, dtype=torch.float32).reshape(shape), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(inp.std, dtype=torch.float32).reshape(shape), persistent=False
        )
        self.register_buffer(
            "k",
            torch.tensor(grey.coefficients, dtype=torch.float32).reshape(shape),
            persistent=False,
        )
        self.pixel_space = grey.space == "pixel"

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> float32 (N, 3, H, W): (x / 255 - mean) / std."""
        x = images.permute(0, 3, 1, 2).float() / 255.0
        return (x - self.mean) / self.std

    def grey(self, x: torch.Tensor) -> torch.Tensor:
        """Mirror of vdreid.spec.to_grey on a normalised batch."""
        if self.pixel_space:
            y = ((x * self.std + self.mean) * self.k).sum(dim=1, keepdim=True)
            return (y - self.mean) / self.std
        return (x * self.k).sum(dim=1, keepdim=True).expand(-1, 3, -1, -1)


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(NORM_EPS)


class MVDModel(nn.Module):
    """All branches; forward runs every path of the spec on normalised images.

    Attributes named after the branches (``V``, ``I``, ``S``) hold the
    weights; ``views`` holds the input constants (no state).
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        for b in spec.branches:
            self.add_module(b.name, BranchModule(b))
        self.views = Views(spec.input, spec.grey)
        self.paths = tuple((p.name, p.branch, p.view) for p in spec.paths)
        self.recipe: FeatureRecipe = spec.test_feature
        self.needs_grey = any(view == "grey" for _, _, view in self.paths)

    def _inputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"x": x, "grey": self.views.grey(x)} if self.needs_grey else {"x": x}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every ``{path}.{name}`` output; in eval mode also ``test_feature``."""
        views = self._inputs(x)
        out: dict[str, torch.Tensor] = {}
        for path, branch, view in self.paths:
            for name, value in getattr(self, branch)(views[view]).items():
                out[f"{path}.{name}"] = value
        if not self.training:
            out["test_feature"] = self.compose([out[f"{p}.feat"] for p in self.recipe.paths])
        return out

    def test_feature(self, x: torch.Tensor) -> torch.Tensor:
        """Only what the test feature needs: backbone and neck of its paths."""
        views = self._inputs(x)
        by_path = {path: (branch, view) for path, branch, view in self.paths}
        feats = []
        for p in self.recipe.paths:
            branch, view = by_path[p]
            feats.append(getattr(self, branch).features(views[view])[1])
        return self.compose(feats)

    def compose(self, feats: list[torch.Tensor]) -> torch.Tensor:
        feats = [f.float() for f in feats]
        if self.recipe.normalise == "per_block":
            return torch.cat([l2_normalise(f) for f in feats], dim=1)
        return l2_normalise(torch.cat(feats, dim=1))

    def classifiers(self) -> list[ClassifierModule]:
        return [m for m in self.modules() if isinstance(m, ClassifierModule)]

    def set_dropout(self, enabled: bool) -> None:
        """Dropout off makes train mode deterministic (parity with the oracle)."""
        for m in self.classifiers():
            m.dropout_on = enabled


def build_model(spec: ModelSpec, device: torch.device | str = "cpu") -> MVDModel:
    """Interpret ``spec`` on ``device`` without drawing weights.

    Modules are created on the meta device (no memory, no torch init) and
    then given zeroed storage; batch-norm variances are set to one so that
    an unloaded model still computes finite values. ``device="meta"``
    gives a model with names and shapes only (cheap for the big presets).
    """
    with torch.device("meta"):
        model = MVDModel(spec)
    check_layout(model, spec)
    device = torch.device(device)
    if device.type == "meta":
        return model
    model = model.to_empty(device=device)
    model.views = Views(spec.input, spec.grey).to(device)  # its constants were meta tensors
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            tensor.fill_(1 if key.endswith("running_var") else 0)
    return model
