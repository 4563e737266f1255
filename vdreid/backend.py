"""The Backend protocol: what the core asks of every backend.

A backend turns the core's specs into framework code; vdreid.registry finds
and loads the installed ones.

Arrays cross the boundary as numpy arrays (or dicts of them): a framework
tensor never reaches the core.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from vdreid.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from vdreid.ops import Ops


@dataclasses.dataclass(frozen=True)
class BackendInfo:
    """What `vdreid backends` prints for one backend."""

    name: str
    framework: str
    version: str
    devices: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """The result of exporting and verifying a feature extractor."""

    path: str
    format: str
    max_abs_diff: float
    min_cosine: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


@runtime_checkable
class Trainer(Protocol):
    """One model's optimisation loop state, driven by the core's workflow."""

    def step(self, batch: Mapping[str, np.ndarray]) -> None:
        """One optimiser step on a batch (``images`` uint8 NHWC, ``labels``,
        ``modality``). Must not synchronise with the host."""

    def metrics(self) -> dict[str, float]:
        """Loss terms of the last step as floats (this synchronises)."""

    def set_epoch(self, epoch: int) -> None:
        """Apply the learning-rate schedule for ``epoch`` (0-based)."""

    def state(self) -> dict[str, np.ndarray]:
        """Model and optimiser state as numpy arrays, keyed by canonical names."""

    def load(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`state` returned."""

    def close(self) -> None:
        """Release what the trainer holds beyond the model (for example a
        distributed process group). Optional: the workflow calls it when the
        trainer has it."""


@runtime_checkable
class Backend(Protocol):
    """What every backend provides. See docs/architecture.md."""

    name: str

    def info(self) -> BackendInfo:
        """Framework version and the devices it can see."""

    def ops(self) -> Ops:
        """The array primitives the core's loss math runs on."""

    def build(self, spec: Any, *, device: str | None = None) -> Any:
        """Interpret a ModelSpec into a framework model (an opaque handle).
        Weights are placeholders until :meth:`set_state` loads some."""

    def state_shapes(self, spec: Any) -> dict[str, tuple[int, ...]]:
        """Canonical name -> shape of the state :meth:`build` would hold,
        found without allocating the weights (cheap for ResNet-50 presets)."""

    def get_state(self, model: Any) -> dict[str, np.ndarray]:
        """Model state keyed by canonical names (param_table keys)."""

    def set_state(self, model: Any, state: Mapping[str, np.ndarray]) -> None:
        """Load canonical state; strict: any mismatch raises CheckpointError."""

    def forward(
        self, model: Any, images: np.ndarray, *, train: bool = False
    ) -> dict[str, np.ndarray]:
        """Named outputs for normalised float32 NCHW images. ``train=True``:
        batch statistics (running statistics updated) and dropout off."""

    def features(self, model: Any, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Test features for uint8 NHWC images (eval mode, the spec's recipe)."""

    def trainer(self, model: Any, loss_spec: Any, optim: Any, **options: Any) -> Trainer:
        """A Trainer for ``model`` with the given loss and optimiser config.
        Options every backend takes: ``amp`` (reduced precision where the
        device supports it), ``dropout`` (False for parity runs), ``seed``."""

    def export(
        self, model: Any, fmt: str, path: str, *, example: np.ndarray, tolerance: float = 1e-4
    ) -> ExportReport:
        """Write the feature extractor to ``path``, run it in its runtime on
        ``example`` (normalised float32 NCHW) and compare with the eager model."""


def check_trainer_options(backend: str, options: Mapping[str, Any], known: Iterable[str]) -> None:
    """ConfigError naming the trainer options ``backend`` does not take."""
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"the {backend} trainer does not take the option(s) {unknown}; it takes {sorted(known)}"
        )
