"""What every backend checks at its door, on the host and written once: a
training batch (so a bad label is a DataError, not a device assert), a
stack of images to extract features from, and normalised images (forward
outputs, export examples). Backends call these first; the core's export
recipe and trainer frame call them for every backend."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from vdreid.errors import DataError


def checked_images(images: np.ndarray, batch_size: int = 1) -> np.ndarray:
    """``images`` as a uint8 (N, H, W, 3) array, for feature extraction in
    chunks of ``batch_size``."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(
            f"expected uint8 images (N, H, W, 3), got {images.dtype} {images.shape}; "
            "decode to RGB uint8 and stack into one NHWC batch"
        )
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    return images


# Images per forward when features run on a CPU. A CPU's time per image
# grows with the batch once its maps outgrow the caches: the official
# features at 256x128, one thread, took 460 ms/image at batch 8 and 655 at
# 32 on torch, 451 and 521 on MindSpore (docs/performance.md). A GPU wants
# the caller's whole batch.
CPU_FEATURE_BATCH = 8


def feature_chunk(batch_size: int, on_cpu: bool) -> int:
    """Images per forward for features asked in batches of ``batch_size``."""
    return min(batch_size, CPU_FEATURE_BATCH) if on_cpu else batch_size


def checked_normalised(images: np.ndarray, *, min_images: int = 1) -> np.ndarray:
    """``images`` as normalised float32 (N, 3, H, W) with N >= ``min_images``
    (2 for a train-mode forward: batch norm needs batch statistics)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 3 or not np.issubdtype(images.dtype, np.floating):
        raise DataError(
            f"expected normalised float32 images (N, 3, H, W), got {images.dtype} {images.shape}; "
            "run vdreid.spec.preprocess on uint8 NHWC batches first"
        )
    if len(images) < min_images:
        raise DataError(f"expected at least {min_images} image(s), got {len(images)}")
    return np.ascontiguousarray(images, dtype=np.float32)


def checked_batch(
    batch: Mapping[str, np.ndarray], num_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, labels, modality) of a training batch for a model of ``num_classes``."""
    images, labels, modality = (np.asarray(batch[k]) for k in ("images", "labels", "modality"))
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(
            f"a training batch's images must be uint8 (N, H, W, 3), got {images.dtype} "
            f"{images.shape}; the data pipeline yields decoded RGB uint8 NHWC batches"
        )
    n, c = len(images), num_classes
    if n < 2:
        raise DataError(
            f"a training batch needs at least 2 images (batch norm uses batch statistics), got {n}"
        )
    if labels.shape != (n,) or modality.shape != (n,):
        raise DataError(
            f"labels and modality must have shape ({n},) for {n} images, got {labels.shape} "
            f"and {modality.shape}"
        )
    if labels.min() < 0 or labels.max() >= c:
        raise DataError(
            f"labels must lie in 0..{c - 1} (the model has {c} classes), got "
            f"{labels.min()}..{labels.max()}; relabel the training identities "
            "(DatasetIndex.train_labels) or build the model for more classes"
        )
    return images, labels, modality
