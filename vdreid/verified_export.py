"""Exported models, verified: one recipe for every backend and format.

The file is written under a temporary name beside the destination, run in
its runtime (onnxruntime, ``mindspore.load`` ...) on a seeded batch, and its
features are compared with the eager model's; only a file within the
tolerance is moved to the destination, atomically. So a file found at the
destination passed, and a failed export never removes or replaces what was
there before.

A backend supplies the three steps that differ (Backend.write_export,
run_export, eager_features); vdreid.backend.Backend.export runs them here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vdreid import outputs
from vdreid.backend_inputs import checked_normalised
from vdreid.errors import ConfigError, ExportError
from vdreid.spec.model import ModelSpec
from vdreid.spec.preprocess import preprocess

#: the largest |exported - eager| feature difference an export may show
EXPORT_TOLERANCE = 1e-4
#: images in the seeded verification batch (a batch size the export's trace never saw)
EXAMPLE_BATCH = 4
COSINE_EPS = 1e-12


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """The result of exporting and verifying a feature extractor."""

    path: str
    format: str
    max_abs_diff: float
    min_cosine: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def feature_drift(eager: np.ndarray, exported: np.ndarray) -> tuple[float, float]:
    """(max abs difference, min row-wise cosine similarity) of two feature batches."""
    a = np.asarray(eager, np.float64)
    b = np.asarray(exported, np.float64)
    if a.shape != b.shape:
        raise ExportError(
            f"the exported model returns features of shape {b.shape}, the eager model {a.shape}; "
            "the export is broken: report it with the checkpoint's spec"
        )
    if a.size == 0:
        return 0.0, 1.0
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    if not np.all(np.isfinite(b)):
        return float("inf"), float("nan")
    cos = np.sum(a * b, axis=1) / np.maximum(
        np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), COSINE_EPS
    )
    return float(np.max(np.abs(a - b))), float(np.min(cos))


def example_batch(spec: ModelSpec, batch: int = EXAMPLE_BATCH, seed: int = 0) -> np.ndarray:
    """Seeded uint8 images at the spec's input size, normalised (float32 NCHW)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (batch, spec.input.height, spec.input.width, 3), dtype=np.uint8)
    return preprocess(spec, images)


def verified_export(
    path: str | os.PathLike[str],
    fmt: str,
    example: np.ndarray,
    *,
    backend: str,
    write: Callable[[Path, np.ndarray], None],
    run: Callable[[Path, np.ndarray], np.ndarray],
    eager: Callable[[np.ndarray], np.ndarray],
    tolerance: float = EXPORT_TOLERANCE,
) -> ExportReport:
    """Write (``write(tmp, example)``), reload and run (``run(tmp, example)``),
    compare with ``eager(example)``, and move the file to ``path`` only when
    the largest difference is within ``tolerance``; ExportError otherwise.

    ``example``: normalised float32 NCHW images. The file is written through
    vdreid.outputs.atomic (a temporary name ending in ``.<fmt>``, removed on
    failure; the exported file gets the umask's mode, whatever mode its
    writer gave it).
    """
    if not tolerance > 0:
        raise ConfigError(f"tolerance must be > 0, got {tolerance}")
    example = checked_normalised(example)
    path = Path(path)
    kept = f"{path} was left as it was" if path.exists() else f"nothing was written to {path}"
    # the temporary name ends in the format's suffix: runtimes such as
    # mindspore.load read only files with it
    with outputs.atomic(path, "exported model", suffix=f".{fmt}") as tmp:
        write(tmp, example)
        max_abs, min_cos = feature_drift(eager(example), run(tmp, example))
        report = ExportReport(str(path), fmt, max_abs, min_cos, tolerance)
        if not report.ok:
            raise ExportError(
                f"the exported {fmt} model drifts from the eager {backend} model: max abs diff "
                f"{max_abs:.3g} > tolerance {tolerance:g} (min cosine {min_cos:.6f}); {kept}. "
                "Re-run on the CPU (--device cpu) or, if the drift is expected (reduced "
                "precision), pass a larger --tolerance"
            )
    return report
