"""Optimiser settings, the learning-rate schedule and the optimiser's
checkpoint layout, written once.

Every backend builds Adam with torch-style L2 weight decay (the decay term
is added to the gradient before the moment updates, not decoupled as in
AdamW) and asks :func:`lr_at` for each parameter group's learning rate at
the start of every epoch, and reseeds its own generators (dropout) from
:func:`epoch_seed`.

Schedule: the authors' WarmupMultiStepLR, a factor of the base rate at
scheduler index ``i``: linear warmup from ``warmup_factor`` to 1 over
``warmup_epochs`` indices, times ``gamma`` for each milestone reached:

    warmup(i) = warmup_factor + (1 - warmup_factor) * i / warmup_epochs   (i < warmup_epochs)
              = 1                                                         (otherwise)
    factor(i) = warmup(i) * gamma ** (number of milestones <= i)

Epoch ``e`` (0-based) trains at index ``i = e + schedule_offset``. The
authors' code steps its scheduler once when it builds it and again at the
top of every epoch, so their epoch e trains at index e + 1: the
``official`` recipe sets ``schedule_offset = 1`` (epoch 0 at 2.6e-4 x 0.109
= 2.834e-5, the drop at epoch 209); the other recipes start at index 0.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vdreid.checkpoint import NAMESPACE_SEP, check_state
from vdreid.errors import CheckpointError, ConfigError

ParamGroup = Literal["backbone", "head"]
#: the parameter groups, in the order trainers hold them
GROUPS: tuple[ParamGroup, ...] = ("backbone", "head")
#: the optimiser's checkpoint namespace, the same on every backend: Adam's
#: moments of each trainable tensor (optim_keys) and the step count (``optim/step``)
OPTIM = "optim"


class OptimConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Literal["adam"] = "adam"
    lr: float = Field(2.6e-4, gt=0, description="learning rate of the backbones")
    head_lr: float | None = Field(
        None, gt=0, description="learning rate of everything outside the backbones; None = lr"
    )
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(5e-4, ge=0, description="L2 added to the gradient (torch Adam)")
    warmup_epochs: int = Field(10, ge=0)
    warmup_factor: float = Field(0.01, gt=0, le=1)
    milestones: tuple[int, ...] = (210,)
    gamma: float = Field(0.1, gt=0)
    schedule_offset: int = Field(
        0,
        ge=0,
        description="epoch e trains at schedule index e + schedule_offset (official: 1, as the "
        "authors' code, whose scheduler steps when built and before every epoch)",
    )

    @model_validator(mode="after")
    def _sorted_milestones(self) -> OptimConfig:
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"milestones must be increasing, got {list(self.milestones)}")
        return self


def param_group(name: str) -> ParamGroup:
    """Backbone parameters are those under a branch's ``backbone``."""
    return "backbone" if ".backbone." in name else "head"


def lr_factor(cfg: OptimConfig, epoch: int) -> float:
    """The factor of the base learning rates while epoch ``epoch`` trains (module docstring)."""
    if epoch < 0:
        raise ConfigError(f"epoch must be >= 0, got {epoch}")
    index = epoch + cfg.schedule_offset
    warmup = 1.0
    if index < cfg.warmup_epochs:
        warmup = cfg.warmup_factor + (1.0 - cfg.warmup_factor) * index / cfg.warmup_epochs
    return warmup * cfg.gamma ** bisect.bisect_right(cfg.milestones, index)


def lr_at(cfg: OptimConfig, epoch: int, group: ParamGroup) -> float:
    base = cfg.lr if group == "backbone" or cfg.head_lr is None else cfg.head_lr
    return base * lr_factor(cfg, epoch)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The 63-bit seed a trainer reseeds its own generators (dropout) with in
    ``set_epoch``: a function of (seed, epoch, rank) only, so a resumed run
    draws what an uninterrupted one would."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, np.uint64)[0]) >> 1


def optim_keys(name: str) -> tuple[str, str]:
    """Checkpoint keys of Adam's first and second moments of tensor ``name``."""
    return f"{OPTIM}{NAMESPACE_SEP}m/{name}", f"{OPTIM}{NAMESPACE_SEP}v/{name}"


def optimizer_step(optim: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Check an ``optim/`` namespace (namespace_state) against the trainable
    tensors' ``shapes`` -- Adam's ``m/<name>`` and ``v/<name>`` for each, and
    ``step`` -- and return the step count. Every backend stores this layout."""
    expected: dict[str, tuple[int, ...]] = {"step": ()}
    for name, shape in shapes.items():
        expected[f"m/{name}"] = expected[f"v/{name}"] = tuple(shape)
    check_state(expected, optim, source="the optimiser state (optim/...)")
    step = np.asarray(optim["step"])
    if not np.issubdtype(step.dtype, np.integer) or step.ndim != 0 or int(step) < 0:
        raise CheckpointError(
            f"optim/step must be a non-negative integer scalar, got {step!r}; the file is "
            "damaged or was not written by vdreid: resume from another checkpoint"
        )
    return int(step)


def optim_state(
    moments: Mapping[str, tuple[np.ndarray, np.ndarray]], step: int
) -> dict[str, np.ndarray]:
    """The optimiser's checkpoint entries: Adam's ``(m, v)`` of each trainable
    tensor under ``optim/m/<name>`` and ``optim/v/<name>`` (float32), and
    ``optim/step`` (int64, 0-d). Every backend's trainer state uses this layout."""
    out: dict[str, np.ndarray] = {}
    for name, (m, v) in moments.items():
        m_key, v_key = optim_keys(name)
        out[m_key] = np.asarray(m, np.float32)
        out[v_key] = np.asarray(v, np.float32)
    out[f"{OPTIM}{NAMESPACE_SEP}step"] = np.array(step, dtype=np.int64)
    return out


def split_optim_state(
    optim: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]
) -> tuple[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The inverse of :func:`optim_state` for an ``optim/`` namespace
    (namespace_state), checked against the trainable tensors' ``shapes``:
    (step, name -> (m, v))."""
    step = optimizer_step(optim, shapes)
    return step, {name: (optim[f"m/{name}"], optim[f"v/{name}"]) for name in shapes}
