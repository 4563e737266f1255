"""The pictures, opened as a viewer would (PIL): sizes, and the frames' colours.

matplotlib comes with the ``[report]`` extra (in ``[all]``, which the test
environment installs); scikit-learn (t-SNE) with ``[dev]``.
"""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image

from vdreid.data.records import Modality
from vdreid.errors import DataError, ExtraNotInstalled
from vdreid.eval.retrieval import RankedItem, ranked_lists
from vdreid.report.cmc import cmc_curve, cmc_picture
from vdreid.report.embedding_map import embedding_picture, gap_distances, project
from vdreid.report.figure import FALSE_RGB, QUERY_RGB, TRUE_RGB, UNKNOWN_RGB, Picture
from vdreid.report.loss_curves import loss_picture, loss_terms
from vdreid.report.ranked_grid import FRAME, ranked_grid


def opened(picture: Picture) -> np.ndarray:
    image = Image.open(io.BytesIO(picture.png))
    assert image.format == "PNG" and image.size == (picture.width, picture.height)
    return np.asarray(image.convert("RGB")).astype(int)


def frame_colours(pixels: np.ndarray, box: tuple[int, int, int, int]) -> list[np.ndarray]:
    """The colour in the middle of each side of a cell's frame band."""
    left, top, right, bottom = box
    mx, my, inset = (left + right) // 2, (top + bottom) // 2, FRAME // 2
    return [
        pixels[my, left + inset],
        pixels[my, right - 1 - inset],
        pixels[top + inset, mx],
        pixels[bottom - 1 - inset, mx],
    ]


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """Six people as flat-colour images: an infrared (grey) and a visible one each."""
    folder = tmp_path_factory.mktemp("people")
    items = []
    for pid in range(6):
        for modality in (Modality.VISIBLE, Modality.INFRARED):
            level = 40 * pid + 20
            colour = (level, level, level) if modality else (level, 255 - level, 90)
            path = folder / f"{pid}_{int(modality)}.png"
            Image.new("RGB", (32, 64), colour).save(path)
            items.append(RankedItem(str(path), modality, pid))
    return items


def test_ranked_grid_frames_are_green_for_true_and_red_for_false_matches(people):
    queries = [i for i in people if i.modality == Modality.INFRARED][:3]
    gallery = [i for i in people if i.modality == Modality.VISIBLE]
    rng = np.random.default_rng(0)
    lists = ranked_lists(queries, gallery, rng.random((3, 6)), top_k=4)
    picture = ranked_grid(lists, title="three queries")
    pixels = opened(picture)
    assert len(picture.cells) == 3 * 5 + sum(r.first_true is not None for r in lists)
    truths = {True: 0, False: 0}
    for row, col, box, truth in picture.cells:
        expected = QUERY_RGB if col == 0 else {True: TRUE_RGB, False: FALSE_RGB}[truth]
        if col:
            ranked = lists[row]
            item = ranked.matches[col - 1] if col <= len(ranked.matches) else ranked.first_true
            assert truth == (item.pid == ranked.query.pid)
            truths[truth] += 1
        for colour in frame_colours(pixels, box):
            assert np.abs(colour - expected).max() <= 3, (row, col, colour, expected)
    assert truths[True] >= 3 and truths[False] >= 3  # both colours were checked


def test_ranked_grid_without_identities_draws_grey_frames(people):
    queries = [RankedItem(people[1].path, Modality.INFRARED)]
    lists = ranked_lists(queries, people[::2], np.arange(6.0)[None, :], top_k=6)
    picture = ranked_grid(
        lists, title="unknown people, and a narrow picture whose long title wraps"
    )
    pixels = opened(picture)
    for _, _, box, truth in picture.cells[1:]:
        assert truth is None
        for colour in frame_colours(pixels, box):
            assert np.abs(colour - UNKNOWN_RGB).max() <= 3


def test_a_moved_gallery_file_is_a_striped_tile_not_an_error(people, tmp_path):
    gone = RankedItem(str(tmp_path / "moved.png"), Modality.VISIBLE, 0)
    lists = ranked_lists([people[1]], [gone], np.zeros((1, 1)), top_k=1)
    pixels = opened(ranked_grid(lists, title="moved"))
    (_, _, (left, top, right, bottom), truth) = ranked_grid(lists, title="moved").cells[1]
    inner = pixels[top + FRAME + 20 : bottom - FRAME, left + FRAME : right - FRAME]
    assert truth is True and set(np.unique(inner)) <= {170, 200}


