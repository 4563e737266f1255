"""Inference: named outputs for parity checks and batched test features."""

from __future__ import annotations

import numpy as np
import torch

from vdreid.backend_inputs import checked_images, checked_normalised, feature_chunk
from vdreid_torch.build import MVDModel


def _device(model: MVDModel) -> torch.device:
    return next(model.parameters()).device


def forward(model: MVDModel, images: np.ndarray, *, train: bool = False) -> dict[str, np.ndarray]:
    """Every output for normalised float32 NCHW images, as numpy.

    ``train=True`` normalises with batch statistics and updates the running
    statistics, as a training step does, with dropout off so that the
    result is deterministic (the oracle's convention); the model's own
    dropout setting is restored afterwards.
    """
    images = checked_normalised(images, min_images=2 if train else 1)
    x = torch.as_tensor(images, dtype=torch.float32, device=_device(model))
    was_training = model.training
    dropout = [m.dropout_on for m in model.classifiers()]
    model.train(train)
    model.set_dropout(False)
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        model.train(was_training)
        for m, on in zip(model.classifiers(), dropout, strict=True):
            m.dropout_on = on
    return {k: v.float().cpu().numpy() for k, v in out.items()}


def features(model: MVDModel, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Test features (the spec's recipe, eval mode) for uint8 NHWC images."""
    images = checked_images(images, batch_size)
    device = _device(model)
    size = feature_chunk(batch_size, on_cpu=device.type == "cpu")
    was_training = model.training
    model.eval()
    chunks = []
    try:
        with torch.inference_mode():
            for start in range(0, len(images), size):
                batch = torch.from_numpy(np.ascontiguousarray(images[start : start + size]))
                x = model.normalise(batch.to(device, non_blocking=True))
                chunks.append(model.test_feature(x).float())  # stays on the device
    finally:
        model.train(was_training)
    if not chunks:
        return np.zeros((0, model.spec.feature_dim), np.float32)
    return torch.cat(chunks).cpu().numpy()
