"""The MindSpore Backend: the object the entry point names. Each method hands
over to the module that does the work (build, names, infer, train, export)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vdreid.backend import BackendInfo, ExportReport, check_trainer_options
from vdreid.spec import ModelSpec
from vdreid_mindspore import distributed, infer, names
from vdreid_mindspore import export as export_mod
from vdreid_mindspore._quiet import mindspore as ms
from vdreid_mindspore.build import MVDModel, build_model
from vdreid_mindspore.device import resolve_device, visible_devices
from vdreid_mindspore.ops import MSOps
from vdreid_mindspore.train import OPTIONS, MindSporeTrainer

#: a MindIR export must reproduce the eager features to this (max abs diff)
DEFAULT_EXPORT_TOLERANCE = 1e-4


class MindSporeBackend:
    name = "mindspore"
    export_formats = export_mod.FORMATS
    launcher = "msrun"  # vdreid.workflows.launch: the launcher distributed runs start under

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, "mindspore", ms.__version__, visible_devices())

    def ops(self) -> MSOps:
        return MSOps()

    def build(self, spec: ModelSpec, *, device: str | None = None) -> MVDModel:
        """A model with zeroed weights (batch-norm variances one) on ``device``
        (CPU, GPU or Ascend; default: an accelerator when present). On the CPU
        k > 1 convolutions and the max pool use the CPU lowerings (lowering.py). Load weights
        with :meth:`set_state`."""
        target = resolve_device(device)
        return build_model(spec, lowered=target == "CPU")

    def state_shapes(self, spec: ModelSpec) -> dict[str, tuple[int, ...]]:
        """Canonical name -> shape of what a built model holds. Builds the Cell
        tree (zero-filled numpy buffers are mapped lazily by the OS; about 0.4 s
        for the ResNet-50 presets)."""
        held = names.tensors(build_model(spec))
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

    def init_distributed(self, device: str | None = None) -> tuple[int, int]:
        """Join msrun's process group on ``device``: (rank, world). In msrun's
        scheduler process this serves the workers and MindSpore ends the
        process when they finish (see vdreid_mindspore.distributed)."""
        return distributed.join(device)

    def trainer(
        self, model: MVDModel, loss_spec: Any, optim: Any, **options: Any
    ) -> MindSporeTrainer:
        """Options: amp, dropout, seed, pynative, deterministic, distributed, sync_bn
        (see MindSporeTrainer)."""
        check_trainer_options("mindspore", options, OPTIONS)
        return MindSporeTrainer(model, loss_spec, optim, target=resolve_device(None), **options)

    def export(
        self,
        model: MVDModel,
        fmt: str,
        path: str,
        *,
        example: np.ndarray,
        tolerance: float = DEFAULT_EXPORT_TOLERANCE,
    ) -> ExportReport:
        """MindIR of the feature extractor, verified by reloading it (mindspore.load
        + nn.GraphCell). See vdreid_mindspore.export for the input contract."""
        return export_mod.export_model(model, fmt, path, example=example, tolerance=tolerance)
