"""Inference: named outputs for parity checks and batched test features.

Both run compiled graphs (GRAPH mode), cached on the model: one per mode
for ``forward`` and one for ``features``, whose last partial batch is
padded to the batch size so that every batch reuses the same graph (eval
mode treats images independently, so the padding changes nothing).
"""

from __future__ import annotations

import numpy as np
from mindspore import Tensor, nn

from vdreid.backend_inputs import checked_images, checked_normalised, feature_chunk
from vdreid_mindspore._quiet import mindspore as ms
from vdreid_mindspore.build import MVDModel


class Outputs(nn.Cell):
    """Every output of the model for normalised images, dropout off."""

    def __init__(self, model: MVDModel):
        super().__init__()
        self.model = model

    @ms.jit
    def construct(self, x: Tensor) -> tuple[Tensor, ...]:
        return self.model(x)


class Features(nn.Cell):
    """uint8 NHWC images -> the test feature (eval mode)."""

    def __init__(self, model: MVDModel):
        super().__init__()
        self.model = model

    @ms.jit
    def construct(self, images: Tensor) -> Tensor:
        return self.model.test_feature(self.model.normalise(images))


def _cached(model: MVDModel, name: str, cls: type[nn.Cell]) -> nn.Cell:
    cells = model.__dict__.setdefault("_vdreid_graphs", {})
    if name not in cells:
        cells[name] = cls(model)
    return cells[name]


def forward(model: MVDModel, images: np.ndarray, *, train: bool = False) -> dict[str, np.ndarray]:
    """Every output for normalised float32 NCHW images, as numpy.

    ``train=True`` normalises with batch statistics and updates the running
    statistics, as a training step does, with dropout off (the oracle's
    convention). The model's train/eval mode is restored afterwards.
    """
    images = checked_normalised(images, min_images=2 if train else 1)
    cell = _cached(model, "outputs", Outputs)
    was_training = model.training
    cell.set_train(train)
    try:
        out = cell(Tensor(images))
    finally:
        model.set_train(was_training)
    return {
        k: v.asnumpy().astype(np.float32, copy=False)
        for k, v in zip(model.output_names(train), out, strict=True)
    }


def features(model: MVDModel, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Test features (the spec's recipe, eval mode) for uint8 NHWC images."""
    images = checked_images(images, batch_size)
    if len(images) == 0:
        return np.zeros((0, model.spec.feature_dim), np.float32)
    cell = _cached(model, "features", Features)
    was_training = model.training
    cell.set_train(False)
    on_cpu = ms.get_context("device_target") == "CPU"
    size = min(feature_chunk(batch_size, on_cpu), len(images))
    chunks = []
    try:
        for start in range(0, len(images), size):
            batch = images[start : start + size]
            n = len(batch)
            if n < size:  # pad: one compiled graph for every batch
                batch = np.concatenate([batch, np.zeros((size - n, *batch.shape[1:]), np.uint8)])
            chunks.append((cell(Tensor(np.ascontiguousarray(batch))), n))
        return np.concatenate([c.asnumpy()[:n] for c, n in chunks]).astype(np.float32, copy=False)
    finally:
        model.set_train(was_training)
