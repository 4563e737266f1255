"""The MindSpore Backend: the object the entry point names. Each method hands
over to the module that does the work (build, names, infer, train, export)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from vdreid.backend import Backend, BackendInfo
from vdreid.losses import LossSpec
from vdreid.optim import OptimConfig
from vdreid.spec import ModelSpec
from vdreid.trainer import TrainerOptions
from vdreid_mindspore import distributed, export, infer, names
from vdreid_mindspore._quiet import mindspore as ms
from vdreid_mindspore.build import MVDModel, build_model
from vdreid_mindspore.device import resolve_device, visible_devices
from vdreid_mindspore.ops import MSOps
from vdreid_mindspore.train import MindSporeTrainer


class MindSporeBackend(Backend):
    name = "mindspore"
    trains = True
    export_formats = export.FORMATS
    launcher = "msrun"
    unsupported_options = {
        "compile": "MindSpore compiles every training step already (GRAPH mode); "
        "pynative=True runs it eagerly instead",
        "sync_bn": "MindSpore's SyncBatchNorm runs on Ascend only; leave sync_bn off, so that "
        "each rank normalises over its own images, or train with --backend torch on CUDA",
    }

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, "mindspore", ms.__version__, visible_devices())

    def ops(self) -> MSOps:
        return MSOps()

    def build(self, spec: ModelSpec, *, device: str | None = None) -> MVDModel:
        """A model with zeroed weights (batch-norm variances one) on ``device``
        (CPU, GPU or Ascend; default: an accelerator when present). On the CPU
        k > 1 convolutions and the max pool use the CPU lowerings (lowering.py).
        Load weights with :meth:`set_state`."""
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

    def new_trainer(
        self, model: MVDModel, loss_spec: LossSpec, optim: OptimConfig, options: TrainerOptions
    ) -> MindSporeTrainer:
        return MindSporeTrainer(model, loss_spec, optim, options, target=resolve_device(None))

    def init_distributed(self, device: str | None = None) -> tuple[int, int]:
        """Join msrun's process group on ``device``: (rank, world). In msrun's
        scheduler process this serves the workers and MindSpore ends the
        process when they finish (see vdreid_mindspore.distributed)."""
        return distributed.join(device)

    def write_export(self, model: MVDModel, fmt: str, example: np.ndarray, path: Path) -> None:
        export.write_mindir(model, example, path)

    def run_export(self, fmt: str, path: Path, images: np.ndarray) -> np.ndarray:
        return export.run_mindir(path, images)
