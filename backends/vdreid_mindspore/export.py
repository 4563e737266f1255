"""MindIR export of the feature extractor: writing it and running it again
from the file (the core's recipe, vdreid.verified_export, verifies it
against the eager model and moves it into place).

Input contract of the exported graph (the same as the torch backend's ONNX):
one input, float32 NCHW, already normalised with the spec's mean/std (what
``vdreid.spec.preprocess`` returns), any batch size (the batch axis is
exported dynamic); one output, float32 (batch, dim), the spec's test
feature. The grey view is computed inside the graph.

The exported graph uses MindSpore's native convolutions and max pool,
not the CPU lowerings (lowering.py), so the file is the plain
network on every device. ``mindspore.load`` + ``nn.GraphCell`` run it.
``ms.export`` writes the file read-only for its owner (MindSpore's choice).
The file's ``user_info`` holds vdreid.export_metadata's pairs (input size,
colour order, mean/std, feature layout and distance, version, spec).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mindspore import Tensor, nn

from vdreid.errors import ExportError, first_line
from vdreid.export_metadata import export_metadata
from vdreid_mindspore._quiet import mindspore as ms
from vdreid_mindspore.build import MVDModel
from vdreid_mindspore.lowering import is_lowered, set_lowered

FORMATS = ("mindir",)
SUFFIX = ".mindir"  # the name ms.export writes and mindspore.load reads


class FeatureExtractor(nn.Cell):
    """Wraps the model so the exported graph maps images to the test feature only."""

    def __init__(self, model: MVDModel):
        super().__init__()
        self.model = model

    def construct(self, images: Tensor) -> Tensor:
        return self.model.test_feature(images)


def write_mindir(model: MVDModel, example: np.ndarray, path: Path) -> None:
    """Export FeatureExtractor(model) with a dynamic batch axis to ``path``
    (which ends in ``.mindir``: ms.export appends it to a name without)."""
    if path.suffix != SUFFIX:
        raise ExportError(f"ms.export writes only files named *{SUFFIX}, got {path}")
    extractor = FeatureExtractor(model)
    was_training = model.training
    extractor.set_train(False)
    spec_input = Tensor(shape=[None, *example.shape[1:]], dtype=ms.float32)
    lowered = is_lowered(model)
    set_lowered(model, False)  # native kernels in the file
    try:
        ms.export(
            extractor,
            spec_input,
            file_name=str(path),
            file_format="MINDIR",
            custom_func=lambda proto: proto.user_info.update(export_metadata(model.spec)),
        )
    except Exception as exc:
        raise ExportError(
            f"MindSpore could not export the feature extractor to MindIR: {type(exc).__name__}: "
            f"{first_line(exc)}; report this with the checkpoint's spec (vdreid export prints it)"
        ) from exc
    finally:
        set_lowered(model, lowered)
        model.set_train(was_training)


def run_mindir(path: Path, images: np.ndarray) -> np.ndarray:
    """Features of a normalised float32 NCHW batch from the file (nn.GraphCell)."""
    if path.suffix != SUFFIX:
        raise ExportError(f"mindspore.load reads only files named *{SUFFIX}, got {path}")
    try:
        graph = nn.GraphCell(ms.load(str(path)))
    except Exception as exc:
        raise ExportError(
            f"the exported file {path} does not load in MindSpore: {type(exc).__name__}: "
            f"{first_line(exc)}; export again, and report it if it persists"
        ) from exc
    out = graph(Tensor(np.ascontiguousarray(images, dtype=np.float32)))
    return out.asnumpy().astype(np.float32, copy=False)
