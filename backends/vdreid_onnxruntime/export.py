"""ONNX files: this backend's own export, running a file, and loading an exported one.

Every exported file (this backend's and the torch backend's) has one input
``images``, float32 (batch, 3, H, W) normalised as ``vdreid.spec.preprocess``
does, and one output ``features``, and says so in its metadata
(vdreid.export_metadata: input size, colour order, mean/std, feature
layout and distance, vdreid version, spec hash and the spec itself).
:func:`load_model` reads that metadata to rebuild the spec, so
``--model m.onnx`` needs nothing but the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from vdreid.errors import CheckpointError, ExportError, first_line
from vdreid.export_metadata import INPUT_NAME, OUTPUT_NAME, export_metadata, read_metadata
from vdreid_onnxruntime.build import MVDModel
from vdreid_onnxruntime.device import providers
from vdreid_onnxruntime.infer import OrtModel, session_options
from vdreid_onnxruntime.ops import float_value

FORMATS = ("onnx",)


def write_onnx(model: OrtModel, path: Path) -> None:
    """The features graph of a built model, at the spec's input size (dynamic
    batch), with its weights and metadata, checked by onnx.checker."""
    if model.interpreter is None or model.state is None:
        raise ExportError(f"{model.file} is an exported file already; copy it instead")
    spec = model.spec
    graph, outputs = model.interpreter.features_graph()
    proto = graph.model(
        [MVDModel.input(spec.input.height, spec.input.width)],
        [float_value(outputs[0], ["batch", spec.feature_dim])],
        model.state,
        export_metadata(spec),
    )
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))


def run_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    """Features of a normalised float32 NCHW batch from the file (CPU)."""
    run = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    (out,) = run.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(images, np.float32)})
    return np.asarray(out, np.float32)


def load_model(path: str | Path, device: str | None = None) -> OrtModel:
    """An exported .onnx file as a model handle: its spec from the metadata,
    its input and output checked against the export contract."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist; pass an exported .onnx file")
    try:
        run = ort.InferenceSession(str(path), session_options(), providers=providers(device))
    except Exception as exc:
        raise CheckpointError(
            f"{path} does not load in onnxruntime ({type(exc).__name__}: {first_line(exc)}); "
            "it is damaged or not an ONNX model: export it again"
        ) from None
    spec = read_metadata(run.get_modelmeta().custom_metadata_map, str(path))
    inputs, outputs = [i.name for i in run.get_inputs()], [o.name for o in run.get_outputs()]
    if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
        raise CheckpointError(
            f"{path} takes {inputs} and gives {outputs}; a vdreid export takes [{INPUT_NAME!r}] "
            f"and gives [{OUTPUT_NAME!r}]: export it again with `vdreid export`"
        )
    return OrtModel(spec, device, file=path, sessions={"features": run})
