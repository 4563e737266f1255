"""Checkpoints: one safetensors file of canonical names -> arrays + string metadata.

Layout:
- model tensors under their canonical names (``V.backbone.conv1.weight``);
- other state under a namespace prefix with "/" (``optim/step``,
  ``optim/m/V.head.fc1.weight``); canonical names never contain "/";
- metadata: ``vdreid.spec`` (ModelSpec JSON), ``vdreid.spec_hash``,
  ``vdreid.version``, ``vdreid.backend`` (the writer) and the caller's own
  string pairs (keys must not start with "vdreid.").

Writes are atomic (vdreid.outputs): a temporary file in the target folder,
fsync, then os.replace, so a crash leaves the old file or the new one, never
half; the file's mode follows the umask.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save

from vdreid import __version__, outputs
from vdreid.errors import CheckpointError, SpecError
from vdreid.spec.model import ModelSpec, spec_from_json, spec_hash
from vdreid.spec.params import param_table

NAMESPACE_SEP = "/"
META_SPEC = "vdreid.spec"
META_SPEC_HASH = "vdreid.spec_hash"
META_VERSION = "vdreid.version"
META_BACKEND = "vdreid.backend"
RESERVED_PREFIX = "vdreid."


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """What load_checkpoint returns. ``meta`` holds every metadata entry but the spec JSON."""

    tensors: dict[str, np.ndarray]
    spec: ModelSpec | None
    meta: dict[str, str]

    @property
    def backend(self) -> str | None:
        return self.meta.get(META_BACKEND)


def save_checkpoint(
    path: str | os.PathLike[str],
    tensors: Mapping[str, np.ndarray],
    *,
    spec: ModelSpec | None = None,
    backend: str | None = None,
    meta: Mapping[str, str] | None = None,
) -> Path:
    """Write ``tensors`` and metadata to ``path`` atomically; returns the path."""
    path = Path(path)
    metadata = _metadata(spec, backend, meta)
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or not name:
            raise CheckpointError(f"tensor names must be non-empty strings, got {name!r}")
        arrays[name] = np.asarray(value, order="C")  # ascontiguousarray would make 0-d arrays 1-d
    try:
        data = save(arrays, metadata=metadata)
    except (SafetensorError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"cannot write {path}: {exc}; pass numeric numpy arrays (float, int, bool)"
        ) from None
    outputs.write_bytes(path, data, "checkpoint")
    return path


def _metadata(
    spec: ModelSpec | None, backend: str | None, meta: Mapping[str, str] | None
) -> dict[str, str]:
    out = {META_VERSION: __version__}
    if backend is not None:
        out[META_BACKEND] = str(backend)
    if spec is not None:
        out[META_SPEC] = spec.model_dump_json()
        out[META_SPEC_HASH] = spec_hash(spec)
    for key, value in (meta or {}).items():
        if not isinstance(key, str) or key.startswith(RESERVED_PREFIX):
            raise CheckpointError(
                f"metadata key {key!r} is reserved or not a string; use your own prefix, not {RESERVED_PREFIX!r}"
            )
        if not isinstance(value, str):
            raise CheckpointError(
                f"metadata {key!r} must be a string, got {type(value).__name__}; serialise it (e.g. json.dumps)"
            )
        out[key] = value
    return out


def _existing(path: str | os.PathLike[str]) -> Path:
    """``path`` when it is a file; else the CheckpointError every reader gives."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise CheckpointError(
            f"checkpoint {path} {what}; expected a .safetensors file written by vdreid"
        )
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint; CheckpointError if missing, not safetensors or malformed."""
    path = _existing(path)
    try:
        with safe_open(str(path), framework="numpy") as fh:
            metadata = dict(fh.metadata() or {})
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({exc}); expected a checkpoint written by "
            "vdreid (save_checkpoint); re-save it or check that the download is complete"
        ) from None
    spec = None
    if META_SPEC in metadata:
        try:
            spec = spec_from_json(metadata.pop(META_SPEC))
        except SpecError as exc:
            raise CheckpointError(f"{path}: the stored model spec is invalid: {exc}") from None
        # the file stores names sorted; give model tensors back in param_table order
        order = {name: i for i, name in enumerate(param_table(spec))}
        tensors = dict(
            sorted(tensors.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
        )
    return Checkpoint(tensors=tensors, spec=spec, meta=metadata)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """A checkpoint's metadata alone (the tensors are not read)."""
    path = _existing(path)
    try:
        with safe_open(str(path), framework="numpy") as fh:
            return dict(fh.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None


@dataclasses.dataclass(frozen=True)
class StateReport:
    """How a state differs from what a model expects (all problems at once)."""

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]  # (name, expected, got)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing: {', '.join(self.missing)}")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected: {', '.join(self.unexpected)}")
        if self.mismatched:
            shapes = ", ".join(f"{n} (expected {e}, got {g})" for n, e, g in self.mismatched)
            parts.append(f"{len(self.mismatched)} with the wrong shape: {shapes}")
        return "; ".join(parts) or "no differences"


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(value.shape) if hasattr(value, "shape") else tuple(value)


