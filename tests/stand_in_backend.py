"""A numpy stand-in for a backend's feature extraction, for tests of the
inference workflows without a framework (imported by the unit tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vdreid.presets import recipe
from vdreid.workflows.model_source import LoadedModel

from fake_backend import FakeBackend


class MeanColourBackend(FakeBackend):
    """features = the image's mean R, G, B, then zeros: shows what the backend saw."""

    name = "numpy-stand-in"

    def __init__(self, dim: int):
        self.dim = dim
        self.batches: list[int] = []

    def features(self, model, images, *, batch_size=64):
        assert images.dtype == np.uint8 and images.shape[1:] == (64, 32, 3)
        self.batches.append(len(images))
        out = np.zeros((len(images), self.dim), np.float32)
        out[:, :3] = images.reshape(len(images), -1, 3).mean(axis=1)
        return out


def stand_in_model(num_classes: int = 2) -> LoadedModel:
    """The tiny preset's spec (input 64x32) with the mean-colour features."""
    spec = recipe("tiny").model_spec(num_classes)
    return LoadedModel(
        MeanColourBackend(spec.feature_dim), None, spec, Path("stand-in.safetensors"), "checkpoint"
    )
