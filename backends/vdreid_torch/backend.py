"""The torch Backend: the object the entry point names. Each method hands
over to the module that does the work (build, names, infer, train, export)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from vdreid.backend import Backend, BackendInfo
from vdreid.losses import LossSpec
from vdreid.optim import OptimConfig
from vdreid.spec import ModelSpec
from vdreid.trainer import TrainerOptions
from vdreid_torch import export, infer, names
from vdreid_torch.build import MVDModel, build_model
from vdreid_torch.device import resolve_device, visible_devices
from vdreid_torch.ops import TorchOps
from vdreid_torch.train import TorchTrainer


class TorchBackend(Backend):
    name = "torch"
    trains = True
    export_formats = export.FORMATS
    launcher = "torchrun"
    unsupported_options = {
        "pynative": "torch runs eagerly already; compile=True compiles the step instead",
    }

    def __init__(self, exporter: str = "torchscript"):
        #: the ONNX exporter tried first (vdreid_torch.export.EXPORTERS)
        self.exporter = exporter

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, "torch", torch.__version__, visible_devices())

    def ops(self) -> TorchOps:
        return TorchOps()

    def build(self, spec: ModelSpec, *, device: str | None = None) -> MVDModel:
        """A model with zeroed weights on ``device`` (default: CUDA if present);
        load weights with :meth:`set_state`."""
        return build_model(spec, resolve_device(device))

    def state_shapes(self, spec: ModelSpec) -> dict[str, tuple[int, ...]]:
        """Canonical name -> shape of what a built model holds, read from a
        model built on torch's meta device (no memory, instant for ResNet-50)."""
        held = names.tensors(build_model(spec, "meta"))
        return {n: tuple(held[key].shape) for n, key in names.framework_keys(spec).items()}

    def get_state(self, model: MVDModel) -> dict[str, np.ndarray]:
        return names.get_state(model, model.spec)

    def set_state(self, model: MVDModel, state: Mapping[str, np.ndarray]) -> None:
        names.set_state(model, model.spec, state)

    def forward(
        self, model: MVDModel, images: np.ndarray, *, train: bool = False
    ) -> dict[str, np.ndarray]:
        return infer.forward(model, images, train=train)

    def features(self, model: MVDModel, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        return infer.features(model, images, batch_size=batch_size)

    def new_trainer(
        self, model: MVDModel, loss_spec: LossSpec, optim: OptimConfig, options: TrainerOptions
    ) -> TorchTrainer:
        return TorchTrainer(model, loss_spec, optim, options)

    def write_export(self, model: MVDModel, fmt: str, example: np.ndarray, path: Path) -> None:
        export.write_onnx(model, example, path, exporter=self.exporter)

    def run_export(self, fmt: str, path: Path, images: np.ndarray) -> np.ndarray:
        return export.run_onnx(path, images)

    def eager_features(self, model: MVDModel, images: np.ndarray) -> np.ndarray:
        return export.eager_features(model, images)
