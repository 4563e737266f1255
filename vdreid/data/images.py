"""Decoding one image file into uint8 RGB, as the official pipeline does.

Infrared images (SYSU's 3-channel jpg, RegDB's 8-bit thermal bmp) are
converted to 3 channels, like PIL's ``convert("RGB")`` in the official
code. Resizing is PIL bilinear to (H, W), the same call torchvision's
``Resize`` makes on a PIL image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vdreid.errors import DataError

#: The resampling filter of the official Resize((h, w)) on PIL images.
RESAMPLE = Image.Resampling.BILINEAR
RESAMPLE_NAME = "pil-bilinear"


def load_image(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """The image at ``path`` as a uint8 (H, W, 3) array, resized to ``size`` = (H, W) if given."""
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB")  # forces a full decode: truncated files fail here
            if size is not None and rgb.size != (size[1], size[0]):
                rgb = rgb.resize((size[1], size[0]), RESAMPLE)
            return np.asarray(rgb, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(
            f"image {path} does not exist; re-read the dataset (its folders changed)"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(
            f"cannot decode image {path} ({type(exc).__name__}: {exc}); expected a readable "
            "JPEG/PNG/BMP file: replace it from the original dataset or remove it"
        ) from None


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """PIL-bilinear resize of one uint8 (H, W, 3) array to ``size`` = (H, W)."""
    if image.shape[:2] == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), RESAMPLE), dtype=np.uint8)


def verify_image(path: str | Path) -> None:
    """Raise DataError naming ``path`` unless it decodes fully."""
    load_image(path)
