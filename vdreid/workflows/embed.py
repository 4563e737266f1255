"""Images -> features with a trained model, saved with an index of what was embedded.

``vdreid embed`` and ``vdreid search`` call this. Images are decoded and
resized by the data layer (as the cache does for evaluation), several at a
time in threads (PIL releases the GIL while it decodes), one batch ahead of
the backend, so the backend's feature speed sets the pace.

An embeddings file is ``F.safetensors`` (tensor ``features``, float32
(N, D); metadata: the model's spec hash, preset, distance, input size) or
``F.npy`` (the array alone), with ``F.csv`` beside it: one row per feature
row, columns ``path`` (absolute), ``modality`` (visible / infrared),
``width`` and ``height`` (the file's own size, before resizing).
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save

from vdreid import __version__, outputs
from vdreid.data.image_files import MODALITY_NAMES, looks_infrared, modality_name, read_image
from vdreid.data.progress import progress_bar
from vdreid.data.records import Modality
from vdreid.errors import DataError
from vdreid.workflows.model_source import LoadedModel

FEATURES = "features"
SUFFIXES = (".safetensors", ".npy")
INDEX_COLUMNS = ("path", "modality", "width", "height")
#: Batches decoded ahead of the one the backend is working on.
AHEAD = 2
#: Decoding threads by default (more rarely helps: the backend shares the cores).
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)


@dataclasses.dataclass(frozen=True)
class ImageEntry:
    """One embedded image: its file, modality and own size (width, height)."""

    path: str
    modality: Modality
    width: int
    height: int


@dataclasses.dataclass(frozen=True)
class Embeddings:
    """Feature rows and the images they belong to (same order)."""

    features: np.ndarray
    images: tuple[ImageEntry, ...]
    meta: dict[str, str]  # spec_hash, preset, distance, input_size, flip, model, vdreid

    def __post_init__(self) -> None:
        if len(self.features) != len(self.images):
            raise DataError(
                f"{len(self.features)} feature rows for {len(self.images)} images; expected one "
                "row per image"
            )

    def counts(self) -> dict[str, int]:
        """Images per modality name."""
        return {
            name: sum(e.modality == m for e in self.images) for name, m in MODALITY_NAMES.items()
        }

    def modalities(self) -> np.ndarray:
        return np.fromiter((int(e.modality) for e in self.images), np.int64, len(self.images))


def embed_images(
    model: LoadedModel,
    paths: Sequence[Path],
    *,
    modality: Modality | None = None,
    batch_size: int = 64,
    flip: bool = False,
    workers: int = DEFAULT_WORKERS,
    progress: bool = True,
    description: str = "embedding",
) -> Embeddings:
    """Features of every file in ``paths``; ``modality`` None decides per image
    (equal channels: infrared)."""
    if batch_size < 1 or workers < 1:
        raise DataError(f"batch_size and workers must be >= 1, got {batch_size} and {workers}")
    n = len(paths)
    rows = np.empty((n, model.spec.feature_dim), np.float32)
    entries: list[ImageEntry] = []
    with progress_bar(n, f"{description} {n} images", enabled=progress) as advance:
        for images, sizes in _decoded_batches(paths, model.input_size, batch_size, workers):
            start = len(entries)
            rows[start : start + len(images)] = model.features(
                images, batch_size=batch_size, flip=flip
            )
            for path, image, (w, h) in zip(paths[start:], images, sizes, strict=False):
                m = modality if modality is not None else _pixel_modality(image)
                entries.append(ImageEntry(str(path), m, int(w), int(h)))
            advance(len(images))
    meta = {
        "spec_hash": model.spec_hash,
        "preset": model.spec.preset,
        "distance": model.distance,
        "input_size": f"{model.input_size[0]}x{model.input_size[1]}",
        "flip": str(flip).lower(),
        "model": model.describe(),
        "vdreid": __version__,
    }
    return Embeddings(rows, tuple(entries), meta)


def _pixel_modality(image: np.ndarray) -> Modality:
    return Modality.INFRARED if looks_infrared(image) else Modality.VISIBLE


def _decoded_batches(
    paths: Sequence[Path], size: tuple[int, int], batch_size: int, workers: int
) -> Iterator[tuple[np.ndarray, list[tuple[int, int]]]]:
    """(uint8 images at ``size``, their own sizes) per batch, decoded ahead in threads."""
    batches = (paths[i : i + batch_size] for i in range(0, len(paths), batch_size))
    pool = ThreadPoolExecutor(workers, thread_name_prefix="vdreid-decode")
    pending: collections.deque[list[Future]] = collections.deque()
    try:
        for batch in batches:
            pending.append([pool.submit(read_image, p, size) for p in batch])
            if len(pending) <= AHEAD:
                continue
            yield _collect(pending.popleft())
        while pending:
            yield _collect(pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _collect(futures: list[Future]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    done = [f.result() for f in futures]  # re-raises a DataError naming the file
    return np.stack([image for image, _ in done]), [s for _, s in done]


def index_path(path: Path) -> Path:
    """The CSV index beside an embeddings file."""
    return path.with_suffix(".csv")


def check_embeddings_path(path: Path) -> None:
    if path.suffix.lower() not in SUFFIXES:
        index = f"{path.stem or 'F'}.csv"
        raise DataError(
            f"embeddings file {path}: expected a {' or '.join(SUFFIXES)} file (features), "
            f"with its index {index} beside it"
        )


def save_embeddings(embeddings: Embeddings, path: Path) -> tuple[Path, Path]:
    """Write the features to ``path`` (.safetensors or .npy) and the index beside it."""
    path = Path(path)
    check_embeddings_path(path)
    features = np.ascontiguousarray(embeddings.features, dtype=np.float32)
    if path.suffix.lower() == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, features)
        data = buffer.getvalue()
    else:
        meta = {f"vdreid.{k}": v for k, v in embeddings.meta.items()}
        data = save({FEATURES: features}, metadata=meta)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    for e in embeddings.images:
        writer.writerow([e.path, modality_name(e.modality), e.width, e.height])
    index = index_path(path)
    outputs.write_bytes(path, data, "embeddings file")
    outputs.write_text(index, text.getvalue(), "embeddings index")
    return path, index


def load_embeddings(path: Path) -> Embeddings:
    """Read what :func:`save_embeddings` wrote (features and index)."""
    path = Path(path)
    check_embeddings_path(path)
    if not path.is_file():
        raise DataError(f"embeddings file {path} does not exist; write one with `vdreid embed`")
    meta: dict[str, str] = {}
    try:
        if path.suffix.lower() == ".npy":
            features = np.load(path, allow_pickle=False)
        else:
            with safe_open(str(path), framework="numpy") as fh:
                raw = dict(fh.metadata() or {})
                features = fh.get_tensor(FEATURES)
            meta = {k.removeprefix("vdreid."): v for k, v in raw.items()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(
            f"{path} is not an embeddings file written by `vdreid embed` ({exc}); write it again"
        ) from None
    if features.ndim != 2:
        raise DataError(f"{path} holds an array of shape {features.shape}; expected (images, dim)")
    images = _read_index(index_path(path))
    if len(images) != len(features):
        raise DataError(
            f"{path} holds {len(features)} feature rows but its index {index_path(path)} lists "
            f"{len(images)} images; the two files belong together: write them again"
        )
    return Embeddings(features, images, meta)


def _read_index(index: Path) -> tuple[ImageEntry, ...]:
    try:
        with open(index, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in INDEX_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(
                    f"embeddings index {index} lacks column(s) {', '.join(missing)}; expected "
                    f"{', '.join(INDEX_COLUMNS)} (as `vdreid embed` writes it)"
                )
            return tuple(_entry(row, index, i) for i, row in enumerate(reader, start=2))
    except FileNotFoundError:
        raise DataError(
            f"embeddings index {index} does not exist; `vdreid embed` writes it beside the "
            "features: keep the two files together"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read embeddings index {index}: {exc}") from None


def _entry(row: dict[str, str], index: Path, line: int) -> ImageEntry:
    modality = MODALITY_NAMES.get((row["modality"] or "").strip().lower())
    size = (row["width"] or "", row["height"] or "")
    if modality is None or not all(s.strip().isdigit() for s in size):
        raise DataError(
            f"{index}:{line}: modality {row['modality']!r}, width {size[0]!r}, height {size[1]!r}; "
            "expected visible or infrared and two integers"
        )
    return ImageEntry(row["path"], modality, int(size[0]), int(size[1]))
