"""The ONNX Runtime Backend: the object the entry point names. Inference
only: it builds any spec into ONNX graphs (build.py), loads canonical
state, extracts features, exports and runs exported .onnx files
(``--model m.onnx``); training and train-mode outputs are the base class's
"does not train" answers. Each method hands over to the module that does
the work (build, names, infer, export)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from vdreid.backend import Backend, BackendInfo
from vdreid.errors import CheckpointError
from vdreid.spec import ModelSpec
from vdreid_onnxruntime import export, infer, names
from vdreid_onnxruntime.build import MVDModel
from vdreid_onnxruntime.device import providers, visible_devices
from vdreid_onnxruntime.infer import OrtModel


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    trains = False
    export_formats = export.FORMATS
    model_formats = export.FORMATS

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, "onnxruntime", ort.__version__, visible_devices())

    def build(self, spec: ModelSpec, *, device: str | None = None) -> OrtModel:
        """The spec's network (graphs built on first use) with zero weights
        (batch-norm variances one); load weights with :meth:`set_state`."""
        providers(device)  # an unavailable device fails here, not at the first batch
        interpreter = MVDModel(spec)
        state = {n: np.zeros(s, np.float32) for n, s in self.state_shapes(spec).items()}
        for name in state:
            if name.endswith(".var"):
                state[name][...] = 1.0
        return OrtModel(spec, device, interpreter, state)

    def state_shapes(self, spec: ModelSpec) -> dict[str, tuple[int, ...]]:
        """Canonical name -> shape of every initializer the outputs graph reads."""
        graph, _ = MVDModel(spec).outputs_graph()
        names.check_layout(graph, spec)
        held = names.tensors(graph)
        return {n: held[key] for n, key in names.framework_keys(spec).items()}

    def get_state(self, model: OrtModel) -> dict[str, np.ndarray]:
        return names.get_state(self._state(model), model.spec)

    def set_state(self, model: OrtModel, state: Mapping[str, np.ndarray]) -> None:
        self._state(model)
        model.state = names.set_state(model.spec, state)
        model.sessions.clear()  # the next call builds sessions on the new weights

    def forward(
        self, model: OrtModel, images: np.ndarray, *, train: bool = False
    ) -> dict[str, np.ndarray]:
        if train:
            raise self.does_not_train("train-mode outputs")
        self._state(model)
        return infer.forward(model, images)

    def features(self, model: OrtModel, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        return infer.features(model, images, batch_size=batch_size)

    def load_model(
        self, path: str | Path, *, device: str | None = None
    ) -> tuple[OrtModel, ModelSpec]:
        model = export.load_model(path, device)
        return model, model.spec

    def write_export(self, model: OrtModel, fmt: str, example: np.ndarray, path: Path) -> None:
        export.write_onnx(model, path)

    def run_export(self, fmt: str, path: Path, images: np.ndarray) -> np.ndarray:
        return export.run_onnx(path, images)

    def eager_features(self, model: OrtModel, images: np.ndarray) -> np.ndarray:
        """Features of the in-memory graphs (what an export must reproduce)."""
        return infer.forward(model, images)["test_feature"]

    @staticmethod
    def _state(model: OrtModel) -> dict[str, np.ndarray]:
        if model.state is None:
            raise CheckpointError(
                f"{model.file} is an exported model: it runs features, but holds no canonical "
                "state and no named outputs; use the checkpoint it was exported from"
            )
        return model.state
