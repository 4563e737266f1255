"""ONNX export of the feature extractor: writing it and running it in
onnxruntime (the core's recipe, vdreid.verified_export, verifies it against
the eager model and moves it into place).

Input contract of the exported graph: one input ``images``, float32 NCHW,
already normalised with the spec's mean/std (what ``vdreid.spec.preprocess``
returns), any batch size; one output ``features``, float32 (batch, dim),
the spec's test feature (the official recipe: four post-BNNeck features
concatenated, one L2 normalisation). Grey conversion happens inside the
graph, exactly as in the eager model. The file's metadata_props say all
this (vdreid.export_metadata: input size, colour order, mean/std, feature
layout and distance, vdreid version, spec hash and spec).

Exporters: torch has two and both work offline. ``torchscript`` (the
default) traces the model; it is mature for CNNs and exports this model
in about a second, but torch has deprecated it. ``dynamo`` goes through
``torch.export``; it is the maintained one but takes ten times longer on
a CPU. The default falls back to ``dynamo`` when the TorchScript exporter
fails (or is gone from the installed torch).

Opset 18: within the TorchScript exporter's range (<= 20), the dynamo
exporter's native opset (lower ones go through a version converter), and
run by every onnxruntime since 1.14, so switching exporters does not
change what a consumer needs.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vdreid.errors import ExportError, first_line
from vdreid.export_metadata import INPUT_NAME, OUTPUT_NAME, export_metadata
from vdreid_torch.build import MVDModel

ONNX_OPSET = 18
FORMATS = ("onnx",)
EXPORTERS = ("torchscript", "dynamo")


class FeatureExtractor(nn.Module):
    """Wraps the model so the exported graph maps images to the test feature only."""

    def __init__(self, model: MVDModel):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.test_feature(images)


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter logs progress and deprecation notes; keep the CLI clean."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def _trace_export(extractor: nn.Module, example: torch.Tensor, path: Path) -> None:
    torch.onnx.export(
        extractor,
        (example,),
        str(path),
        dynamo=False,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        opset_version=ONNX_OPSET,
    )


def _dynamo_export(extractor: nn.Module, example: torch.Tensor, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    program = torch.onnx.export(
        extractor,
        (example,),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes={"images": {0: batch}},
        opset_version=ONNX_OPSET,
        external_data=False,
        verbose=False,
    )
    if program is None:  # torch returns None only for file-writing calls
        raise ExportError("torch's dynamo exporter returned no program")
    program.save(str(path), external_data=False)


def write_onnx(
    model: MVDModel, example: np.ndarray, path: Path, *, exporter: str = "torchscript"
) -> str:
    """Export ``FeatureExtractor(model)`` to ``path`` with a dynamic batch axis,
    traced on the first two images of ``example`` (normalised float32 NCHW:
    torch.export specialises a size-1 axis), and check the file.
    ``torchscript`` falls back to ``dynamo`` if it fails (say, in a torch
    without it). Returns the exporter that wrote the file."""
    import onnx

    if exporter not in EXPORTERS:
        raise ExportError(f"unknown ONNX exporter {exporter!r}; expected one of {EXPORTERS}")
    tries = ["torchscript", "dynamo"] if exporter == "torchscript" else ["dynamo"]
    runs = {"torchscript": _trace_export, "dynamo": _dynamo_export}
    device = next(model.parameters()).device
    trace = torch.as_tensor(np.concatenate([example, example])[:2], device=device)
    was_training = model.training
    extractor = FeatureExtractor(model).eval()
    failures = []
    try:
        for name in tries:
            try:
                with _quiet_exporter(), torch.no_grad():
                    runs[name](extractor, trace, path)
                _describe(path, model)
                onnx.checker.check_model(str(path), full_check=True)
            except Exception as exc:
                failures.append(f"{name}: {type(exc).__name__}: {first_line(exc)}")
                continue
            return name
    finally:
        model.train(was_training)
    raise ExportError(
        f"torch could not write the feature extractor as ONNX opset {ONNX_OPSET} "
        f"({'; '.join(failures)}); report it with the checkpoint's spec"
    )


def _describe(path: Path, model: MVDModel) -> None:
    """Add the metadata every vdreid export carries (vdreid.export_metadata)."""
    import onnx

    proto = onnx.load(str(path))
    for key, value in export_metadata(model.spec).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def run_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    """Features of a normalised float32 NCHW batch under onnxruntime (CPU)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (out,) = session.run(
        [OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(images, dtype=np.float32)}
    )
    return np.asarray(out, dtype=np.float32)


def eager_features(model: MVDModel, images: np.ndarray) -> np.ndarray:
    """The eager model's features in eval mode and strict fp32 (no TF32 on CUDA)."""
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            x = torch.as_tensor(images, dtype=torch.float32, device=next(model.parameters()).device)
            return model.test_feature(x).float().cpu().numpy()
    finally:
        model.train(was_training)
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
