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

from vdreid.spec import ModelSpec, get_preset, init_state, param_table, preprocess

NUM_CLASSES = 4
#: the format each first-party backend's export case uses
EXPORT_FORMATS = {"torch": "onnx", "mindspore": "mindir"}


@pytest.fixture(scope="session")
def export_format(backend_name: str) -> str:
    return EXPORT_FORMATS[backend_name]


@pytest.fixture(scope="session")
def spec() -> ModelSpec:
    return get_preset("tiny", NUM_CLASSES)


def perturbed_state(spec: ModelSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """init_state plus perturbations that make every part of the network matter."""
    rng = np.random.default_rng(seed)
    state = init_state(spec, seed)
    for name, info in param_table(spec).items():
        shape = info.shape
        if info.role == "bn_mean":
            state[name] = rng.normal(0.0, 0.1, shape).astype(np.float32)
        elif info.role == "bn_var":
            state[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif info.role in ("bn_shift", "bias"):
            state[name] = rng.normal(0.0, 0.05, shape).astype(np.float32)
        elif info.role == "scalar":  # channel attention: large values make fp32 CAM ill-conditioned
            state[name] = rng.uniform(-0.1, 0.1, shape).astype(np.float32)
        elif info.role == "weight" and "classifier" in name:
            state[name] = state[name] * np.float32(50.0)  # logits far from uniform
    return state


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
