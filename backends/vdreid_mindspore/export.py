"""MindIR export of the feature extractor, verified by reloading the file.

Input contract of the exported graph (the same as the torch backend's ONNX):
one input, float32 NCHW, already normalised with the spec's mean/std (what
``vdreid.spec.preprocess`` returns), any batch size (the batch axis is
exported dynamic); one output, float32 (batch, dim), the spec's test
feature. The grey view is computed inside the graph.

The exported graph uses MindSpore's native convolutions and max pool,
not the CPU lowerings (lowering.py), so the file is the plain
network on every device. Verification: ``mindspore.load`` + ``nn.GraphCell`` run the file
on the example batch and its features are compared with the eager Cell's
(max abs diff and min cosine); the export workflow turns drift past the
tolerance into an ExportError.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from mindspore import Tensor, nn

from vdreid.backend import ExportReport
from vdreid.backend_inputs import checked_normalised
from vdreid.errors import ExportError, first_line
from vdreid.workflows.export import feature_drift
from vdreid_mindspore._quiet import mindspore as ms
from vdreid_mindspore.build import MVDModel
from vdreid_mindspore.lowering import is_lowered, set_lowered

FORMATS = ("mindir",)
SUFFIX = ".mindir"


class FeatureExtractor(nn.Cell):
    """Wraps the model so the exported graph maps images to the test feature only."""

    def __init__(self, model: MVDModel):
        super().__init__()
        self.model = model

    def construct(self, images: Tensor) -> Tensor:
        return self.model.test_feature(images)


def write_mindir(model: MVDModel, example: np.ndarray, path: Path) -> None:
    """Export FeatureExtractor(model) with a dynamic batch axis to ``path``.

    ms.export appends ``.mindir`` to a name without it, so the file is
    written under a temporary name with the suffix and renamed atomically.
    """
    extractor = FeatureExtractor(model)
    extractor.set_train(False)
    spec_input = Tensor(shape=[None, *example.shape[1:]], dtype=ms.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.with_name(path.name + ".part")
    tmp = stem.with_name(stem.name + SUFFIX)
    lowered = is_lowered(model)
    set_lowered(model, False)  # native kernels in the file
    try:
        ms.export(extractor, spec_input, file_name=str(stem), file_format="MINDIR")
        os.replace(tmp, path)
    except Exception as exc:
        raise ExportError(
            f"MindSpore could not export the feature extractor to MindIR: {type(exc).__name__}: "
            f"{first_line(exc)}; report this with the checkpoint's spec (vdreid export prints it)"
        ) from exc
    finally:
        set_lowered(model, lowered)
        tmp.unlink(missing_ok=True)


def run_mindir(path: Path, images: np.ndarray) -> np.ndarray:
    """Features of a normalised float32 NCHW batch from the file (nn.GraphCell)."""
    try:
        graph = nn.GraphCell(ms.load(str(path)))
    except Exception as exc:
        raise ExportError(
            f"the exported file {path} does not load in MindSpore: {type(exc).__name__}: "
            f"{first_line(exc)}; export again, and report it if it persists"
        ) from exc
    out = graph(Tensor(np.ascontiguousarray(images, dtype=np.float32)))
    return out.asnumpy().astype(np.float32, copy=False)


def eager_features(model: MVDModel, images: np.ndarray) -> np.ndarray:
    from vdreid_mindspore.infer import forward

    return forward(model, images, train=False)["test_feature"]


def export_model(
    model: MVDModel, fmt: str, path: str | Path, *, example: np.ndarray, tolerance: float
) -> ExportReport:
    """Write ``model``'s feature extractor as ``fmt`` to ``path`` and compare the
    reloaded file's features with the eager model's on ``example``."""
    if fmt not in FORMATS:
        raise ExportError(
            f"the mindspore backend exports {', '.join(FORMATS)}; got format {fmt!r}: pass "
            "--format mindir, or --backend torch for onnx"
        )
    example = checked_normalised(example)
    path = Path(path)
    was_training = model.training
    try:
        write_mindir(model, example, path)
        eager = eager_features(model, example)
    finally:
        model.set_train(was_training)
    exported = run_mindir(path, example)
    max_abs, min_cos = feature_drift(eager, exported)
    return ExportReport(str(path), fmt, max_abs, min_cos, tolerance)
