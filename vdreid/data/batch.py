"""Sampler indices -> a training batch: images from the cache, labels, modality.

The randomness of a batch's augmentation comes from
``default_rng([seed, epoch, step, rank])``, not from a generator carried
along, so a resumed run (or another rank) reproduces batches exactly.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from vdreid.data.cache import ImageCache
from vdreid.data.transforms import augment
from vdreid.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from vdreid.config import AugmentConfig


@dataclasses.dataclass(frozen=True)
class Batch:
    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) int64, 0..C-1
    modality: np.ndarray  # (N,) int64, visible 0 / infrared 1
    indices: np.ndarray  # (N,) record indices the batch was drawn from

    def as_dict(self) -> dict[str, np.ndarray]:
        """What a backend Trainer.step takes."""
        return {"images": self.images, "labels": self.labels, "modality": self.modality}


class BatchAssembler:
    """Gathers cached images for sampler indices and applies the host-side recipe."""

    def __init__(
        self,
        cache: ImageCache,
        labels: np.ndarray,
        modality: np.ndarray,
        augment_cfg: AugmentConfig | None = None,
        *,
        seed: int = 0,
    ):
        labels, modality = np.asarray(labels, dtype=np.int64), np.asarray(modality, dtype=np.int64)
        if not (len(cache) == len(labels) == len(modality)):
            raise DataError(
                f"cache has {len(cache)} images but {len(labels)} labels and {len(modality)} modality codes; "
                "build the cache from the same records as the labels"
            )
        self.cache, self.labels, self.modality = cache, labels, modality
        self.augment_cfg, self.seed = augment_cfg, seed

    def __call__(
        self, indices: np.ndarray, *, epoch: int = 0, step: int = 0, rank: int = 0
    ) -> Batch:
        idx = np.asarray(indices, dtype=np.int64)
        images = self.cache.take(idx)
        modality = self.modality[idx]
        if self.augment_cfg is not None:
            rng = np.random.default_rng([self.seed, epoch, step, rank])
            images = augment(images, modality, rng, self.augment_cfg, inplace=True)  # take() copied
        return Batch(images=images, labels=self.labels[idx], modality=modality, indices=idx)
