"""Small real runs: a synthetic SYSU-like tree small enough for seconds-long epochs."""

from __future__ import annotations

from pathlib import Path

import pytest

from vdreid.data.synth import Shape, synthesize


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
