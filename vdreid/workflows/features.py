"""Images -> features through a backend, in batches, with a progress bar.

Images come from the decoded-image cache (uint8 NHWC at the spec's input
size), so evaluation never decodes files twice and never touches a
framework: the backend returns numpy features.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vdreid.backend import Backend
from vdreid.data.cache import ImageCache, default_cache_dir
from vdreid.data.progress import progress_bar
from vdreid.data.records import Record
from vdreid.eval.features import combine_flip


def open_cache(
    records: Sequence[Record],
    size: tuple[int, int],
    root: Path,
    cache_dir: Path | None,
    *,
    progress: bool = True,
) -> ImageCache:
    """The cache of ``records``' images at ``size`` (H, W)."""
    return ImageCache.open(
        [r.path for r in records], size, cache_dir or default_cache_dir(root), progress=progress
    )


def extract_features(
    backend: Backend,
    model: Any,
    cache: ImageCache,
    *,
    batch_size: int = 64,
    flip: bool = False,
    progress: bool = True,
    description: str = "features",
) -> np.ndarray:
    """One feature row per cached image, in cache order; ``flip`` averages
    with the horizontally flipped image's feature (test-time augmentation)."""
    n = len(cache)
    chunks: list[np.ndarray] = []
    with progress_bar(n, description, enabled=progress) as advance:
        for start in range(0, n, batch_size):
            images = cache.take(np.arange(start, min(n, start + batch_size)))
            chunks.append(batch_features(backend, model, images, batch_size=batch_size, flip=flip))
            advance(len(images))
    return np.concatenate(chunks, axis=0)


def batch_features(
    backend: Backend, model: Any, images: np.ndarray, *, batch_size: int = 64, flip: bool = False
) -> np.ndarray:
    """float32 features of uint8 NHWC ``images``; ``flip`` averages with the
    horizontally flipped images' features (test-time augmentation)."""
    f = backend.features(model, images, batch_size=batch_size)
    if flip:
        f = combine_flip(f, backend.features(model, images[:, :, ::-1], batch_size=batch_size))
    return np.asarray(f, dtype=np.float32)
