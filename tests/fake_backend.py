"""An in-memory numpy backend, so tests of the core and the CLI run without a framework.

It is registered for a test only: the ``fake_backend`` fixture (tests/conftest.py)
patches the registry so that ``fake`` is the one installed backend. Its model is
the spec and a dict of canonical float32 arrays; forward and features run the
numpy oracle (vdreid.reference). It exports the format ``npz`` (the spec and the
state in a numpy archive, run again by the oracle), so the core's verified-export
recipe runs end to end. It does not train: the base class says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from vdreid.backend import Backend, BackendInfo
from vdreid.backend_inputs import checked_images, checked_normalised
from vdreid.checkpoint import checked_float_state
from vdreid.errors import ConfigError
from vdreid.ops import NumpyOps
from vdreid.reference import reference_forward, reference_forward_with_stats
from vdreid.spec import ModelSpec, param_table, preprocess, spec_from_json

NAME = "fake"
SPEC_KEY = "__spec__"  # the archive entry holding the spec JSON


class FakeOps(NumpyOps):
    name = NAME


@dataclasses.dataclass
class FakeModel:
    spec: ModelSpec
    state: dict[str, np.ndarray]


class FakeBackend(Backend):
    name = NAME
    export_formats = ("npz",)

    def info(self) -> BackendInfo:
        return BackendInfo(NAME, "numpy", np.__version__, ("cpu",))

    def ops(self) -> FakeOps:
        return FakeOps()

    def build(self, spec: ModelSpec, *, device: str | None = None) -> FakeModel:
        if device not in (None, "cpu"):
            raise ConfigError(
                f"device {device!r} is not available (this machine has: cpu); pass --device cpu"
            )
        shapes = self.state_shapes(spec)
        state = {
            n: np.full(s, 1.0 if n.endswith(".var") else 0.0, np.float32) for n, s in shapes.items()
        }
        return FakeModel(spec, state)

    def state_shapes(self, spec: ModelSpec) -> dict[str, tuple[int, ...]]:
        return {name: info.shape for name, info in param_table(spec).items()}

    def get_state(self, model: FakeModel) -> dict[str, np.ndarray]:
        return {n: v.copy() for n, v in model.state.items()}

    def set_state(self, model: FakeModel, state: Mapping[str, np.ndarray]) -> None:
        checked = checked_float_state(
            param_table(model.spec), state, source="the state given to the fake backend"
        )
        model.state = {n: v.copy() for n, v in checked.items()}

    def forward(
        self, model: FakeModel, images: np.ndarray, *, train: bool = False
    ) -> dict[str, np.ndarray]:
        images = checked_normalised(images, min_images=2 if train else 1)
        if not train:
            return reference_forward(model.spec, model.state, images)
        outputs, running = reference_forward_with_stats(model.spec, model.state, images)
        model.state.update(running)
        return outputs

    def features(self, model: FakeModel, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        images = checked_images(images, batch_size)
        chunks = [
            reference_forward(
                model.spec, model.state, preprocess(model.spec, images[i : i + batch_size])
            )["test_feature"]
            for i in range(0, len(images), batch_size)
        ]
        return (
            np.concatenate(chunks) if chunks else np.zeros((0, model.spec.feature_dim), np.float32)
        )

    def write_export(self, model: FakeModel, fmt: str, example: np.ndarray, path: Path) -> None:
        with open(path, "wb") as fh:  # a file handle: np.savez would append .npz to a name
            np.savez(fh, **model.state, **{SPEC_KEY: np.array(model.spec.model_dump_json())})

    def run_export(self, fmt: str, path: Path, images: np.ndarray) -> np.ndarray:
        with np.load(path) as archive:
            state = {k: archive[k] for k in archive.files if k != SPEC_KEY}
            spec = spec_from_json(str(archive[SPEC_KEY]))
        return reference_forward(spec, state, images)["test_feature"]
