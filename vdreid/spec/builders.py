"""Builders: small functions that assemble nodes into networks.

Init rules follow docs/method.md ("Initial weights"): ResNet convs
kaiming-normal fan_out, BN scale 1 shift 0; head Linears kaiming-normal
fan_out, head BN scale N(1, 0.02); classifier Linears N(0, 0.001);
classifier BN and BNNeck scale 1; channel attention 0; every bias 0.

:func:`mvd_model` builds a whole network from an :class:`MVDDesign`, the
handful of choices that tell the presets (vdreid.presets) apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from itertools import pairwise

from vdreid.errors import SpecError
from vdreid.spec.model import PATH_NAMES, FeatureRecipe, GreySpec, InputSpec, ModelSpec, PathSpec
from vdreid.spec.nodes import (
    KAIMING_FAN_OUT,
    BasicBlock,
    BatchNorm,
    BNNeck,
    BottleneckBlock,
    Branch,
    ChannelAttention,
    Classifier,
    Conv,
    Downsample,
    HeadMLP,
    Linear,
    Pool,
    ResNet,
    Stage,
    Stem,
    normal,
)

#: depth -> (block kind, blocks per stage)
RESNET_LAYOUTS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}
EXPANSION = {"basic": 1, "bottleneck": 4}
CLASSIFIER_INIT = normal(0.0, 0.001)
HEAD_BN_SCALE_INIT = normal(1.0, 0.02)


#: how a trunk pads its windows: torchvision's explicit symmetric padding
#: (k // 2), or MindSpore's pad_mode='same' (resolved from the map size, the
#: odd pixel bottom/right: docs/method.md, "Padding")
PADDING_STYLES = ("explicit", "same")


@dataclasses.dataclass(frozen=True)
class BatchNormStyle:
    """eps and momentum (torch convention) of a group of batch norms."""

    eps: float = 1e-5
    momentum: float = 0.1

    def __call__(self, channels: int) -> BatchNorm:
        return BatchNorm(channels=channels, eps=self.eps, momentum=self.momentum)


DEFAULT_BN = BatchNormStyle()


def _pad(kernel: int, style: str) -> int | str:
    return "same" if style == "same" else kernel // 2


def _block(kind: str, cin: int, planes: int, stride: int, padding: str, last_bn: BatchNormStyle):
    def conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> Conv:
        return Conv(
            in_channels=c_in,
            out_channels=c_out,
            kernel=kernel,
            stride=stride,
            padding=_pad(kernel, padding),
        )

    out = planes * EXPANSION[kind]
    bn = DEFAULT_BN
    down = None
    if stride != 1 or cin != out:
        down = Downsample(conv=conv(cin, out, 1, stride), bn=bn(out))
    if kind == "basic":
        return BasicBlock(
            conv1=conv(cin, planes, 3, stride),
            bn1=bn(planes),
            conv2=conv(planes, planes, 3),
            bn2=last_bn(planes),
            downsample=down,
        )
    return BottleneckBlock(
        conv1=conv(cin, planes, 1),
        bn1=bn(planes),
        conv2=conv(planes, planes, 3, stride),
        bn2=bn(planes),
        conv3=conv(planes, out, 1),
        bn3=last_bn(out),
        downsample=down,
    )


def resnet(
    depth: int = 50,
    *,
    width: float = 1.0,
    last_stride: int = 1,
    cam_positions: Sequence[int] = (),
    in_channels: int = 3,
    padding: str = "explicit",
    last_bn: BatchNormStyle = DEFAULT_BN,
) -> ResNet:
    """A torchvision-layout ResNet trunk with global average pooling.

    width scales every channel count (64 * width at the stem);
    cam_positions k in 1..4 put channel attention on the input of layer k;
    padding is torchvision's ``"explicit"`` or MindSpore's ``"same"``;
    last_bn sets eps and momentum of each block's last batch norm (bn3 of a
    bottleneck, bn2 of a basic block), where the MindSpore port differs.
    """
    if depth not in RESNET_LAYOUTS:
        raise SpecError(
            f"resnet depth {depth} is not supported; use one of {sorted(RESNET_LAYOUTS)}"
        )
    base = round(64 * width)
    if base < 1:
        raise SpecError(f"resnet width {width} leaves {base} stem channels; use width >= 1/64")
    if last_stride not in (1, 2):
        raise SpecError(f"last_stride must be 1 or 2, got {last_stride}")
    if padding not in PADDING_STYLES:
        raise SpecError(f"padding {padding!r} is not a padding style; use one of {PADDING_STYLES}")
    bad = [k for k in cam_positions if k not in (1, 2, 3, 4)]
    if bad:
        raise SpecError(f"cam_positions {list(cam_positions)} has {bad}; positions are stages 1..4")
    kind, counts = RESNET_LAYOUTS[depth]
    stem = Stem(
        conv=Conv(
            in_channels=in_channels,
            out_channels=base,
            kernel=7,
            stride=2,
            padding=_pad(7, padding),
        ),
        bn=BatchNorm(channels=base),
        pool=Pool(kind="max", kernel=3, stride=2, padding=_pad(3, padding)),
    )
    stages, cin = [], base
    for k, count in enumerate(counts, start=1):
        planes = base * 2 ** (k - 1)
        stride = 1 if k == 1 else (last_stride if k == 4 else 2)
        attention = ChannelAttention(channels=cin) if k in cam_positions else None
        blocks = []
        for i in range(count):
            blocks.append(_block(kind, cin, planes, stride if i == 0 else 1, padding, last_bn))
            cin = planes * EXPANSION[kind]
        stages.append(Stage(attention=attention, blocks=tuple(blocks)))
    return ResNet(
        depth=depth,
        width=width,
        last_stride=last_stride,
        stem=stem,
        stages=tuple(stages),
        pool=Pool(kind="global_avg"),
    )


def bnneck(channels: int, *, shift_trainable: bool) -> BNNeck:
    return BNNeck(bn=BatchNorm(channels=channels, shift_trainable=shift_trainable))


def head_mlp(in_features: int, hidden: Sequence[int], out_features: int) -> HeadMLP:
    """Linear(in, h1) BN ReLU ... Linear(h_last, out): kaiming fan_out, BN scale N(1, 0.02)."""
    dims = [in_features, *hidden, out_features]
    linears = tuple(
        Linear(in_features=a, out_features=b, init=KAIMING_FAN_OUT) for a, b in pairwise(dims)
    )
    norms = tuple(BatchNorm(channels=h, scale_init=HEAD_BN_SCALE_INIT) for h in hidden)
    return HeadMLP(linears=linears, norms=norms)


def classifier(
    in_features: int, num_classes: int, *, hidden: int | None = None, dropout: float = 0.0
) -> Classifier:
    """[Linear(in, hidden) BN LeakyReLU(0.1)] Dropout Linear(., C); Linears N(0, 0.001)."""
    if hidden is None:
        return Classifier(
            dropout=dropout,
            fc=Linear(in_features=in_features, out_features=num_classes, init=CLASSIFIER_INIT),
        )
    return Classifier(
        hidden=Linear(in_features=in_features, out_features=hidden, init=CLASSIFIER_INIT),
        norm=BatchNorm(channels=hidden),
        dropout=dropout,
        fc=Linear(in_features=hidden, out_features=num_classes, init=CLASSIFIER_INIT),
    )


def mvd_branch(
    name: str,
    backbone: ResNet,
    num_classes: int,
    *,
    neck_shift_trainable: bool,
    head_hidden: Sequence[int],
    z_width: int,
    z_hidden: int,
    z_dropout: float,
) -> Branch:
    """One MVD branch: backbone, BNNeck, classifier on feat, head on feat, classifier on z."""
    feat = backbone.out_features
    return Branch(
        name=name,
        backbone=backbone,
        neck=bnneck(feat, shift_trainable=neck_shift_trainable),
        classifier=classifier(feat, num_classes),
        head=head_mlp(feat, head_hidden, z_width),
        z_classifier=classifier(z_width, num_classes, hidden=z_hidden, dropout=z_dropout),
    )


#: (branch, view) of each path of PATH_NAMES: V on x, I on grey, S on grey then
#: S on x (two calls: batch-norm statistics per call)
MVD_ROUTES = (("V", "x"), ("I", "grey"), ("S", "grey"), ("S", "x"))
BRANCH_NAMES = ("V", "I", "S")


def mvd_paths() -> tuple[PathSpec, ...]:
    """The four paths, in call order (PATH_NAMES)."""
    return tuple(
        PathSpec(name=name, branch=branch, view=view)
        for name, (branch, view) in zip(PATH_NAMES, MVD_ROUTES, strict=True)
    )


GREY_VARIANTS = {
    "official": GreySpec(
        variant="official", coefficients=(0.2989, 0.5870, 0.1140), space="normalised"
    ),
    "msport": GreySpec(variant="msport", coefficients=(0.2989, 0.5870, 0.1440), space="normalised"),
    "paper": GreySpec(variant="paper", coefficients=(0.299, 0.587, 0.114), space="pixel"),
}

TEST_FEATURE_RECIPES = {
    "official": FeatureRecipe(
        recipe="official", paths=("I", "Sg", "V", "Sx"), normalise="whole", distance="euclidean"
    ),
    # the port's eval (src/evalfunc.py, test()) concatenates V, Sx, I, Sg
    "msport": FeatureRecipe(
        recipe="msport",
        paths=("V", "Sx", "I", "Sg"),
        normalise="per_block",
        distance="inner_product",
    ),
}


def grey(variant: str) -> GreySpec:
    if variant not in GREY_VARIANTS:
        raise SpecError(f"unknown grey variant {variant!r}; use one of {sorted(GREY_VARIANTS)}")
    return GREY_VARIANTS[variant]


def feature_recipe(recipe: str) -> FeatureRecipe:
    if recipe not in TEST_FEATURE_RECIPES:
        raise SpecError(
            f"unknown test-feature recipe {recipe!r}; use one of {sorted(TEST_FEATURE_RECIPES)}"
        )
    return TEST_FEATURE_RECIPES[recipe]


#: Smallest input side a network accepts: the stem and three strided stages halve it 5 times.
MIN_INPUT_SIDE = 32


@dataclasses.dataclass(frozen=True)
class MVDDesign:
    """The choices that tell one MVD network from another (the presets' table
    in docs/method.md): the backbone of every branch (depth, width, last
    stride, attention, padding style, eps/momentum of each block's last batch
    norm), the input size (H, W), the grey view, the test-feature recipe, the BNNeck shift and the widths
    of the head and of the classifier on z."""

    depth: int
    width: float = 1.0
    last_stride: int = 1
    cam_positions: tuple[int, ...] = ()
    padding: str = "explicit"
    last_bn: BatchNormStyle = DEFAULT_BN
    size: tuple[int, int] = (256, 128)
    grey: str = "official"
    feature: str = "official"
    neck_shift_trainable: bool = False
    head_hidden: tuple[int, ...] = (1000, 500)
    z_width: int = 512
    z_hidden: int = 256
    z_dropout: float = 0.5


def mvd_model(preset: str, num_classes: int, design: MVDDesign) -> ModelSpec:
    """Three branches (V, I, S) of ``design``'s backbone, the four paths, the
    input, grey view and test feature, for ``num_classes`` identities."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise SpecError(f"num_classes must be a positive integer, got {num_classes!r}")
    branches = tuple(
        mvd_branch(
            name,
            resnet(
                design.depth,
                width=design.width,
                last_stride=design.last_stride,
                cam_positions=design.cam_positions,
                padding=design.padding,
                last_bn=design.last_bn,
            ),
            num_classes,
            neck_shift_trainable=design.neck_shift_trainable,
            head_hidden=design.head_hidden,
            z_width=design.z_width,
            z_hidden=design.z_hidden,
            z_dropout=design.z_dropout,
        )
        for name in BRANCH_NAMES
    )
    return ModelSpec(
        preset=preset,
        num_classes=num_classes,
        input=InputSpec(height=design.size[0], width=design.size[1]),
        grey=grey(design.grey),
        branches=branches,
        paths=mvd_paths(),
        test_feature=feature_recipe(design.feature),
    )


def with_input_size(spec: ModelSpec, size: tuple[int, int]) -> ModelSpec:
    """``spec`` at input size (H, W): the network ends in global pooling, so no
    parameter shape depends on it."""
    height, width = (int(v) for v in size)
    if min(height, width) < MIN_INPUT_SIDE:
        raise SpecError(
            f"input size {height}x{width} is too small: the ResNet downsamples by up to 32, "
            f"so both sides must be at least {MIN_INPUT_SIDE} pixels (for example 128x64)"
        )
    resized = InputSpec.model_validate(
        {**spec.input.model_dump(), "height": height, "width": width}
    )
    return spec.model_copy(update={"input": resized})