def state_report(expected: Mapping[str, Any], state: Mapping[str, Any]) -> StateReport:
    """Compare names and shapes. ``expected`` maps names to shapes, ParamInfos or arrays."""
    missing = tuple(n for n in expected if n not in state)
    unexpected = tuple(n for n in state if n not in expected)
    mismatched = tuple(
        (n, _shape(e), _shape(state[n]))
        for n, e in expected.items()
        if n in state and _shape(e) != _shape(state[n])
    )
    return StateReport(missing, unexpected, mismatched)


def check_state(
    expected: Mapping[str, Any], state: Mapping[str, Any], *, source: str = "the state"
) -> None:
    """Raise ONE CheckpointError listing every missing, unexpected and mis-shaped tensor.

    Pass model tensors only (see model_state): namespaced entries count as unexpected.
    """
    report = state_report(expected, state)
    if not report.ok:
        raise CheckpointError(
            f"{source} does not match the model: {report.describe()}; load a state written for "
            "the same preset and number of classes, or convert it first"
        )


def checked_float_state(
    expected: Mapping[str, Any], state: Mapping[str, Any], *, source: str
) -> dict[str, np.ndarray]:
    """What a backend's set_state loads: :func:`check_state`, then every tensor
    of ``expected`` as a C-contiguous float32 array (a CheckpointError names
    one that is not a float array). Written once for every backend."""
    check_state(expected, state, source=source)
    out = {}
    for name in expected:
        value = np.asarray(state[name])
        if not np.issubdtype(value.dtype, np.floating):
            raise CheckpointError(
                f"tensor {name!r} has dtype {value.dtype}, expected a float array; "
                "re-save the checkpoint with vdreid"
            )
        out[name] = np.ascontiguousarray(value, dtype=np.float32)
    return out


def model_state(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model part: entries without a namespace prefix."""
    return {n: v for n, v in tensors.items() if NAMESPACE_SEP not in n}


def namespace_state(tensors: Mapping[str, np.ndarray], namespace: str) -> dict[str, np.ndarray]:
    """Entries under ``namespace/``, with the prefix removed."""
    prefix = namespace + NAMESPACE_SEP
    return {n[len(prefix) :]: v for n, v in tensors.items() if n.startswith(prefix)}


def with_namespace(tensors: Mapping[str, np.ndarray], namespace: str) -> dict[str, np.ndarray]:
    """The inverse of namespace_state: prefix every name with ``namespace/``."""
    if not namespace or NAMESPACE_SEP in namespace:
        raise CheckpointError(
            f"a namespace is one non-empty word without {NAMESPACE_SEP!r}, got {namespace!r}"
        )
    return {f"{namespace}{NAMESPACE_SEP}{n}": v for n, v in tensors.items()}
