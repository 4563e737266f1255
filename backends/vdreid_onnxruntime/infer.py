"""Inference: the model handle, its onnxruntime sessions, features and named outputs.

An :class:`OrtModel` is what ``build`` (a spec and its canonical state) and
``load_model`` (an exported .onnx file) return. Sessions are created on
first use and dropped when the state changes; the uint8 -> normalised step
is vdreid.spec.preprocess on the host, so built graphs and exported files
take the same input.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from vdreid.backend_inputs import checked_images, checked_normalised, feature_chunk
from vdreid.export_metadata import INPUT_NAME, OUTPUT_NAME
from vdreid.spec.model import ModelSpec
from vdreid.spec.preprocess import preprocess
from vdreid_onnxruntime.build import MVDModel
from vdreid_onnxruntime.device import CPU, providers
from vdreid_onnxruntime.ops import float_value


@dataclasses.dataclass
class OrtModel:
    """A spec's network for onnxruntime: built (``state`` set) or loaded from ``file``."""

    spec: ModelSpec
    device: str | None
    interpreter: MVDModel | None = None
    state: dict[str, np.ndarray] | None = None
    file: Path | None = None
    sessions: dict[str, ort.InferenceSession] = dataclasses.field(default_factory=dict)


def session_options() -> ort.SessionOptions:
    """Every graph optimisation (Conv + BatchNormalization folding among them);
    ``OMP_NUM_THREADS``, when set, caps the threads as in the other backends."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        options.intra_op_num_threads = int(threads)
    return options


def session(model: OrtModel, kind: str) -> ort.InferenceSession:
    """The session of ``kind`` (features, outputs), created on first use."""
    if kind not in model.sessions:
        model.sessions[kind] = ort.InferenceSession(
            _model_bytes(model, kind), session_options(), providers=providers(model.device)
        )
    return model.sessions[kind]


def _model_bytes(model: OrtModel, kind: str) -> Any:
    if model.file is not None:
        return str(model.file)
    assert model.interpreter is not None and model.state is not None
    graph, outputs = (
        model.interpreter.features_graph()
        if kind == "features"
        else model.interpreter.outputs_graph()
    )
    proto = graph.model([MVDModel.input()], [float_value(name) for name in outputs], model.state)
    return proto.SerializeToString()


def features(model: OrtModel, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Test features (the spec's recipe) for uint8 NHWC images."""
    images = checked_images(images, batch_size)
    if len(images) == 0:
        return np.zeros((0, model.spec.feature_dim), np.float32)
    run = session(model, "features")
    size = feature_chunk(batch_size, on_cpu=run.get_providers()[0] == CPU)  # what runs it
    chunks = [
        run.run([OUTPUT_NAME], {INPUT_NAME: preprocess(model.spec, images[i : i + size])})[0]
        for i in range(0, len(images), size)
    ]
    return np.concatenate(chunks).astype(np.float32, copy=False)


def forward(model: OrtModel, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every eval-mode output for normalised float32 NCHW images."""
    images = checked_normalised(images)
    run = session(model, "outputs")
    names = [o.name for o in run.get_outputs()]
    return dict(zip(names, run.run(names, {INPUT_NAME: images}), strict=True))
