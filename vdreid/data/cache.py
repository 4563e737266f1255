"""Decoded images at the training size, memory-mapped, so training never decodes.

An :class:`ImageCache` is one ``images.npy`` (N, H, W, 3) uint8 array, in
the order of the file list it was built from, plus ``meta.json``. Its
folder under the cache directory is named after the file list and the
size (``<sha1 of the paths>-<H>x<W>``); ``meta.json`` holds the
fingerprint of the files' current state (path, byte size, mtime) and the
resize settings. Opening a cache whose fingerprint no longer matches
(a file was replaced, touched, resized) rebuilds it in place, and so does
a damaged one (an ``images.npy`` that no longer loads, or of the wrong
size or shape), with one line saying so. Writes go through vdreid.outputs:
temporary names first, renamed into place, so an interrupted build is never
mistaken for a complete one; the disk space is checked and allocated
before the first image is decoded, so a full disk is a clear error, not a
SIGBUS in the middle of the build.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from vdreid import outputs
from vdreid.data.images import RESAMPLE_NAME, load_image
from vdreid.data.progress import note, progress_bar
from vdreid.errors import DataError, OutputError

#: Bump when the stored layout or the decoding changes: old caches rebuild.
FORMAT = 1
_CHUNK = 256
#: How the user chooses another cache folder, named by every error about it.
CHOOSE = "pass --cache-dir DIR (cache_dir in a training config) to use another folder"


def user_cache_home() -> Path:
    """$XDG_CACHE_HOME/vdreid, or ~/.cache/vdreid (the XDG base directory rule)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "vdreid"


def default_cache_dir(root: str | Path) -> Path:
    """The dataset's cache folder in the user's cache, keyed by its absolute
    path: ``<user cache>/images/<folder name>-<sha1 of the path>``. Never
    inside the dataset, which is often read-only or shared."""
    root = Path(os.path.abspath(root))  # ".." removed: one key per folder
    key = hashlib.sha1(str(root).encode()).hexdigest()[:12]
    return user_cache_home() / "images" / f"{root.name or 'root'}-{key}"


def fingerprint(paths: Sequence[str], size: tuple[int, int]) -> str:
    """sha1 over the settings and every file's (path, byte size, mtime in ns)."""
    h = hashlib.sha1(f"vdreid-cache/{FORMAT}/{size[0]}x{size[1]}/{RESAMPLE_NAME}\n".encode())
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise DataError(
                f"image {p} does not exist; re-read the dataset (its folders changed)"
            ) from None
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _list_key(paths: Sequence[str], size: tuple[int, int]) -> str:
    h = hashlib.sha1("\n".join(paths).encode())
    return f"{h.hexdigest()[:16]}-{size[0]}x{size[1]}"


class ImageCache:
    """Read-only (N, H, W, 3) uint8 images, row i = ``paths[i]`` decoded and resized."""

    def __init__(
        self,
        folder: Path,
        paths: tuple[str, ...],
        size: tuple[int, int],
        fingerprint: str,
        built: bool,
    ):
        self.folder = folder
        self.paths = paths
        self.size = size
        self.fingerprint = fingerprint
        #: True when this open had to (re)build the cache.
        self.built = built
        self.images: np.ndarray = np.load(folder / "images.npy", mmap_mode="r")
        if self.images.shape != (len(paths), size[0], size[1], 3) or self.images.dtype != np.uint8:
            raise DataError(
                f"cache {folder / 'images.npy'} holds {self.images.dtype} {self.images.shape}, expected uint8 "
                f"{(len(paths), size[0], size[1], 3)}; delete the folder {folder} to rebuild it"
            )

    @classmethod
    def open(
        cls,
        paths: Sequence[str | Path],
        size: tuple[int, int],
        cache_dir: str | Path,
        *,
        workers: int = 1,
        progress: bool = True,
    ) -> ImageCache:
        """The cache of ``paths`` at ``size`` = (H, W) under ``cache_dir``, built or rebuilt when needed."""
        files = tuple(str(p) for p in paths)
        if not files:
            raise DataError("cannot cache an empty image list; the dataset split has no images")
        size = (int(size[0]), int(size[1]))
        folder = Path(cache_dir) / _list_key(files, size)
        fp = fingerprint(files, size)
        if _stored_fingerprint(folder) == fp:
            damage = _damage(folder, (len(files), *size, 3))
            if damage is None:
                return cls(folder, files, size, fp, False)
            note(f"the image cache {folder} is damaged ({damage}): rebuilding it")
        try:
            _build(folder, files, size, fp, workers=workers, progress=progress)
        except OutputError as exc:  # unwritable, full: say how to put the cache elsewhere
            raise exc if "--cache-dir" in str(exc) else OutputError(f"{exc}; {CHOOSE}") from None
        return cls(folder, files, size, fp, True)

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, indices: np.ndarray) -> np.ndarray:
        """A contiguous in-memory copy of rows ``indices`` (N, H, W, 3) uint8."""
        return np.take(self.images, np.asarray(indices, dtype=np.int64), axis=0)


def _stored_fingerprint(folder: Path) -> str | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if not (folder / "images.npy").is_file():
        return None
    return meta.get("fingerprint")


def _damage(folder: Path, shape: tuple[int, ...]) -> str | None:
    """Why the complete-looking cache in ``folder`` cannot be used, or None."""
    try:
        images = np.load(folder / "images.npy", mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        return f"images.npy does not load: {exc}"
    if images.shape != shape or images.dtype != np.uint8:
        return f"images.npy holds {images.dtype} {images.shape}, expected uint8 {shape}"
    return None


def _build(
    folder: Path,
    paths: tuple[str, ...],
    size: tuple[int, int],
    fp: str,
    *,
    workers: int,
    progress: bool,
) -> None:
    outputs.make_folder(folder, "the image cache folder")
    (folder / "meta.json").unlink(missing_ok=True)  # from now on the cache is incomplete
    todo = f"free some space there, or {CHOOSE}"
    chunks = [(i, min(i + _CHUNK, len(paths))) for i in range(0, len(paths), _CHUNK)]
    with outputs.atomic(folder / "images.npy", "image cache") as tmp:
        arr = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size[0], size[1], 3)
        )
        del arr  # workers reopen the file; the header is written
        outputs.reserve(tmp, os.path.getsize(tmp), "image cache", todo)
        with progress_bar(
            len(paths), f"caching {len(paths)} images at {size[0]}x{size[1]}", enabled=progress
        ) as advance:
            if workers <= 1 or len(chunks) == 1:
                for lo, hi in chunks:
                    advance(_fill(str(tmp), paths[lo:hi], lo, size))
            else:
                with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                    futs = [
                        pool.submit(_fill, str(tmp), paths[lo:hi], lo, size) for lo, hi in chunks
                    ]
                    for fut in as_completed(futs):
                        advance(fut.result())
    meta = {
        "format": FORMAT,
        "fingerprint": fp,
        "size": list(size),
        "resample": RESAMPLE_NAME,
        "count": len(paths),
    }
    outputs.write_text(folder / "meta.json", json.dumps(meta, indent=1), "image cache index")


def _fill(npy: str, paths: Sequence[str], start: int, size: tuple[int, int]) -> int:
    """Decode ``paths`` into rows ``start...`` of the open .npy file (runs in workers too)."""
    out = np.load(npy, mmap_mode="r+")
    for i, p in enumerate(paths):
        out[start + i] = load_image(p, size)
    out.flush()
    del out
    return len(paths)
