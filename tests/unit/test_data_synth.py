"""The synthetic look-alikes: layouts, determinism, storage, and a real identity signal."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vdreid.data.images import load_image
from vdreid.data.synth import Shape, make_plan, synthesize
from vdreid.data.synth.person import BG, appearance, camera_style, label_map, poses, render
from vdreid.errors import ConfigError, DataError
from vdreid.workflows.data_check import check_dataset

SMALL = Shape(ids=8, test_ids=3, per_cam=2, size=(32, 16))


def _digest(root: Path) -> str:
    h = hashlib.sha1()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("layout", ["sysu", "regdb", "llcm"])
def test_synthetic_tree_passes_check(layout, tmp_path):
    synthesize(layout, tmp_path / layout, shape=SMALL, seed=1, progress=False)
    report = check_dataset(layout, tmp_path / layout, decode=True, progress=False)
    assert report["ok"] and report["problems"] == []
    train = report["splits"]["train"]
    assert train["identities"] == 8 and train["visible"] > 0 and train["infrared"] > 0
    assert train["visible_only_ids"]["count"] == train["infrared_only_ids"]["count"] == 0
    for row in report["protocols"]:
        assert (
            row["queries"] > 0 and row["gallery"] > 0 and 0 < row["valid_queries"] <= row["queries"]
        )
    assert report["decoded"] == sum(
        1 for p in (tmp_path / layout).rglob("*") if p.suffix in (".jpg", ".bmp")
    )


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a, b, c = (
        synthesize("regdb", tmp_path / n, shape=SMALL, seed=s, progress=False)
        for n, s in (("a", 5), ("b", 5), ("c", 6))
    )
    assert a.jobs == b.jobs
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_worker_processes_do_not_change_the_output(tmp_path):
    shape = Shape(ids=3, test_ids=2, per_cam=2, size=(16, 8))
    synthesize("llcm", tmp_path / "one", shape=shape, seed=2, progress=False)
    synthesize("llcm", tmp_path / "two", shape=shape, seed=2, workers=2, progress=False)
    assert _digest(tmp_path / "one") == _digest(tmp_path / "two")


def test_files_are_stored_as_the_real_datasets_store_them(tmp_path):
    synthesize("regdb", tmp_path / "regdb", shape=SMALL, seed=0, progress=False)
    thermal = sorted((tmp_path / "regdb" / "Thermal").rglob("*.bmp"))[0]
    visible = sorted((tmp_path / "regdb" / "Visible").rglob("*.bmp"))[0]
    with Image.open(thermal) as im:
        assert im.format == "BMP" and im.mode == "L" and im.size == (16, 32)
    with Image.open(visible) as im:
        assert im.format == "BMP" and im.mode == "RGB"
    assert "_t_" in thermal.name and "_v_" in visible.name
    rgb = load_image(thermal)  # read as 3 channels
    assert rgb.shape == (32, 16, 3) and np.array_equal(rgb[..., 0], rgb[..., 2])
    synthesize("sysu", tmp_path / "sysu", shape=SMALL, seed=0, progress=False)
    ir = sorted((tmp_path / "sysu" / "cam3").rglob("*.jpg"))[0]
    with Image.open(ir) as im:
        assert im.format == "JPEG" and im.mode == "RGB"


def test_sysu_plan_keeps_the_real_gallery_counts_of_test_ids():
    from vdreid.data.sysu_split_files import rand_perm_cam

    plan = make_plan("sysu", Shape(ids=4, test_ids=2, per_cam=3), seed=0)
    perm = rand_perm_cam()
    test_ids = {int(t) for t in plan.texts["exp/test_id.txt"].strip().split(",")}
    for job in plan.jobs:
        for shot in job.shots:
            real = perm[(shot.camera, job.pid)].shape[1]
            keeps_real = job.pid in test_ids and shot.camera in (1, 2, 4, 5)
            assert len(shot.paths) == (real if keeps_real else 3)


def test_bad_requests_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="full-shape is available for sysu and regdb only"):
        make_plan("llcm", Shape(full_shape=True), seed=0)
    with pytest.raises(ConfigError, match="has 96 test ids; asked for 500"):
        make_plan("sysu", Shape(test_ids=500), seed=0)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(DataError, match="exists and is not an empty folder"):
        synthesize("regdb", tmp_path / "full", shape=SMALL, progress=False)


def _views(pid: int, infrared: bool, n: int, size=(64, 32)) -> np.ndarray:
    look = appearance(np.random.default_rng([11, pid]))
    cams = (3, 6) if infrared else (1, 2)
    out = []
    for cam in cams:  # independent poses, other cameras
        pose = poses(np.random.default_rng([12, pid, cam]), n, look.height)
        style = camera_style(np.random.default_rng([13, cam]), infrared)
        out.append(
            render(
                look,
                pose,
                style,
                size,
                infrared=infrared,
                rng=np.random.default_rng([14, pid, cam]),
            )
        )
    return np.concatenate(out)


def _edge_histograms(images: np.ndarray, cell: int = 4, bins: int = 6) -> np.ndarray:
    """Colour-blind shape feature: gradient-orientation histograms of the standardised grey image."""
    g = images.astype(np.float64).mean(-1)
    g = (g - g.mean((1, 2), keepdims=True)) / (g.std((1, 2), keepdims=True) + 1e-6)
    gy, gx = np.gradient(g, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    orientation = np.minimum((np.arctan2(gy, gx) % np.pi / np.pi * bins).astype(int), bins - 1)
    n, h, w = g.shape
    cells = np.stack(
        [
            (magnitude * (orientation == k))
            .reshape(n, h // cell, cell, w // cell, cell)
            .sum((2, 4))
            for k in range(bins)
        ],
        axis=-1,
    )
    cells /= np.linalg.norm(cells, axis=-1, keepdims=True) + 1e-3
    f = cells.reshape(n, -1)
    f -= f.mean(1, keepdims=True)
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def test_identity_survives_the_change_of_modality():
    ids = 40
    vis = np.concatenate([_views(p, False, 3) for p in range(ids)])
    ir = np.concatenate([_views(p, True, 3) for p in range(ids)])
    labels = np.repeat(np.arange(ids), 6)
    nearest = np.argmax(_edge_histograms(ir) @ _edge_histograms(vis).T, axis=1)
    rank1 = float(np.mean(labels[nearest] == labels))
    # 240 infrared queries: chance gives ~6 hits (sd ~2.4); 2.5x chance is a clear signal
    assert rank1 > 2.5 / ids, (
        f"cross-modal nearest neighbour rank-1 {rank1:.3f}, chance {1 / ids:.3f}"
    )


def test_infrared_is_not_a_grey_copy_of_visible():
    corr = []
    for pid in range(30):
        look = appearance(np.random.default_rng([21, pid]))
        # the same views in both modalities
        pose = poses(np.random.default_rng([22, pid]), 2, look.height)
        vis = render(
            look,
            pose,
            camera_style(np.random.default_rng(1), False),
            (64, 32),
            infrared=False,
            rng=np.random.default_rng(2),
        )
        ir = render(
            look,
            pose,
            camera_style(np.random.default_rng(3), True),
            (64, 32),
            infrared=True,
            rng=np.random.default_rng(4),
        )
        person = label_map(look, pose, (64, 32))[0] != BG
        grey = vis.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        corr.append(np.corrcoef(grey[person], ir[..., 0][person].astype(np.float64))[0, 1])
    assert np.mean(corr) < 0.4, (
        f"infrared correlates {np.mean(corr):.2f} with the visible luminance"
    )
