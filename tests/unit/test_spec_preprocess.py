"""Numpy normalisation and the three grey variants."""

from __future__ import annotations

import numpy as np
import pytest

from vdreid.errors import DataError
from vdreid.presets import recipe
from vdreid.spec import preprocess, to_grey


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(2, 5, 4, 3), dtype=np.uint8)


def test_preprocess_normalises_per_channel(images):
    spec = recipe("tiny").model_spec(3)
    x = preprocess(spec, images)
    assert x.dtype == np.float32 and x.shape == (2, 3, 5, 4)
    for c in range(3):
        want = (images[..., c] / 255.0 - spec.input.mean[c]) / spec.input.std[c]
        np.testing.assert_allclose(x[:, c], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 5, 4, 3), np.float32),
        np.zeros((5, 4, 3), np.uint8),
        np.zeros((2, 3, 5, 4), np.uint8),
    ],
)
def test_preprocess_rejects_wrong_batches(bad):
    with pytest.raises(DataError, match="expected uint8"):
        preprocess(recipe("tiny").model_spec(3), bad)


@pytest.mark.parametrize(("preset", "blue"), [("official", 0.1140), ("msport", 0.1440)])
def test_grey_on_normalised_tensor(images, preset, blue):
    spec = recipe(preset).model_spec(3)
    x = preprocess(spec, images)
    g = to_grey(spec, x)
    want = 0.2989 * x[:, 0] + 0.5870 * x[:, 1] + blue * x[:, 2]
    for c in range(3):
        np.testing.assert_allclose(g[:, c], want, rtol=1e-5, atol=1e-6)


def test_paper_grey_is_bt601_in_pixel_space(images):
    spec = recipe("paper").model_spec(3)
    g = to_grey(spec, preprocess(spec, images))
    y = (0.299 * images[..., 0] + 0.587 * images[..., 1] + 0.114 * images[..., 2]) / 255.0
    for c in range(3):  # de-normalising channel c of the result gives back the luma
        np.testing.assert_allclose(g[:, c] * spec.input.std[c] + spec.input.mean[c], y, atol=1e-5)
    # a grey pixel stays the same pixel
    flat = np.full((1, 2, 2, 3), 77, np.uint8)
    x = preprocess(spec, flat)
    np.testing.assert_allclose(to_grey(spec, x), x, atol=1e-5)


def test_to_grey_rejects_nhwc():
    with pytest.raises(DataError):
        to_grey(recipe("tiny").model_spec(3), np.zeros((1, 4, 4, 3), np.float32))
