"""Input normalisation and grey conversion in numpy.

Backends do the same on the device (vectorised) and test against these.
"""

from __future__ import annotations

import numpy as np

from vdreid.errors import DataError
from vdreid.spec.model import ModelSpec


def _channel(values: tuple[float, float, float], dtype: np.dtype | type = np.float32) -> np.ndarray:
    return np.asarray(values, dtype).reshape(1, 3, 1, 1)


def preprocess(spec: ModelSpec, images: np.ndarray) -> np.ndarray:
    """uint8 NHWC RGB -> float32 NCHW, (x / 255 - mean) / std per channel.

    Sizes are not checked against spec.input: resizing belongs to the data
    transforms, and the oracle runs on smaller inputs too.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(
            f"expected uint8 images of shape (N, H, W, 3), got {images.dtype} {images.shape}; "
            "decode to RGB uint8 and stack into one NHWC batch"
        )
    x = images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    return (x - _channel(spec.input.mean)) / _channel(spec.input.std)


def to_grey(spec: ModelSpec, x: np.ndarray) -> np.ndarray:
    """Normalised float NCHW -> its grey view (same dtype), repeated to 3 channels.

    space "normalised": g = sum_c k_c x_c on the normalised tensor, every
    channel = g. space "pixel": p = x * std + mean, y = sum_c k_c p_c, then
    channel c = (y - mean_c) / std_c.
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise DataError(f"expected a (N, 3, H, W) batch, got shape {x.shape}; run preprocess first")
    k = _channel(spec.grey.coefficients, x.dtype)
    if spec.grey.space == "normalised":
        g = np.sum(x * k, axis=1, keepdims=True)
        return np.repeat(g, 3, axis=1)
    mean, std = _channel(spec.input.mean, x.dtype), _channel(spec.input.std, x.dtype)
    y = np.sum((x * std + mean) * k, axis=1, keepdims=True)
    return (y - mean) / std
