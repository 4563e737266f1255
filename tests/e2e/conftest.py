"""Small real runs: a synthetic SYSU-like tree small enough for seconds-long epochs."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend_selection import load_backend, requested_backends
from vdreid.config import resolve_train_config
from vdreid.data.synth import Shape, synthesize


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        names, _ = requested_backends()
        metafunc.parametrize("backend_name", names, ids=names, scope="module")


@pytest.fixture(scope="module")
def backend(backend_name: str):
    return load_backend(backend_name)


@pytest.fixture(scope="session")
def sysu_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 training ids, 4 test ids, 2 images per (id, camera), 32x16 pixels."""
    root = tmp_path_factory.mktemp("sysu")
    synthesize(
        "sysu",
        root,
        shape=Shape(ids=12, test_ids=4, per_cam=2, size=(32, 16)),
        seed=0,
        progress=False,
    )
    return root


def tiny_config(root: Path, out: Path, backend: str, **fields):
    """The tiny recipe on the small tree: 3 steps of 4 ids x (2 + 2) per epoch."""
    base = {
        "backend": backend,
        "preset": "tiny",
        "dataset": "sysu",
        "root": str(root),
        "out": str(out),
        "epochs": 1,
        "ids_per_batch": 4,
        "instances": 2,
        "log_interval": 1,
        "checkpoint_every": 1,
        "seed": 3,
        "protocol": {"trials": 2},
    }
    return resolve_train_config(None, {**base, **fields})
