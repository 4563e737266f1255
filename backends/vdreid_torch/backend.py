"""The torch Backend: the object the entry point names. Each method hands
over to the module that does the work (build, names, infer, train, export)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from vdreid.backend import BackendInfo, ExportReport, check_trainer_options
from vdreid.spec import ModelSpec
from vdreid_torch import export as export_mod
from vdreid_torch import infer, names
from vdreid_torch.build import MVDModel, build_model
from vdreid_torch.device import resolve_device, visible_devices
from vdreid_torch.ops import TorchOps
from vdreid_torch.train import OPTIONS, TorchTrainer

#: an ONNX export must reproduce the eager features to this (max abs diff)
DEFAULT_EXPORT_TOLERANCE = 1e-4


class TorchBackend:
    name = "torch"
    export_formats = export_mod.FORMATS
    launcher = "torchrun"  # vdreid.workflows.launch: the launcher distributed runs start under

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

    def trainer(self, model: MVDModel, loss_spec: Any, optim: Any, **options: Any) -> TorchTrainer:
        """Options: amp, compile, dropout, seed, deterministic, distributed,
        sync_bn (see TorchTrainer)."""
        check_trainer_options("torch", options, OPTIONS)
        return TorchTrainer(model, loss_spec, optim, **options)

    def export(
        self,
        model: MVDModel,
        fmt: str,
        path: str,
        *,
        example: np.ndarray,
        tolerance: float = DEFAULT_EXPORT_TOLERANCE,
    ) -> ExportReport:
        """ONNX (opset 18) of the feature extractor, verified with onnxruntime.
        See vdreid_torch.export for the input contract."""
        return export_mod.export_model(model, fmt, path, example=example, tolerance=tolerance)
