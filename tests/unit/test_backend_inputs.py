"""The host-side checks every backend runs on what it is given."""

from __future__ import annotations

import numpy as np
import pytest

from vdreid.backend_inputs import (
    CPU_FEATURE_BATCH,
    checked_batch,
    checked_images,
    checked_normalised,
    feature_chunk,
)
from vdreid.errors import DataError


def _batch(n: int = 4, **change) -> dict[str, np.ndarray]:
    batch = {
        "images": np.zeros((n, 8, 4, 3), np.uint8),
        "labels": np.arange(n, dtype=np.int64) % 2,
        "modality": np.arange(n, dtype=np.int64) % 2,
    }
    return {**batch, **change}


def test_a_good_batch_passes_through():
    images, labels, modality = checked_batch(_batch(), num_classes=2)
    assert images.shape == (4, 8, 4, 3) and labels.tolist() == [0, 1, 0, 1]
    assert modality.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            {"images": np.zeros((4, 8, 4, 3), np.float32)},
            r"must be uint8 \(N, H, W, 3\), got float32",
        ),
        ({"images": np.zeros((4, 3, 8, 4), np.uint8)}, r"got uint8 \(4, 3, 8, 4\)"),
        ({"labels": np.array([0, 1, 0, 2])}, r"labels must lie in 0\.\.1 .* got 0\.\.2"),
        ({"labels": np.array([0, -1, 0, 1])}, r"got -1\.\.1"),
        ({"modality": np.zeros(3, np.int64)}, r"shape \(4,\) for 4 images, got \(4,\) and \(3,\)"),
    ],
)
def test_a_bad_batch_names_what_it_got(change, match):
    with pytest.raises(DataError, match=match):
        checked_batch(_batch(**change), num_classes=2)


def test_batch_norm_needs_two_images():
    with pytest.raises(DataError, match="at least 2 images .* got 1"):
        checked_batch(_batch(1), num_classes=2)


def test_feature_images_are_uint8_nhwc_and_chunks_positive():
    images = np.zeros((3, 8, 4, 3), np.uint8)
    assert checked_images(images, 2) is images
    with pytest.raises(DataError, match=r"expected uint8 images \(N, H, W, 3\), got float64"):
        checked_images(images.astype(np.float64), 2)
    with pytest.raises(DataError, match="batch_size must be >= 1, got 0"):
        checked_images(images, 0)


def test_normalised_images_are_float_nchw_with_enough_images():
    images = np.zeros((2, 3, 8, 4), np.float64)
    out = checked_normalised(images, min_images=2)
    assert out.dtype == np.float32 and out.shape == (2, 3, 8, 4)
    with pytest.raises(DataError, match=r"normalised float32 images \(N, 3, H, W\), got uint8"):
        checked_normalised(images.astype(np.uint8))
    with pytest.raises(DataError, match=r"got float64 \(2, 8, 4, 3\)"):
        checked_normalised(images.transpose(0, 2, 3, 1))
    with pytest.raises(DataError, match="at least 2 image"):
        checked_normalised(images[:1], min_images=2)


def test_cpu_features_use_small_chunks_and_gpus_the_whole_batch():
    assert feature_chunk(64, on_cpu=True) == CPU_FEATURE_BATCH == 8
    assert feature_chunk(3, on_cpu=True) == 3
    assert feature_chunk(64, on_cpu=False) == 64
