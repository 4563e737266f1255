"""Where features come from: a trained model, opened once for embed, search and report.

Two sources, one result (:class:`LoadedModel`):

- ``--checkpoint C``: a vdreid checkpoint, built and loaded (strictly) on a
  backend that runs the spec (torch by default, mindspore);
- ``--model M``: an exported model file (``.onnx``, ``.mindir``), run by a
  backend that reads that format. Such a backend declares the formats it
  reads and loads a file into the same kind of handle ``features`` takes
  (vdreid.backend.Backend's ``model_formats`` and ``load_model``)::

      class SomeBackend(Backend):
          model_formats = ("onnx",)
          def load_model(self, path, *, device=None) -> tuple[Any, ModelSpec]:
              ...  # the handle, and the spec the file was exported from

  so ``--model`` works as soon as such a backend is registered in the
  ``vdreid.backends`` entry-point group; until then the user is told which
  backend (and pip extra) reads the file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from vdreid import registry
from vdreid.backend import Backend
from vdreid.config import ProtocolConfig
from vdreid.errors import BackendNotAvailable, ConfigError
from vdreid.spec.model import ModelSpec, spec_hash
from vdreid.workflows.evaluate import load_trained, spec_distance
from vdreid.workflows.features import batch_features

#: Exported model files by suffix.
MODEL_FILE_FORMATS = {".onnx": "onnx", ".mindir": "mindir"}
#: The backend that reads each format by default, and the pip extra bringing it.
FORMAT_READERS = {"onnx": ("onnxruntime", "vdreid[onnxruntime]")}
#: The backend that runs checkpoints when none is named.
DEFAULT_BACKEND = "torch"


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model ready to turn uint8 images into features, and what it is."""

    backend: Backend
    model: Any
    spec: ModelSpec
    source: Path
    kind: str  # "checkpoint", or the model file's format

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) the images are resized to."""
        return self.spec.input.height, self.spec.input.width

    @property
    def spec_hash(self) -> str:
        return spec_hash(self.spec)

    @property
    def distance(self) -> str:
        """The distance evaluation ranks this model's features with (by default)."""
        return spec_distance(self.spec, ProtocolConfig())

    def describe(self) -> str:
        return f"{self.kind} {self.source} on {self.backend.name}"

    def features(
        self, images: np.ndarray, *, batch_size: int = 64, flip: bool = False
    ) -> np.ndarray:
        """float32 features of uint8 NHWC images at :attr:`input_size`."""
        return batch_features(self.backend, self.model, images, batch_size=batch_size, flip=flip)


def model_file_format(path: Path) -> str:
    fmt = MODEL_FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"--model {path}: the suffix {path.suffix or '(none)'} is not a model file format "
            f"vdreid knows ({', '.join(MODEL_FILE_FORMATS)}); pass an exported model, or a "
            "vdreid checkpoint with --checkpoint"
        )
    return fmt


def open_model(
    *,
    checkpoint: Path | None = None,
    model_file: Path | None = None,
    backend: str | None = None,
    device: str | None = None,
) -> LoadedModel:
    """The model of ``checkpoint`` (built on ``backend``, default torch) or of
    the exported ``model_file`` (run by the backend that reads its format)."""
    if (checkpoint is None) == (model_file is None):
        raise ConfigError(
            "pass exactly one of --checkpoint (a vdreid checkpoint) and --model (an exported "
            f"model file), got {'both' if checkpoint is not None else 'neither'}"
        )
    if checkpoint is not None:
        b = registry.get(backend or DEFAULT_BACKEND)
        model, spec = load_trained(b, Path(checkpoint), device=device)
        return LoadedModel(b, model, spec, Path(checkpoint), "checkpoint")
    path = Path(model_file)  # type: ignore[arg-type]
    fmt = model_file_format(path)
    b = _reader(fmt, backend, path)
    if not path.is_file():
        raise ConfigError(f"--model {path} does not exist; pass an exported {fmt} file")
    model, spec = b.load_model(path, device=device)
    return LoadedModel(b, model, spec, path, fmt)


def _reader(fmt: str, backend: str | None, path: Path) -> Backend:
    """The backend that reads ``fmt`` files: the one named, else the format's own."""
    default, extra = FORMAT_READERS.get(fmt, (None, None))
    name = backend or default
    needs = (
        f"the {default} backend (entry point {default!r}, `pip install '{extra}'`)"
        if default
        else "a backend that reads them"
    )
    if name is None or name not in registry.registered():
        known = ", ".join(sorted(registry.registered())) or "none"
        raise BackendNotAvailable(
            f"--model {path}: {fmt} model files are run by {needs}, which is not installed "
            f"(registered backends: {known}); install it, or pass --checkpoint with the "
            "checkpoint the file was exported from"
        )
    b = registry.get(name)
    if fmt not in b.model_formats:
        raise BackendNotAvailable(
            f"--model {path}: the {name} backend runs vdreid checkpoints but does not read {fmt} "
            f"files; {fmt} files are run by {needs}. Or pass --checkpoint with the checkpoint "
            "the file was exported from"
        )
    return b
