"""Named recipes: everything a preset name means, in one place.

A :class:`Recipe` holds the network (an MVDDesign, built into a ModelSpec
for the dataset's number of identities), the loss, the optimiser and the
training fields that differ from TrainConfig's defaults. The CLI's choices,
TrainConfig and every workflow read this table; docs/method.md and
docs/training.md compare the recipes side by side.

- ``official``: the authors' PyTorch code, bugs included. ResNet-50, last
  stride 1, channel attention before layers 2-4, frozen BNNeck shift,
  256x128, grey on the normalised input. Loss: 1 CE (label smoothing 0.1)
  + 1 RANK + 8 CML (naive Sinkhorn) + 2 VSD + 2 VCD, where VSD/VCD are the
  code's element-wise ``kl_div`` misuse, not a KL divergence. Its learning
  rates epoch by epoch (their scheduler is one step ahead: vdreid.optim).
- ``paper``: the paper's equations on the official network: the paper's
  grey conversion (BT.601 in pixel space), ``official``'s terms + 2 VML,
  true KL for VSD/VCD, numerically stable Sinkhorn; the schedule as
  written (warmup from 0.01 at epoch 0, x0.1 from epoch 210).
- ``msport``: the MindSpore model-zoo port's network: no channel attention,
  last stride 2, 288x144, MindSpore's ``pad_mode='same'`` padding (the odd
  pixel bottom/right), eps 1e-3 and momentum 0.997 (MindSpore's convention;
  0.003 in the spec's) on every bottleneck's bn3, trainable BNNeck shift,
  its 0.1440 blue grey, a per-block normalised feature concatenated V, Sx,
  I, Sg as its eval does; CE without smoothing + batch-hard triplet
  (margin 0.3), no distillation; the port's learning rates with a sane step
  schedule (its own multiplies by 0.1 every epoch from 15 to 27, a bug).
- ``tiny``: ResNet-18 at 1/8 width, 64x32, the official structure and
  terms, for tests and the demo; short schedule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from vdreid.errors import SpecError
from vdreid.losses.spec import (
    CMLTerm,
    CrossEntropyTerm,
    LossSpec,
    RankedListTerm,
    TripletTerm,
    VCDTerm,
    VMLTerm,
    VSDTerm,
)
from vdreid.optim import OptimConfig
from vdreid.spec.builders import BatchNormStyle, MVDDesign, mvd_model, with_input_size
from vdreid.spec.model import ModelSpec


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What one preset name means (module docstring)."""

    name: str
    design: MVDDesign
    loss: LossSpec
    optim: OptimConfig
    #: TrainConfig fields that differ from its defaults (``optim`` aside)
    train: Mapping[str, Any]

    def model_spec(
        self, num_classes: int, *, input_size: tuple[int, int] | None = None
    ) -> ModelSpec:
        """The network for ``num_classes`` identities; ``input_size`` (H, W)
        replaces the recipe's input size (no parameter shape depends on it)."""
        spec = mvd_model(self.name, num_classes, self.design)
        return spec if input_size is None else with_input_size(spec, input_size)

    def train_fields(self) -> dict[str, Any]:
        """The TrainConfig fields this recipe sets, optimiser included: what a
        run starts from before the user's file and overrides."""
        return {**self.train, "optim": self.optim.model_dump()}


def _recipe(
    name: str, design: MVDDesign, loss: LossSpec, optim: OptimConfig, **train: Any
) -> Recipe:
    return Recipe(name, design, loss, optim, MappingProxyType(train))


OFFICIAL_NETWORK = MVDDesign(depth=50, last_stride=1, cam_positions=(2, 3, 4))
OFFICIAL_LOSS = LossSpec(
    ce=CrossEntropyTerm(),
    rank=RankedListTerm(),
    cml=CMLTerm(),
    vsd=VSDTerm(),
    vcd=VCDTerm(),
)
#: the port's _bn_last: nn.BatchNorm2d(eps=1e-3, momentum=0.997), MindSpore's
#: momentum weighting the old running value (0.003 in the spec's convention)
MSPORT_LAST_BN = BatchNormStyle(eps=1e-3, momentum=0.003)
#: SYSU-MM01's batch in the authors' code: 16 identities x 4 images per modality
OFFICIAL_TRAINING = {"epochs": 600, "ids_per_batch": 16, "instances": 4}

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        _recipe(
            "official",
            OFFICIAL_NETWORK,
            OFFICIAL_LOSS,
            OptimConfig(schedule_offset=1),  # their scheduler is one step ahead (vdreid.optim)
            **OFFICIAL_TRAINING,
        ),
        _recipe(
            "paper",
            dataclasses.replace(OFFICIAL_NETWORK, grey="paper"),
            LossSpec(
                ce=CrossEntropyTerm(),
                rank=RankedListTerm(),
                cml=CMLTerm(sinkhorn="stable"),
                vsd=VSDTerm(form="kl"),
                vcd=VCDTerm(form="kl"),
                vml=VMLTerm(),
            ),
            OptimConfig(),
            **OFFICIAL_TRAINING,
        ),
        _recipe(
            "msport",
            MVDDesign(
                depth=50,
                last_stride=2,
                padding="same",
                last_bn=MSPORT_LAST_BN,
                size=(288, 144),
                grey="msport",
                feature="msport",
                neck_shift_trainable=True,
            ),
            LossSpec(ce=CrossEntropyTerm(label_smoothing=0.0), triplet=TripletTerm()),
            OptimConfig(lr=3.5e-4, head_lr=3.5e-3, milestones=(40, 70), warmup_epochs=10),
            epochs=80,
            ids_per_batch=8,
            instances=4,
            augment={"flip": 0.5, "erasing": 0.5, "grey": 0.5},
        ),
        # Tuned on the synthetic SYSU-like set (vdreid data synth, 380 ids) so
        # the demo learns in ~3 CPU minutes: at the network's 64x32 the
        # clothes' patterns blur away (R1 ~20%), at 128x64 R1 reaches ~67%;
        # channel augmentation makes colour an unreliable cue, pushing
        # towards shape. A 64-d feat and 16-d z: a CPU step takes milliseconds.
        _recipe(
            "tiny",
            MVDDesign(
                depth=18,
                width=1 / 8,
                last_stride=1,
                cam_positions=(2, 3, 4),
                size=(64, 32),
                head_hidden=(32, 16),
                z_width=16,
                z_hidden=16,
            ),
            OFFICIAL_LOSS,
            OptimConfig(lr=3.5e-3, warmup_epochs=1, warmup_factor=0.1, milestones=(24,)),
            input_size=(128, 64),
            epochs=32,
            ids_per_batch=8,
            instances=2,
            log_interval=5,
            checkpoint_every=8,
            augment={"channel": 0.5},
        ),
    )
}


#: The names as a type, for the CLI's choices (held equal to RECIPES by a test).
PresetName = Literal["official", "paper", "msport", "tiny"]
#: The preset a run (and `vdreid model summary`) uses when none is named.
DEFAULT_PRESET: PresetName = "tiny"


def recipe(name: str) -> Recipe:
    """The recipe called ``name``; SpecError listing the names otherwise."""
    if not isinstance(name, str) or name not in RECIPES:
        raise SpecError(f"unknown preset {name!r}; choose one of: {', '.join(RECIPES)}")
    return RECIPES[name]
