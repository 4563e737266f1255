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

import numpy as np
import pytest

from vdreid.presets import recipe
from vdreid.spec import ModelSpec, preprocess
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
