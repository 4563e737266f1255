"""The contract suite: one set of cases run on every backend against the oracle.

Which backends run:
- ``VDREID_TEST_BACKENDS=torch,mindspore`` (what ``make test`` sets): exactly
  those; one that fails to load is a test FAILURE, not a skip.
- unset: every registered backend; one that fails to load is skipped with
  the reason.

Test ids carry the backend name, so ``-k torch`` selects one backend.

Cases are data: the ``tiny`` spec, weights from ``init_state`` with
perturbed batch-norm statistics and shifts, non-zero channel-attention
scalars and larger classifier weights (so no output or loss term is
trivially zero), and a seeded uint8 batch of two identities seen in both
modalities.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vdreid.presets import recipe
from vdreid.spec import ModelSpec, preprocess
from vdreid.spec.builders import mvd_model
from vdreid.workflows.parity import perturbed_state

NUM_CLASSES = 4


@pytest.fixture(scope="session")
def export_format(backend) -> str:
    """The backend's own export format (its first)."""
    return backend.export_format()


@pytest.fixture(scope="session")
def spec() -> ModelSpec:
    return recipe("tiny").model_spec(NUM_CLASSES)


@pytest.fixture(scope="session")
def state(spec: ModelSpec) -> dict[str, np.ndarray]:
    return perturbed_state(spec)


@pytest.fixture(scope="session")
def batch(spec: ModelSpec) -> dict[str, np.ndarray]:
    """8 images: identities 0 and 1, each 2 visible + 2 infrared."""
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (8, spec.input.height, spec.input.width, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(2, dtype=np.int64), 4)
    modality = np.tile(np.array([0, 0, 1, 1], dtype=np.int64), 2)
    return {"images": images, "labels": labels, "modality": modality}


@pytest.fixture(scope="session")
def images(spec: ModelSpec, batch: dict[str, np.ndarray]) -> np.ndarray:
    """The batch's images, normalised float32 NCHW (what forward takes)."""
    return preprocess(spec, batch["images"])


@pytest.fixture
def model(backend, spec: ModelSpec, state: dict[str, np.ndarray]):
    """A fresh CPU model holding ``state`` (function scope: tests may change it)."""
    m = backend.build(spec, device="cpu")
    backend.set_state(m, state)
    return m


@pytest.fixture(scope="session")
def same_spec() -> ModelSpec:
    """msport's network (padding "same", bn3 eps 1e-3 / momentum 0.003) at 1/16
    width and 72x40, where maps of odd and even sizes meet the stride-2 windows."""
    design = dataclasses.replace(
        recipe("msport").design,
        width=1 / 16,
        size=(72, 40),
        head_hidden=(32, 16),
        z_width=16,
        z_hidden=16,
    )
    return mvd_model("msport", NUM_CLASSES, design)


@pytest.fixture(scope="session")
def same_case(same_spec):
    """Weights, uint8 images and their normalised view. bn3's running variances
    are scaled down to ~1e-2, where its eps of 1e-3 (not 1e-5) moves the
    eval-mode outputs by percents: a backend that drops the eps fails."""
    state = perturbed_state(same_spec)
    for name in state:
        if name.endswith(".bn3.var"):
            state[name] = state[name] * np.float32(1e-2)
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (4, 72, 40, 3), dtype=np.uint8)
    return state, images, preprocess(same_spec, images)
