"""Export a checkpoint's feature extractor and verify it, on any backend.

checkpoint -> spec from its metadata -> backend.build -> set_state ->
backend.export (writes the file, runs it in its runtime and compares with
the eager model on a seeded batch) -> report. Drift past the tolerance is
an ExportError and the rejected file is removed, so a file left at the
output path is one that passed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from vdreid import registry
from vdreid.backend import ExportReport
from vdreid.checkpoint import load_checkpoint, model_state
from vdreid.errors import CheckpointError, ConfigError, ExportError
from vdreid.spec import ModelSpec, preprocess

DEFAULT_TOLERANCE = 1e-4
EXAMPLE_BATCH = 4
COSINE_EPS = 1e-12


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


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What the export workflow did: the backend's report plus what it exported."""

    report: ExportReport
    backend: str
    preset: str
    feature_dim: int
    checkpoint: str


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    *,
    backend: str = "torch",
    fmt: str | None = None,
    device: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    batch: int = EXAMPLE_BATCH,
    seed: int = 0,
) -> ExportResult:
    """Export ``checkpoint``'s feature extractor to ``out`` and verify it.

    Raises CheckpointError (missing file, no spec metadata, wrong tensors),
    ConfigError (bad tolerance or batch), ExportError (drift > tolerance;
    the file is then removed).
    """
    if not tolerance > 0:
        raise ConfigError(f"tolerance must be > 0, got {tolerance}")
    if batch < 1:
        raise ConfigError(f"the verification batch must hold at least 1 image, got {batch}")
    ckpt = load_checkpoint(checkpoint)
    if ckpt.spec is None:
        raise CheckpointError(
            f"{checkpoint} has no model spec in its metadata (key 'vdreid.spec'); "
            "export needs it to rebuild the network: re-save the weights with "
            "vdreid.checkpoint.save_checkpoint(..., spec=spec)"
        )
    b = registry.get(backend)
    fmt = fmt or b.export_formats[0]  # the backend's own format by default
    model = b.build(ckpt.spec, device=device)
    b.set_state(model, model_state(ckpt.tensors))
    out = Path(out)
    report = b.export(
        model, fmt, str(out), example=example_batch(ckpt.spec, batch, seed), tolerance=tolerance
    )
    if not report.ok:
        out.unlink(missing_ok=True)
        raise ExportError(
            f"the exported {fmt} model drifts from the eager {backend} model: max abs diff "
            f"{report.max_abs_diff:.3g} > tolerance {tolerance:g} (min cosine {report.min_cosine:.6f}); "
            f"{out} was removed. Re-run on the CPU (--device cpu) or, if the drift is expected "
            "(reduced precision), pass a larger --tolerance"
        )
    return ExportResult(report, backend, ckpt.spec.preset, ckpt.spec.feature_dim, str(checkpoint))
