"""Decoding one image file into uint8 RGB, as the official pipeline does.

Infrared images (SYSU's 3-channel jpg, RegDB's 8-bit thermal bmp) are
converted to 3 channels, like PIL's ``convert("RGB")`` in the official
code. Resizing is PIL bilinear to (H, W), the same call torchvision's
``Resize`` makes on a PIL image.

Images whose plain ``convert("RGB")`` would lose information are converted
explicitly, each checked against known pixels in the tests: 16-bit grey
(``I;16``, ``I``) is scaled to 8 bit (65535 -> 255; PIL clips it, so
almost every pixel became white); palette images with transparency and
``PA`` keep their colours (the alpha is dropped, as for RGBA); CMYK uses
the multiplicative formula R = (255 - C)(255 - K) / 255. Floating-point
images are refused. An image of more than MAX_PIXELS pixels is refused
before it is decoded (a guard against decompression bombs).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vdreid.errors import DataError

#: The resampling filter of the official Resize((h, w)) on PIL images.
RESAMPLE = Image.Resampling.BILINEAR
RESAMPLE_NAME = "pil-bilinear"
#: The largest image vdreid decodes (64 MP: a 9000 x 7000 photo; person crops are tiny).
MAX_PIXELS = 64 * 2**20
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _to_rgb(im: Image.Image, path: str | Path) -> Image.Image:
    """``im`` as 8-bit RGB without losing what a plain convert would."""
    if im.mode in _SIXTEEN_BIT:
        grey = np.asarray(im).astype(np.int64)
        if grey.size and (grey.min() < 0 or grey.max() > 65535):
            raise DataError(
                f"image {path} holds {im.mode} values outside 0..65535 "
                f"({grey.min()}..{grey.max()}); expected 8- or 16-bit images: convert it first"
            )
        eight = ((grey * 255 + 32767) // 65535).astype(np.uint8)
        return Image.fromarray(eight).convert("RGB")
    if im.mode == "CMYK":
        cmyk = np.asarray(im).astype(np.uint32)
        keep = 255 - cmyk[..., 3:]
        rgb = ((255 - cmyk[..., :3]) * keep + 127) // 255
        return Image.fromarray(rgb.astype(np.uint8))
    if im.mode == "PA" or (im.mode == "P" and "transparency" in im.info):
        return im.convert("RGBA").convert("RGB")
    if im.mode == "F":
        raise DataError(
            f"image {path} is a floating-point image (mode F); expected 8- or 16-bit images: "
            "convert it to 8-bit first"
        )
    return im.convert("RGB")


def load_image(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """The image at ``path`` as a uint8 (H, W, 3) array, resized to ``size`` = (H, W) if given."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            im = Image.open(path)
        with im:
            width, height = im.size
            if width * height > MAX_PIXELS:
                raise Image.DecompressionBombError(f"{width}x{height}")
            im.load()  # a full decode: truncated files fail here
            rgb = _to_rgb(im, path)
            if size is not None and rgb.size != (size[1], size[0]):
                rgb = rgb.resize((size[1], size[0]), RESAMPLE)
            return np.asarray(rgb, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(
            f"image {path} does not exist; re-read the dataset (its folders changed)"
        ) from None
    except Image.DecompressionBombError as exc:
        raise DataError(
            f"image {path} is too large to decode ({_pixels(exc)} pixels, above vdreid's limit of "
            f"{MAX_PIXELS:,}); person images are small: downscale or remove it"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(
            f"cannot decode image {path} ({type(exc).__name__}: {exc}); expected a readable "
            "JPEG/PNG/BMP file: replace it from the original dataset or remove it"
        ) from None


def _pixels(exc: Exception) -> str:
    """'182,000,000' from our own message ("WxH") or PIL's ("Image size (N pixels) ...")."""
    text = str(exc)
    w, sep, h = text.partition("x")
    if sep and w.isdigit() and h.isdigit():
        return f"{int(w) * int(h):,} ({w}x{h})"
    digits = "".join(c for c in text.split("pixels")[0] if c.isdigit())
    return f"{int(digits):,}" if digits else "too many"


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """PIL-bilinear resize of one uint8 (H, W, 3) array to ``size`` = (H, W)."""
    if image.shape[:2] == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), RESAMPLE), dtype=np.uint8)


def verify_image(path: str | Path) -> None:
    """Raise DataError naming ``path`` unless it decodes fully."""
    load_image(path)
