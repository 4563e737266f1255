"""Export a checkpoint's feature extractor and verify it, on any backend.

checkpoint -> spec from its metadata -> backend.build -> set_state ->
backend.export on a seeded batch of rendered people and noise
(verification_batch; vdreid.verified_export: the file is
written beside the output path, run in its runtime and compared with the
eager model, and moved into place only when it passes; drift past the
tolerance is an ExportError and the output path is left as it was) -> report.
The output path is checked first: never the checkpoint itself, not a
folder, writable (vdreid.outputs). A verified export of a run's checkpoint
is recorded in the run folder (workflows/export_log.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from vdreid import outputs, registry
from vdreid.checkpoint import load_checkpoint, model_state
from vdreid.data.synth.person import people
from vdreid.errors import CheckpointError, ConfigError
from vdreid.spec.model import ModelSpec
from vdreid.spec.preprocess import preprocess
from vdreid.verified_export import EXAMPLE_BATCH, EXPORT_TOLERANCE, ExportReport, example_batch
from vdreid.workflows.export_log import record_export


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
    tolerance: float = EXPORT_TOLERANCE,
    batch: int = EXAMPLE_BATCH,
    seed: int = 0,
) -> ExportResult:
    """Export ``checkpoint``'s feature extractor to ``out`` and verify it.

    Raises CheckpointError (missing file, no spec metadata, wrong tensors),
    ConfigError (bad tolerance or batch), OutputError (``out`` is the
    checkpoint, a folder or not writable), ExportError (drift > tolerance;
    ``out`` is then left as it was).
    """
    if not tolerance > 0:
        raise ConfigError(f"tolerance must be > 0, got {tolerance}")
    if batch < 1:
        raise ConfigError(f"the verification batch must hold at least 1 image, got {batch}")
    out = Path(out)  # checked before any work: not the checkpoint, not a folder, writable
    outputs.refuse_input(out, {"--checkpoint": checkpoint}, "--out")
    outputs.check_writable(out, "--out")
    ckpt = load_checkpoint(checkpoint)
    if ckpt.spec is None:
        raise CheckpointError(
            f"{checkpoint} has no model spec in its metadata (key 'vdreid.spec'); "
            "export needs it to rebuild the network: re-save the weights with "
            "vdreid.checkpoint.save_checkpoint(..., spec=spec)"
        )
    b = registry.get(backend)
    fmt = b.export_format(fmt)  # the backend's own format by default
    model = b.build(ckpt.spec, device=device)
    b.set_state(model, model_state(ckpt.tensors))
    example = verification_batch(ckpt.spec, batch, seed)
    report = b.export(model, fmt, out, example=example, tolerance=tolerance)
    result = ExportResult(report, backend, ckpt.spec.preset, ckpt.spec.feature_dim, str(checkpoint))
    record_export(report, backend=backend, checkpoint=checkpoint)  # for `vdreid report`
    return result


def verification_batch(spec: ModelSpec, batch: int, seed: int = 0) -> np.ndarray:
    """What an export is checked on, normalised: rendered people (the synthetic
    datasets' renderer, visible and infrared), then seeded noise, half each
    (one image: a person). Noise alone keeps every map near its mean; people
    drive the batch norms, attention and padding borders as real images do."""
    n_people = (batch + 1) // 2
    size = (spec.input.height, spec.input.width)
    shown = preprocess(spec, people(n_people, size, seed))
    if batch == n_people:
        return shown
    return np.concatenate([shown, example_batch(spec, batch - n_people, seed)])
