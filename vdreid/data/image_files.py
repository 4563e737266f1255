"""People's own image files: listing them, decoding them, telling their modality.

Decoding and resizing are the data layer's (:func:`vdreid.data.images.load_image`,
the call the decoded-image cache makes), so an image embedded from a folder
gives the same feature as the same image in an evaluation. Grey, 16-bit and
palette images become 3-channel RGB as they do there.

The modality of an image nobody labelled is read from its pixels: infrared
cameras (SYSU-MM01's, RegDB's thermal, LLCM's NIR) store one grey channel,
three equal channels once decoded, while a visible camera's colour image
never has three equal channels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from vdreid.data.files import IMAGE_SUFFIXES, is_image_name
from vdreid.data.images import load_image
from vdreid.data.records import Modality
from vdreid.errors import ConfigError, DataError

#: The words users write for a modality (the manifest's and the CLI's).
MODALITY_NAMES = {"visible": Modality.VISIBLE, "infrared": Modality.INFRARED}
#: ``auto``: decide per image from its pixels (:func:`looks_infrared`).
AUTO = "auto"
#: Largest difference between two channels of a pixel (0..255) still read as
#: equal: a grey image saved as 3-channel JPEG may round one channel apart.
GREY_TOLERANCE = 2


def modality_name(modality: Modality) -> str:
    return "infrared" if modality == Modality.INFRARED else "visible"


def parse_modality(text: str, flag: str = "--modality") -> Modality | None:
    """``visible`` / ``infrared`` -> that Modality; ``auto`` -> None (decide per image)."""
    key = text.strip().lower()
    if key == AUTO:
        return None
    if key not in MODALITY_NAMES:
        raise ConfigError(f"{flag} {text!r} is not known; use auto, visible or infrared")
    return MODALITY_NAMES[key]


def list_images(inputs: Sequence[str | Path]) -> list[Path]:
    """The image files ``inputs`` name: a folder gives every image below it
    (recursively, sorted by path, hidden files skipped), a file is taken as
    given. Each file once, in the order first named."""
    if not inputs:
        raise ConfigError("no images given; pass image files or folders of images")
    found: list[Path] = []
    seen: set[str] = set()
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            files = _walk(path)
            if not files:
                raise DataError(
                    f"folder {path} holds no image files (looked for "
                    f"{'/'.join(IMAGE_SUFFIXES)} below it); pass a folder of images or the files"
                )
        elif path.is_file():
            files = [path]
        else:
            raise DataError(f"{path} does not exist; pass image files or folders of images")
        for f in files:
            key = os.path.realpath(f)
            if key not in seen:
                seen.add(key)
                found.append(f.absolute())
    return found


def _walk(folder: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / n for n in filenames if is_image_name(n))
    return sorted(out)


def looks_infrared(image: np.ndarray) -> bool:
    """True when the uint8 (H, W, 3) ``image`` has equal channels (within
    :data:`GREY_TOLERANCE`): what an infrared camera's image decodes to."""
    x = image.astype(np.int16)
    spread = np.maximum(np.abs(x[..., 0] - x[..., 1]), np.abs(x[..., 1] - x[..., 2]))
    return bool(spread.max(initial=0) <= GREY_TOLERANCE)


def read_image(path: str | Path, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """(the image resized to ``size`` = (H, W) as uint8 RGB, its own (width, height))."""
    image = load_image(path, size)  # a DataError naming the file when it does not decode
    with Image.open(path) as im:  # the header only: cheap
        return image, im.size
