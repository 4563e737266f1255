"""Test-time feature options applied by the caller before distances."""

from __future__ import annotations

import numpy as np

from vdreid.errors import DataError
from vdreid.eval.distance import check_features


def combine_flip(features: np.ndarray, flipped: np.ndarray) -> np.ndarray:
    """Flip test-time augmentation: the mean of the features of each image and of
    its horizontally flipped copy (same row order).

    Scaling changes neither distance's ranking, so the mean ranks as the sum
    some code bases use. Features that were L2-normalised are not
    re-normalised here (the cosine distance normalises anyway).
    """
    f = check_features("features", features)
    g = check_features("flipped features", flipped, dim=f.shape[1])
    if len(g) != len(f):
        raise DataError(
            f"features has {len(f)} rows but flipped features {len(g)}; expected one flipped "
            "feature per image, in the same order"
        )
    return (f + g) * 0.5
