"""The backend contract: everything the core asks of a backend, as a base class.

A backend subclasses :class:`Backend` and is registered in the entry-point
group ``vdreid.backends`` (vdreid.registry finds and loads it). The abstract
methods are what every backend does (build a spec, move canonical state in
and out, extract features). The optional members have defaults: a backend
that does not train, export or expose its Ops answers with a NotSupported
error naming itself and what it lacks, never an AttributeError (einops'
AbstractBackend is the model). Written once here for every backend: the
trainer-option refusals and the export recipe (vdreid.verified_export).

Arrays cross the boundary as numpy arrays (or dicts of them): a framework
tensor never reaches the core. A model is the backend's own opaque handle.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from vdreid.errors import ExportError, NotSupported
from vdreid.verified_export import EXPORT_TOLERANCE, ExportReport, verified_export

if TYPE_CHECKING:  # pragma: no cover - typing only
    from vdreid.losses.spec import LossSpec
    from vdreid.ops import Ops
    from vdreid.optim import OptimConfig
    from vdreid.spec.model import ModelSpec
    from vdreid.trainer import Trainer, TrainerOptions


@dataclasses.dataclass(frozen=True)
class BackendInfo:
    """What `vdreid backends` prints for one backend."""

    name: str
    framework: str
    version: str
    devices: tuple[str, ...]


class Backend(abc.ABC):
    """What every backend provides (docs/backends.md, "What every backend does")."""

    #: the name it is registered under (``--backend``)
    name: ClassVar[str]
    #: whether it trains (:meth:`trainer`, train-mode :meth:`forward`); False: inference
    #: only, and the contract suite generates only its inference cases
    trains: ClassVar[bool] = False
    #: the formats :meth:`export` writes, this backend's own first (none: it does not export)
    export_formats: ClassVar[tuple[str, ...]] = ()
    #: the exported model files :meth:`load_model` runs (``--model m.onnx``; none: it does not)
    model_formats: ClassVar[tuple[str, ...]] = ()
    #: the launcher distributed runs start under (vdreid.workflows.launch); None: one process
    launcher: ClassVar[str | None] = None
    #: TrainerOptions fields this backend cannot honour -> why, and what to do instead
    unsupported_options: ClassVar[Mapping[str, str]] = {}

    # -- what every backend does ----------------------------------------------
    @abc.abstractmethod
    def info(self) -> BackendInfo:
        """Framework version and the devices it can see."""

    @abc.abstractmethod
    def build(self, spec: ModelSpec, *, device: str | None = None) -> Any:
        """Interpret a ModelSpec into a framework model (an opaque handle).
        Weights are placeholders until :meth:`set_state` loads some."""

    @abc.abstractmethod
    def state_shapes(self, spec: ModelSpec) -> dict[str, tuple[int, ...]]:
        """Canonical name -> shape of the state :meth:`build` would hold,
        found without allocating the weights (cheap for ResNet-50 presets)."""

    @abc.abstractmethod
    def get_state(self, model: Any) -> dict[str, np.ndarray]:
        """Model state keyed by canonical names (param_table keys), float32."""

    @abc.abstractmethod
    def set_state(self, model: Any, state: Mapping[str, np.ndarray]) -> None:
        """Load canonical state; strict: any mismatch raises CheckpointError."""

    @abc.abstractmethod
    def features(self, model: Any, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Test features for uint8 NHWC images (eval mode, the spec's recipe)."""

    # -- optional: the defaults say what this backend does not do --------------
    def ops(self) -> Ops:
        """The array primitives the core's loss math runs on."""
        raise self.not_supported("array operations (Ops), which training and `vdreid doctor` use")

    def forward(
        self, model: Any, images: np.ndarray, *, train: bool = False
    ) -> dict[str, np.ndarray]:
        """Named outputs ``{path}.{name}`` for normalised float32 NCHW images
        (eval mode adds ``test_feature``). ``train=True``: batch statistics
        (running statistics updated) and dropout off."""
        raise self.not_supported("named forward outputs (parity checks)")

    def trainer(
        self,
        model: Any,
        loss_spec: LossSpec,
        optim: OptimConfig,
        options: TrainerOptions | None = None,
    ) -> Trainer:
        """A Trainer for ``model``. Refuses, with a ConfigError saying why, an
        option this backend cannot honour (``unsupported_options``)."""
        from vdreid.trainer import TrainerOptions

        if not self.trains:
            raise self.does_not_train("training")
        options = options or TrainerOptions()
        for option, value in options.asked().items():
            if option in self.unsupported_options:
                raise NotSupported(
                    f"{option}={value}: the {self.name} backend does not support it "
                    f"({self.unsupported_options[option]})"
                )
        return self.new_trainer(model, loss_spec, optim, options)

    def new_trainer(
        self, model: Any, loss_spec: LossSpec, optim: OptimConfig, options: TrainerOptions
    ) -> Trainer:
        """The backend's Trainer (:meth:`trainer` checked ``options`` first)."""
        raise self.not_supported("training")

    def init_distributed(self, device: str | None = None) -> tuple[int, int] | None:
        """Join the launcher's process group before anything is built, for a
        framework that needs that (MindSpore under msrun): (rank, world).
        None (the default): the trainer joins (torch's DistributedDataParallel)."""
        return None

    # -- export: the recipe is the core's; a backend gives write, run, eager -----
    def export_format(self, fmt: str | None = None) -> str:
        """``fmt`` when this backend writes it; its own format when None."""
        if not self.export_formats:
            raise self.not_supported("exporting models")
        if fmt is None:
            return self.export_formats[0]
        if fmt not in self.export_formats:
            raise ExportError(
                f"the {self.name} backend exports {', '.join(self.export_formats)}; got format "
                f"{fmt!r}: pass --format {self.export_formats[0]}, or a backend that writes {fmt!r}"
            )
        return fmt

    def export(
        self,
        model: Any,
        fmt: str,
        path: str | Path,
        *,
        example: np.ndarray,
        tolerance: float = EXPORT_TOLERANCE,
    ) -> ExportReport:
        """Write the feature extractor as ``fmt`` to ``path``, verified
        (vdreid.verified_export): its runtime's features on ``example``
        (normalised float32 NCHW) within ``tolerance`` of the eager model's,
        or an ExportError and ``path`` untouched."""
        fmt = self.export_format(fmt)
        return verified_export(
            path,
            fmt,
            example,
            backend=self.name,
            write=lambda tmp, images: self.write_export(model, fmt, images, tmp),
            run=lambda tmp, images: self.run_export(fmt, tmp, images),
            eager=lambda images: self.eager_features(model, images),
            tolerance=tolerance,
        )

    def write_export(self, model: Any, fmt: str, example: np.ndarray, path: Path) -> None:
        """Write the feature extractor (normalised float32 NCHW images in,
        test features out, any batch size) as ``fmt`` to ``path``."""
        raise self.not_supported("exporting models")

    def run_export(self, fmt: str, path: Path, images: np.ndarray) -> np.ndarray:
        """Features of ``images`` from the file at ``path``, run in its runtime."""
        raise self.not_supported("exporting models")

    # -- model files: `--model M.onnx` (vdreid.workflows.model_source) ----------------
    def load_model(self, path: str | Path, *, device: str | None = None) -> tuple[Any, ModelSpec]:
        """An exported model file of one of ``model_formats``, opened as the
        handle :meth:`features` takes, and the spec it was exported from
        (its input size, normalisation and distance)."""
        raise self.not_supported("running exported model files (--model)")

    def eager_features(self, model: Any, images: np.ndarray) -> np.ndarray:
        """The eager model's test features of normalised images, what an
        export must reproduce (full precision)."""
        return self.forward(model, images)["test_feature"]

    # -- helpers ----------------------------------------------------------------
    def does_not_train(self, what: str) -> NotSupported:
        return NotSupported(
            f"the {self.name} backend does not train ({what}: it runs inference only); "
            "use --backend torch or mindspore"
        )

    def not_supported(self, what: str) -> NotSupported:
        return NotSupported(
            f"the {self.name} backend does not support {what}; `vdreid backends` lists the "
            "installed backends, docs/backends.md what each one does"
        )
