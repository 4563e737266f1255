"""The trainer frame: what every backend's Trainer does, written once.

A backend's trainer subclasses :class:`Trainer` and fills in the steps that
touch its framework (the ``_`` methods: one optimiser step, its learning
rates and generators, the loss sums on the device, the model and Adam
moments in and out). The frame does the rest the same way on every backend:

- the loss's outputs are checked against the model's before anything runs;
- the trainable tensors (param_table, not running statistics, not frozen)
  and their parameter groups, backbone first;
- ``set_epoch``: each group's learning rate from vdreid.optim.lr_at and the
  generators reseeded from (seed, epoch, rank) (vdreid.optim.epoch_seed);
- ``step``: the batch checked on the host (vdreid.backend_inputs), the step
  counted (Adam's t) unless the backend skipped it;
- ``metrics``: the mean of every loss term since the last call, averaged
  over the ranks of a distributed run;
- ``state`` / ``load``: canonical model tensors plus the shared optimiser
  layout (vdreid.optim.optim_state: ``optim/m/<name>``, ``optim/v/<name>``,
  ``optim/step``), so a run saved by one backend resumes on another.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping

import numpy as np

from vdreid.backend_inputs import checked_batch
from vdreid.checkpoint import model_state, namespace_state
from vdreid.errors import ConfigError
from vdreid.losses.objective import check_outputs
from vdreid.losses.spec import LossSpec
from vdreid.optim import (
    GROUPS,
    OPTIM,
    OptimConfig,
    ParamGroup,
    epoch_seed,
    lr_at,
    optim_state,
    param_group,
    split_optim_state,
)
from vdreid.spec.model import ModelSpec
from vdreid.spec.params import param_table, trainable_names

#: Adam's first and second moment of one tensor
Moments = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass(frozen=True)
class TrainerOptions:
    """How a trainer runs (what it optimises is the LossSpec and OptimConfig).

    A backend refuses an option it cannot honour (``Backend.unsupported_options``)
    with a ConfigError saying why; docs/backends.md lists each backend's.
    """

    #: reduced precision where the device supports it (the CPU computes float32)
    amp: bool = True
    #: compile the step ahead of running it (torch.compile)
    compile: bool = False
    #: False switches the classifiers' dropout off (parity runs against the oracle)
    dropout: bool = True
    #: seeds the trainer's own generators (dropout), reseeded from (seed, epoch, rank)
    seed: int | None = None
    #: deterministic kernels where the device has a choice
    deterministic: bool = False
    #: one process per device under the backend's launcher; gradients averaged over ranks
    distributed: bool = False
    #: batch statistics synchronised across ranks (needs ``distributed``)
    sync_bn: bool = False
    #: MindSpore: run the step eagerly instead of compiling it (debugging)
    pynative: bool = False

    def __post_init__(self) -> None:
        if self.sync_bn and not self.distributed:
            raise ConfigError(
                "sync_bn=True needs distributed=True (one process per device, started by the "
                "backend's launcher: torchrun, msrun)"
            )

    def asked(self) -> dict[str, object]:
        """The options that differ from their defaults."""
        default = TrainerOptions()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }


class Trainer(abc.ABC):
    """One model's optimisation state, driven by the core's training workflow
    (module docstring). Subclasses set ``rank`` and ``world`` when they join
    a process group and call ``set_epoch(0)`` at the end of ``__init__``."""

    def __init__(
        self, spec: ModelSpec, loss_spec: LossSpec, optim: OptimConfig, options: TrainerOptions
    ) -> None:
        check_outputs(loss_spec, spec.output_names())
        self.spec = spec
        self.loss_spec = loss_spec
        self.optim_config = optim
        self.options = options
        self.seed = options.seed
        self.rank, self.world = 0, 1
        table = param_table(spec)
        trainable = trainable_names(table)
        #: trainable tensors per parameter group, in param_table order
        self.groups: dict[ParamGroup, list[str]] = {
            g: [n for n in trainable if param_group(n) == g] for g in GROUPS
        }
        #: every trainable tensor, group by group (backbone first)
        self.names = [n for g in GROUPS for n in self.groups[g]]
        self.shapes = {n: table[n].shape for n in self.names}
        self.lrs: dict[ParamGroup, float] = {}
        self.steps = 0  # optimiser steps taken (Adam's t)
        self._count = 0  # steps since the last metrics()

    # -- schedule -----------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Each group's learning rate for ``epoch`` (0-based); the trainer's
        generators reseeded from (seed, epoch, rank)."""
        self.lrs = {g: lr_at(self.optim_config, epoch, g) for g in GROUPS}
        self._apply_learning_rates(self.lrs)
        if self.seed is not None:
            self._reseed(epoch_seed(self.seed, epoch, self.rank))

    def learning_rates(self) -> dict[str, float]:
        """The learning rate of each parameter group the next step uses."""
        return {group: rate for group, rate in self.lrs.items()}

    # -- one step -----------------------------------------------------------
    def step(self, batch: Mapping[str, np.ndarray]) -> None:
        """One optimiser step on a batch (``images`` uint8 NHWC, ``labels``,
        ``modality``). Does not wait for the device."""
        images, labels, modality = checked_batch(batch, self.spec.num_classes)
        if self._step(images, labels, modality):
            self.steps += 1
        self._count += 1

    def metrics(self) -> dict[str, float]:
        """Mean of each loss term over the steps since the last call, and over
        the ranks (the only host synchronisation)."""
        if not self._count:
            return {}
        sums = self._take_sums()
        means = np.array(list(sums.values()), np.float64) / self._count
        if self.world > 1:
            means = self._sum_over_ranks(means) / self.world
        self._count = 0
        return dict(zip(sums, means.tolist(), strict=True))

    def close(self) -> None:  # noqa: B027 - optional: most trainers hold nothing more
        """Release what the trainer holds beyond the model (a distributed
        process group); nothing by default."""

    # -- state --------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Model and optimiser state as numpy arrays, keyed by canonical names."""
        out = self._model_state()
        out.update(optim_state(self._moments(), self.steps))
        return out

    def load(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`state` returned. A state without ``optim/``
        entries (a model-only checkpoint) starts a fresh optimiser."""
        self._load_model_state(model_state(state))
        optim = namespace_state(state, OPTIM)
        moments: dict[str, Moments] | None = None
        self.steps = 0
        if optim:
            self.steps, moments = split_optim_state(optim, self.shapes)
        self._load_moments(moments)

    # -- what a backend fills in ---------------------------------------------
    @abc.abstractmethod
    def _apply_learning_rates(self, rates: Mapping[ParamGroup, float]) -> None:
        """Use ``rates`` (per parameter group) from the next step on."""

    @abc.abstractmethod
    def _reseed(self, seed: int) -> None:
        """Reseed the trainer's own generators (dropout) with a 63-bit seed."""

    @abc.abstractmethod
    def _step(self, images: np.ndarray, labels: np.ndarray, modality: np.ndarray) -> bool:
        """Forward, objective, backward and Adam on a checked batch, the loss
        terms added to device-side sums. False when the step was skipped
        (an overflowing mixed-precision step): it then does not count."""

    @abc.abstractmethod
    def _take_sums(self) -> dict[str, float]:
        """The loss terms summed since the last call (``total`` last), as host
        floats; resets the sums."""

    def _sum_over_ranks(self, values: np.ndarray) -> np.ndarray:
        """``values`` summed element-wise over the ranks (distributed runs)."""
        raise NotImplementedError(f"{type(self).__name__} runs on one process only")

    @abc.abstractmethod
    def _model_state(self) -> dict[str, np.ndarray]:
        """Canonical model tensors, float32 on the host."""

    @abc.abstractmethod
    def _load_model_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Load canonical model tensors (strict)."""

    @abc.abstractmethod
    def _moments(self) -> dict[str, Moments]:
        """Adam's (m, v) of every trainable tensor (zeros before the first step)."""

    @abc.abstractmethod
    def _load_moments(self, moments: Mapping[str, Moments] | None) -> None:
        """Adam's (m, v) at step ``self.steps``; None: a fresh optimiser."""
