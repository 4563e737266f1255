"""Host-side augmentations on uint8 NHWC batches, seeded by a numpy Generator.

Each function takes a batch (N, H, W, 3) uint8 and returns a new batch of
the same shape and dtype (the input is never modified), drawing all its
randomness from the ``rng`` it is given, so a (seed, epoch, step) triple
reproduces a batch exactly. They work on pixels before normalisation;
the backends normalise on the device.

- :func:`hflip`: mirror each image with probability p.
- :func:`pad_crop`: zero-pad by ``pad`` pixels on every side, then crop a
  random (H, W) window (torchvision Pad + RandomCrop).
- :func:`random_erasing`: with probability p, fill one random rectangle
  (area 2-40 % of the image, aspect 0.3-3.3; up to 100 draws, as Zhong et
  al.) with a constant colour, by default the ImageNet mean in pixels.
- :func:`random_grey`: with probability p, replace the image by its
  luminance (PIL "L": 0.299 R + 0.587 G + 0.114 B) on all channels.
- :func:`channel_augment`: the CAJ line's ChannelAdapGray: a selected
  image (probability p) draws one of four outcomes with equal chance:
  R, G or B copied to all channels, or (4th) greyscale with probability
  ``grey_p`` (0.2989 R + 0.587 G + 0.114 B), else unchanged. CAJ does this
  on the normalised tensor; here it is done on pixels, which differs by
  the per-channel mean/std affine map.
- :func:`augment`: a preset's recipe (an AugmentConfig): flip, pad+crop,
  then for visible images greyscale and channel augmentation, then erasing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from vdreid.data.images import resize as _resize_one
from vdreid.data.records import Modality
from vdreid.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from vdreid.config import AugmentConfig

#: ImageNet mean in 0..255 pixels, the default erasing fill.
IMAGENET_MEAN_PIXELS = (124, 116, 104)
_LUMA_PIL = np.array([19595, 38470, 7471], dtype=np.uint32)  # PIL convert("L") fixed point, >> 16
_LUMA_CAJ = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)


def check_batch(images: np.ndarray) -> np.ndarray:
    if (
        not isinstance(images, np.ndarray)
        or images.dtype != np.uint8
        or images.ndim != 4
        or images.shape[-1] != 3
    ):
        got = (
            f"{images.dtype} {images.shape}"
            if isinstance(images, np.ndarray)
            else type(images).__name__
        )
        raise DataError(
            f"expected a uint8 batch of shape (N, H, W, 3), got {got}; stack RGB uint8 images first"
        )
    return images


def resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """PIL-bilinear resize of every image to ``size`` = (H, W)."""
    check_batch(images)
    if images.shape[1:3] == tuple(size):
        return images.copy()
    return (
        np.stack([_resize_one(img, size) for img in images])
        if len(images)
        else np.empty((0, *size, 3), np.uint8)
    )


def hflip(images: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    out = check_batch(images).copy()
    _hflip_(out, rng, p)
    return out


def pad_crop(images: np.ndarray, rng: np.random.Generator, pad: int = 10) -> np.ndarray:
    """Zero-pad by ``pad`` and crop back to the original size at a random offset."""
    out = check_batch(images).copy()
    _pad_crop_(out, rng, pad)
    return out


def random_erasing(
    images: np.ndarray,
    rng: np.random.Generator,
    p: float = 0.5,
    *,
    area: tuple[float, float] = (0.02, 0.4),
    aspect: float = 0.3,
    fill: tuple[int, int, int] = IMAGENET_MEAN_PIXELS,
    attempts: int = 100,
) -> np.ndarray:
    out = check_batch(images).copy()
    _erase_(out, rng, p, area=area, aspect=aspect, fill=fill, attempts=attempts)
    return out


def random_grey(images: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    out = check_batch(images).copy()
    _grey_(out, rng, p, np.arange(len(out)))
    return out


def channel_augment(
    images: np.ndarray, rng: np.random.Generator, p: float = 1.0, *, grey_p: float = 0.5
) -> np.ndarray:
    out = check_batch(images).copy()
    _channel_(out, rng, p, np.arange(len(out)), grey_p=grey_p)
    return out


def augment(
    images: np.ndarray,
    modality: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    *,
    inplace: bool = False,
) -> np.ndarray:
    """Apply a preset's host-side recipe; greyscale and channel augmentation touch visible images only.

    ``inplace=True`` reuses ``images`` (a batch the caller owns) instead of
    copying it: every fresh 12 MB batch costs page faults.
    """
    out = check_batch(images) if inplace else check_batch(images).copy()
    visible = np.flatnonzero(np.asarray(modality) == Modality.VISIBLE)
    if np.shape(modality) != (len(out),):
        raise DataError(
            f"modality has shape {np.shape(modality)}, expected ({len(out)},): one code per image"
        )
    if cfg.flip > 0:
        _hflip_(out, rng, cfg.flip)
    if cfg.pad > 0:
        _pad_crop_(out, rng, cfg.pad)
    if cfg.grey > 0:
        _grey_(out, rng, cfg.grey, visible)
    if cfg.channel > 0:
        _channel_(out, rng, cfg.channel, visible)
    if cfg.erasing > 0:
        _erase_(out, rng, cfg.erasing)
    return out


# In-place kernels: each draws the same random numbers whatever it selects.


def _hflip_(out: np.ndarray, rng: np.random.Generator, p: float) -> None:
    for i in np.flatnonzero(rng.random(len(out)) < p):
        # PIL's mirror is ~5x faster than numpy's strided [:, ::-1] copy of 3-byte pixels
        out[i] = np.asarray(Image.fromarray(out[i]).transpose(Image.Transpose.FLIP_LEFT_RIGHT))


def _pad_crop_(out: np.ndarray, rng: np.random.Generator, pad: int) -> None:
    n, h, w, _ = out.shape
    dy = rng.integers(0, 2 * pad + 1, n) - pad  # crop origin relative to the unpadded image
    dx = rng.integers(0, 2 * pad + 1, n) - pad
    # shift each image in place (numpy buffers the overlap), zero what was padding
    for i in range(n):
        y0, x0 = int(dy[i]), int(dx[i])
        if y0 == 0 and x0 == 0:
            continue
        if abs(y0) >= h or abs(x0) >= w:
            out[i] = 0
            continue
        src = out[i, max(y0, 0) : h + min(y0, 0), max(x0, 0) : w + min(x0, 0)]
        out[i, max(-y0, 0) : h + min(-y0, 0), max(-x0, 0) : w + min(-x0, 0)] = src
        out[i, : max(-y0, 0)] = 0
        out[i, h - max(y0, 0) :] = 0
        out[i, :, : max(-x0, 0)] = 0
        out[i, :, w - max(x0, 0) :] = 0


def _erase_(
    out: np.ndarray,
    rng: np.random.Generator,
    p: float,
    *,
    area: tuple[float, float] = (0.02, 0.4),
    aspect: float = 0.3,
    fill: tuple[int, int, int] = IMAGENET_MEAN_PIXELS,
    attempts: int = 100,
) -> None:
    n, h, w, _ = out.shape
    sel = rng.random(n) < p
    target = rng.uniform(area[0], area[1], (n, attempts)) * h * w
    ratio = rng.uniform(aspect, 1.0 / aspect, (n, attempts))
    eh = np.rint(np.sqrt(target * ratio)).astype(np.int64)
    ew = np.rint(np.sqrt(target / ratio)).astype(np.int64)
    fits = (eh < h) & (ew < w)  # the first fitting draw is used, as with sequential attempts
    u = rng.random((n, 2))
    colour = np.asarray(fill, dtype=np.uint8)
    for i in np.flatnonzero(sel & fits.any(axis=1)):
        j = int(np.argmax(fits[i]))
        y = int(u[i, 0] * (h - eh[i, j] + 1))
        x = int(u[i, 1] * (w - ew[i, j] + 1))
        out[i, y : y + eh[i, j], x : x + ew[i, j]] = colour


def _grey_(out: np.ndarray, rng: np.random.Generator, p: float, which: np.ndarray) -> None:
    sel = which[rng.random(len(which)) < p]
    if sel.size:
        luma = (out[sel].astype(np.uint32) @ _LUMA_PIL + 0x8000) >> 16
        out[sel] = luma.astype(np.uint8)[..., None]


def _channel_(
    out: np.ndarray, rng: np.random.Generator, p: float, which: np.ndarray, *, grey_p: float = 0.5
) -> None:
    k = len(which)
    sel = rng.random(k) < p
    choice = rng.integers(0, 4, k)
    grey = rng.random(k) < grey_p
    for c in range(3):
        pick = which[sel & (choice == c)]
        out[pick] = out[pick, :, :, c : c + 1]
    pick = which[sel & (choice == 3) & grey]
    if pick.size:
        luma = np.clip(out[pick].astype(np.float32) @ _LUMA_CAJ, 0, 255)
        out[pick] = luma.astype(np.uint8)[..., None]
