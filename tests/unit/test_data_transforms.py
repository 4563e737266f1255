"""Host-side transforms and batch assembly: shapes, dtypes, exact effects, seeded determinism."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vdreid.config import AugmentConfig
from vdreid.data import transforms as T
from vdreid.data.batch import BatchAssembler
from vdreid.data.cache import ImageCache
from vdreid.errors import DataError

N, H, W = 16, 20, 10


@pytest.fixture
def batch() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (N, H, W, 3), dtype=np.uint8)


ALL = {
    "hflip": lambda x, r: T.hflip(x, r, 0.5),
    "pad_crop": lambda x, r: T.pad_crop(x, r, 3),
    "erasing": lambda x, r: T.random_erasing(x, r, 0.5),
    "grey": lambda x, r: T.random_grey(x, r, 0.5),
    "channel": lambda x, r: T.channel_augment(x, r, 1.0),
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_shape_dtype_determinism_and_no_mutation(name, batch):
    before = batch.copy()
    a = ALL[name](batch, np.random.default_rng(4))
    b = ALL[name](batch, np.random.default_rng(4))
    c = ALL[name](batch, np.random.default_rng(5))
    assert a.shape == batch.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(batch, before)


def test_hflip_mirrors_exactly_the_selected_images(batch):
    out = T.hflip(batch, np.random.default_rng(1), 0.5)
    flipped = [i for i in range(N) if np.array_equal(out[i], batch[i, :, ::-1])]
    kept = [i for i in range(N) if np.array_equal(out[i], batch[i])]
    assert sorted(flipped + kept) == list(range(N)) and 0 < len(flipped) < N
    assert np.array_equal(T.hflip(batch, np.random.default_rng(1), 1.0), batch[:, :, ::-1])


def test_pad_crop_is_a_window_of_the_zero_padded_image(batch):
    pad = 4
    out = T.pad_crop(batch, np.random.default_rng(2), pad)
    draws = np.random.default_rng(2)
    oy, ox = draws.integers(0, 2 * pad + 1, N), draws.integers(0, 2 * pad + 1, N)
    padded = np.pad(batch, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    for i in range(N):
        assert np.array_equal(out[i], padded[i, oy[i] : oy[i] + H, ox[i] : ox[i] + W])


def test_random_erasing_fills_one_rectangle_with_the_mean(batch):
    out = T.random_erasing(batch, np.random.default_rng(3), 1.0, fill=(1, 2, 3))
    for i in range(N):
        ys, xs = np.nonzero(np.any(out[i] != batch[i], axis=-1))
        assert ys.size, "every image is erased at p=1 (the first fitting draw is used)"
        box = out[i, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        assert np.all(box == [1, 2, 3])
        area = box.shape[0] * box.shape[1] / (H * W)
        assert 0.0 < area <= 0.4 + 0.2  # rounding of the side lengths


def test_random_grey_matches_pil_luminance(batch):
    out = T.random_grey(batch, np.random.default_rng(0), 1.0)
    ref = np.stack([np.asarray(Image.fromarray(x).convert("L")) for x in batch])
    assert all(np.array_equal(out[..., c], ref) for c in range(3))


def test_channel_augment_outcomes(batch):
    out = T.channel_augment(batch, np.random.default_rng(6), 1.0, grey_p=0.5)
    grey = np.clip(
        batch.astype(np.float32) @ np.array([0.2989, 0.587, 0.114], np.float32), 0, 255
    ).astype(np.uint8)
    kinds = []
    for i in range(N):
        if np.array_equal(out[i], batch[i]):
            kinds.append("same")
        elif np.array_equal(out[i], grey[i][..., None].repeat(3, -1)):
            kinds.append("grey")
        else:
            c = next(
                c
                for c in range(3)
                if np.array_equal(out[i], batch[i, :, :, c : c + 1].repeat(3, -1))
            )
            kinds.append("RGB"[c])
    assert {"R", "G", "B"} <= set(kinds)
    assert np.array_equal(T.channel_augment(batch, np.random.default_rng(6), 0.0), batch)


def test_augment_greys_visible_images_only(batch):
    modality = np.array([0, 1] * (N // 2))
    out = T.augment(batch, modality, np.random.default_rng(0), AugmentConfig(flip=0.0, grey=1.0))
    assert np.array_equal(out[1::2], batch[1::2])
    assert np.all(out[0::2, ..., 0] == out[0::2, ..., 2])
    with pytest.raises(DataError, match=r"modality has shape \(3,\), expected \(16,\)"):
        T.augment(batch, modality[:3], np.random.default_rng(0), AugmentConfig())


def test_bad_batches_are_refused(batch):
    with pytest.raises(
        DataError, match=r"expected a uint8 batch of shape \(N, H, W, 3\), got float32"
    ):
        T.hflip(batch.astype(np.float32), np.random.default_rng(0))
    with pytest.raises(DataError, match=r"got uint8 \(20, 10, 3\)"):
        T.hflip(batch[0], np.random.default_rng(0))


def test_resize_is_pil_bilinear(batch):
    out = T.resize(batch, (8, 4))
    ref = np.asarray(Image.fromarray(batch[3]).resize((4, 8), Image.BILINEAR))
    assert out.shape == (N, 8, 4, 3) and np.array_equal(out[3], ref)


def test_batch_assembler_is_a_function_of_seed_epoch_and_step(tmp_path, batch):
    paths = []
    for i in range(N):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(batch[i]).save(paths[-1])
    cache = ImageCache.open(paths, (H, W), tmp_path / "cache", progress=False)
    labels, modality = np.arange(N) // 2, np.arange(N) % 2
    assemble = BatchAssembler(cache, labels, modality, AugmentConfig(flip=0.5, pad=2), seed=3)
    idx = np.array([5, 2, 2, 9])
    a, b = assemble(idx, epoch=1, step=4), assemble(idx, epoch=1, step=4)
    assert (
        np.array_equal(a.images, b.images)
        and a.images.dtype == np.uint8
        and a.images.shape == (4, H, W, 3)
    )
    assert not np.array_equal(a.images, assemble(idx, epoch=1, step=5).images)
    assert a.labels.tolist() == [2, 1, 1, 4] and a.modality.tolist() == [1, 0, 0, 1]
    assert set(a.as_dict()) == {"images", "labels", "modality"}
    plain = BatchAssembler(cache, labels, modality)(idx)
    assert np.array_equal(plain.images, batch[idx])
    assert not cache.images.flags.writeable  # augmentation never writes into the cache
    with pytest.raises(DataError, match="cache has 16 images but 3 labels"):
        BatchAssembler(cache, labels[:3], modality[:3])
