"""Named model specs. docs/method.md compares them side by side.

- official: the authors' PyTorch code (ResNet-50, last stride 1, CAM before
  layers 2-4, frozen BNNeck shift, 256x128, grey on normalised input).
- paper: the official network with the paper's grey conversion (BT.601 in
  pixel space); the paper's loss equations live in the loss presets.
- msport: the MindSpore model-zoo port (no CAM, last stride 2, 288x144,
  trainable BNNeck shift, its 0.1440 blue grey, per-block normalised feature).
- tiny: ResNet-18 at 1/8 width, 64x32, same structure, for tests and demos.
"""

from __future__ import annotations

from collections.abc import Callable

from vdreid.errors import SpecError
from vdreid.spec.builders import feature_recipe, grey, mvd_branch, mvd_paths, resnet
from vdreid.spec.model import InputSpec, ModelSpec
from vdreid.spec.nodes import ResNet

BRANCH_NAMES = ("V", "I", "S")
#: Smallest input side a preset accepts: the stem and three strided stages halve it 5 times.
MIN_INPUT_SIDE = 32


def _mvd(
    preset: str,
    num_classes: int,
    *,
    backbone: Callable[[], ResNet],
    size: tuple[int, int],
    grey_variant: str,
    recipe: str,
    neck_shift_trainable: bool,
    head_hidden: tuple[int, ...],
    z_width: int,
    z_hidden: int,
    z_dropout: float = 0.5,
) -> ModelSpec:
    if not isinstance(num_classes, int) or num_classes < 1:
        raise SpecError(f"num_classes must be a positive integer, got {num_classes!r}")
    branches = tuple(
        mvd_branch(
            name,
            backbone(),
            num_classes,
            neck_shift_trainable=neck_shift_trainable,
            head_hidden=head_hidden,
            z_width=z_width,
            z_hidden=z_hidden,
            z_dropout=z_dropout,
        )
        for name in BRANCH_NAMES
    )
    return ModelSpec(
        preset=preset,
        num_classes=num_classes,
        input=InputSpec(height=size[0], width=size[1]),
        grey=grey(grey_variant),
        branches=branches,
        paths=mvd_paths(),
        test_feature=feature_recipe(recipe),
    )


def official(num_classes: int) -> ModelSpec:
    """z = Linear(500, 2 * z_dim) with z_dim 256, used whole (no sampling)."""
    return _mvd(
        "official",
        num_classes,
        backbone=lambda: resnet(50, last_stride=1, cam_positions=(2, 3, 4)),
        size=(256, 128),
        grey_variant="official",
        recipe="official",
        neck_shift_trainable=False,
        head_hidden=(1000, 500),
        z_width=512,
        z_hidden=256,
    )


def paper(num_classes: int) -> ModelSpec:
    return _mvd(
        "paper",
        num_classes,
        backbone=lambda: resnet(50, last_stride=1, cam_positions=(2, 3, 4)),
        size=(256, 128),
        grey_variant="paper",
        recipe="official",
        neck_shift_trainable=False,
        head_hidden=(1000, 500),
        z_width=512,
        z_hidden=256,
    )


def msport(num_classes: int) -> ModelSpec:
    """z_dim 512 and out = z_dim, hence the same head shapes as official."""
    return _mvd(
        "msport",
        num_classes,
        backbone=lambda: resnet(50, last_stride=2, cam_positions=()),
        size=(288, 144),
        grey_variant="msport",
        recipe="msport",
        neck_shift_trainable=True,
        head_hidden=(1000, 500),
        z_width=512,
        z_hidden=256,
    )


def tiny(num_classes: int) -> ModelSpec:
    """64-d feat, 16-d z: a CPU train step on 16 images takes milliseconds."""
    return _mvd(
        "tiny",
        num_classes,
        backbone=lambda: resnet(18, width=1 / 8, last_stride=1, cam_positions=(2, 3, 4)),
        size=(64, 32),
        grey_variant="official",
        recipe="official",
        neck_shift_trainable=False,
        head_hidden=(32, 16),
        z_width=16,
        z_hidden=16,
    )


PRESETS: dict[str, Callable[[int], ModelSpec]] = {
    "official": official,
    "paper": paper,
    "msport": msport,
    "tiny": tiny,
}


def get_preset(
    name: str, num_classes: int, *, input_size: tuple[int, int] | None = None
) -> ModelSpec:
    """The named preset's ModelSpec for ``num_classes`` identities.

    ``input_size`` (H, W) replaces the preset's input size: the network ends
    in global pooling, so no parameter shape depends on it.
    """
    if name not in PRESETS:
        raise SpecError(f"unknown model preset {name!r}; choose one of: {', '.join(PRESETS)}")
    spec = PRESETS[name](num_classes)
    if input_size is None:
        return spec
    height, width = (int(v) for v in input_size)
    if min(height, width) < MIN_INPUT_SIDE:
        raise SpecError(
            f"input size {height}x{width} is too small: the ResNet downsamples by up to 32, "
            f"so both sides must be at least {MIN_INPUT_SIDE} pixels (for example 128x64)"
        )
    resized = InputSpec.model_validate(
        {**spec.input.model_dump(), "height": height, "width": width}
    )
    return spec.model_copy(update={"input": resized})
