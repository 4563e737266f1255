"""Graph nodes: what one piece of the network IS, as frozen pydantic models.

Nodes hold shapes and hyper-parameters only, never arrays. A backend's
interpreter (build.py) and the numpy oracle (vdreid.reference) walk the
same nodes; vdreid.spec.params names every tensor they hold.

Conventions shared by all nodes:
- convolution weights are OIHW, linear weights (out, in);
- batch norm follows the torch momentum convention
  ``running = (1 - momentum) * running + momentum * batch``;
- padding (convolution, max pool) is an explicit symmetric count, or
  ``"same"``: TensorFlow's rule, which MindSpore's ``pad_mode='same'`` and
  ONNX's ``SAME_UPPER`` follow, resolved from the size of the map it pads
  (:func:`same_padding`; the odd pixel goes bottom/right);
- ``Init`` says how the core draws a tensor's initial values.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

#: An explicit symmetric padding, or "same" (resolved from the map size: same_padding)
Padding = Annotated[int, Field(ge=0)] | Literal["same"]


class Node(BaseModel):
    """Base of every spec node: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Init(Node):
    """How an initial tensor is drawn (see vdreid.spec.initial_state).

    ``kaiming_normal`` is He-normal with the ReLU gain: std = sqrt(2 / fan),
    fan = fan_in or fan_out of an OIHW / (out, in) weight.
    """

    rule: Literal["zeros", "ones", "normal", "kaiming_normal"]
    mean: float = 0.0
    std: float = 0.0
    mode: Literal["fan_in", "fan_out"] = "fan_out"

    def describe(self) -> str:
        if self.rule == "normal":
            return f"normal({self.mean:g}, {self.std:g})"
        if self.rule == "kaiming_normal":
            return f"kaiming_normal({self.mode}, relu)"
        return self.rule


ZEROS = Init(rule="zeros")
ONES = Init(rule="ones")
KAIMING_FAN_OUT = Init(rule="kaiming_normal", mode="fan_out")


def normal(mean: float, std: float) -> Init:
    return Init(rule="normal", mean=mean, std=std)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one axis under the "same" rule: the output
    has ceil(size / stride) positions and the odd pixel of an odd total goes
    after (bottom or right), as in TensorFlow, MindSpore and ONNX SAME_UPPER."""
    out = (size + stride - 1) // stride  # ceil(size / stride) on non-negative ints only
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def resolve_padding(
    padding: int | str, kernel: int, stride: int, height: int, width: int
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a window op on an ``height x width`` map."""
    if padding == "same":
        return (*same_padding(height, kernel, stride), *same_padding(width, kernel, stride))
    p = int(padding)
    return p, p, p, p


class Conv(Node):
    """2-D convolution, square kernel, no dilation or groups."""

    in_channels: int = Field(gt=0)
    out_channels: int = Field(gt=0)
    kernel: int = Field(gt=0)
    stride: int = Field(default=1, gt=0)
    padding: Padding = 0
    bias: bool = False
    init: Init = KAIMING_FAN_OUT


class BatchNorm(Node):
    """Batch norm over channels (2-D maps) or features (vectors).

    ``shift_trainable=False`` freezes the shift, as the official BNNeck does.
    """

    channels: int = Field(gt=0)
    eps: float = 1e-5
    momentum: float = 0.1
    scale_init: Init = ONES
    shift_trainable: bool = True


class Linear(Node):
    """Fully connected layer; the bias (if any) starts at zero."""

    in_features: int = Field(gt=0)
    out_features: int = Field(gt=0)
    bias: bool = True
    init: Init = KAIMING_FAN_OUT


class Pool(Node):
    """``max``: a windowed max (padding counts as -inf); ``global_avg``: mean over H, W."""

    kind: Literal["max", "global_avg"]
    kernel: int = 1
    stride: int = 1
    padding: Padding = 0


class ChannelAttention(Node):
    """DANet channel attention (CAM) on X in R^{C x N}, N = H*W:
    E = X X^T, A = softmax_rows(rowmax(E) - E), Y = s * (A X) + X,
    with one learnable scalar s (the tensor ``attn_scale``, shape (1,))."""

    channels: int = Field(gt=0)
    init: Init = ZEROS


class Downsample(Node):
    """The projection shortcut of a residual block: 1x1 conv + batch norm."""

    conv: Conv
    bn: BatchNorm


class BasicBlock(Node):
    """ResNet-18/34 block: conv3x3-bn-relu-conv3x3-bn, + shortcut, relu."""

    kind: Literal["basic"] = "basic"
    conv1: Conv
    bn1: BatchNorm
    conv2: Conv
    bn2: BatchNorm
    downsample: Downsample | None = None

    @property
    def out_channels(self) -> int:
        return self.conv2.out_channels


class BottleneckBlock(Node):
    """ResNet-50/101 block (v1.5: the stride sits on the 3x3 conv)."""

    kind: Literal["bottleneck"] = "bottleneck"
    conv1: Conv
    bn1: BatchNorm
    conv2: Conv
    bn2: BatchNorm
    conv3: Conv
    bn3: BatchNorm
    downsample: Downsample | None = None

    @property
    def out_channels(self) -> int:
        return self.conv3.out_channels


Block = Annotated[BasicBlock | BottleneckBlock, Field(discriminator="kind")]


class Stage(Node):
    """One ResNet layer: optional channel attention on its input, then blocks."""

    attention: ChannelAttention | None = None
    blocks: tuple[Block, ...]


class Stem(Node):
    """conv7x7/2 - bn - relu - maxpool3x3/2."""

    conv: Conv
    bn: BatchNorm
    pool: Pool


class ResNet(Node):
    """The encoder trunk; its output after ``pool`` is the ``global`` feature.

    depth, width and last_stride record how the builder made it; the
    interpreter reads only the child nodes.
    """

    depth: int
    width: float
    last_stride: int
    stem: Stem
    stages: tuple[Stage, ...]
    pool: Pool

    @property
    def out_features(self) -> int:
        return self.stages[-1].blocks[-1].out_channels


class BNNeck(Node):
    """Batch norm between the pooled feature and the classifier: ``feat``."""

    bn: BatchNorm


class HeadMLP(Node):
    """The bottleneck head producing ``z``: Linear (BN ReLU Linear)*.

    ``norms[i]`` and a ReLU follow ``linears[i]`` for every linear but the last.
    """

    linears: tuple[Linear, ...] = Field(min_length=1)
    norms: tuple[BatchNorm, ...]

    @property
    def in_features(self) -> int:
        return self.linears[0].in_features

    @property
    def out_features(self) -> int:
        return self.linears[-1].out_features


class Classifier(Node):
    """ID classifier: [hidden Linear, BN, LeakyReLU(negative_slope)], Dropout(dropout), fc.

    Without ``hidden`` it is Dropout + one Linear.
    """

    hidden: Linear | None = None
    norm: BatchNorm | None = None
    negative_slope: float = 0.1
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    fc: Linear

    @property
    def in_features(self) -> int:
        return (self.hidden or self.fc).in_features

    @property
    def num_classes(self) -> int:
        return self.fc.out_features


class Branch(Node):
    """Encoder + neck + observation classifier + head + classifier on z.

    Outputs per call: global (backbone), feat (neck, or global without
    neck), logits (classifier on feat), z (head on feat), z_logits.
    """

    name: str
    backbone: ResNet
    neck: BNNeck | None
    classifier: Classifier
    head: HeadMLP
    z_classifier: Classifier

    @property
    def feat_dim(self) -> int:
        return self.backbone.out_features