def _evaluation(r1: float, trials: int = 3) -> dict:
    cmc = [[min(1.0, r1 + 0.1 * k + 0.01 * t) for k in range(20)] for t in range(trials)]
    return {
        "trials": [{"cmc": c} for c in cmc],
        "summary": {"R1": {"mean": 100 * r1, "std": 1.0}, "mAP": {"mean": 50.0, "std": 0.5}},
    }


def test_cmc_picture_of_several_runs():
    curves = [cmc_curve("trained", _evaluation(0.6)), cmc_curve("untrained", _evaluation(0.05, 1))]
    assert curves[0].mean[0] == pytest.approx(61.0) and curves[0].std[0] > 0
    assert curves[1].std.max() == 0  # one trial: no band
    pixels = opened(cmc_picture(curves))
    assert pixels.shape == (480, 900, 3) and pixels.std() > 10
    with pytest.raises(DataError, match="no per-trial CMC"):
        cmc_curve("broken", {"summary": {}})
    with pytest.raises(DataError, match="no CMC curves"):
        cmc_picture([])


def _records(epochs=3, steps=4, validate=True):
    out = []
    for e in range(epochs):
        for s in range(steps):
            total = 10 - e - s * 0.1
            out.append(
                {"epoch": e, "step": s, "global_step": e * steps + s + 1, "ce": total - 1,
                 "total": total, "kl": 0.01, "lr_backbone": 1e-3, "images_per_s": 100.0}
            )  # fmt: skip
        if validate:
            out.append({"epoch": e, "val_mAP": 20.0 + e, "val_R1": 15.0 + e})
    return out


def test_loss_picture_has_one_panel_per_term_total_first():
    assert loss_terms(_records()) == ["total", "ce", "kl"]
    picture = loss_picture(_records())
    assert opened(picture).shape[:2] == (picture.height, picture.width)
    assert picture.width == 990 and picture.height == 50 + 2 * 230 + 10  # 4 panels: 2 rows
    with pytest.raises(DataError, match="no training records"):
        loss_picture([{"epoch": 0, "val_mAP": 3.0}])


def test_pca_map_finds_the_directions_of_largest_spread():
    rng = np.random.default_rng(0)
    x = np.zeros((200, 5))
    x[:, 3] = 10 * rng.standard_normal(200)  # the widest direction
    x[:, 1] = 3 * rng.standard_normal(200)
    points = project(x)
    assert abs(np.corrcoef(points[:, 0], x[:, 3])[0, 1]) > 0.999
    assert abs(np.corrcoef(points[:, 1], x[:, 1])[0, 1]) > 0.99


def test_gap_distances_and_the_map_picture():
    # two people, the infrared images shifted away from the visible ones
    f = np.array([[0, 0], [0, 1], [5, 0], [5, 1], [0, 10], [0, 11], [5, 10], [5, 11.0]])
    pids = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    modality = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    gaps = gap_distances(f, pids, modality, "euclidean")
    assert gaps["same person, same modality"] == pytest.approx(1.0)
    assert gaps["same person, other modality"] == pytest.approx(np.mean([10, 11, 9, 10]))
    picture = embedding_picture(f, pids, modality, title="two people")
    assert opened(picture).shape == (640, 900, 3)
    tsne = embedding_picture(f, pids, modality, method="tsne", distance="cosine")
    assert tsne.width == 900
    with pytest.raises(DataError, match="expected one of each per image"):
        embedding_picture(f, pids[:3], modality)


def test_pictures_without_matplotlib_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails
    with pytest.raises(ExtraNotInstalled, match=r"pip install 'vdreid\[report\]'"):
        cmc_picture([cmc_curve("x", _evaluation(0.5))])


def test_tsne_without_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)
    with pytest.raises(ExtraNotInstalled, match=r"vdreid\[tsne\]"):
        project(np.eye(4), method="tsne")
