"""The search workflow on flat-colour images, a stand-in backend (feature = mean
colour), so every distance is known: cross-modal selection, identities from a
dataset, a query's own file, and galleries from another model."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vdreid.data.records import Modality
from vdreid.errors import ConfigError, DataError
from vdreid.workflows.embed import embed_images, save_embeddings
from vdreid.workflows.search import search

from stand_in_backend import stand_in_model


def _flat(path: Path, rgb) -> Path:
    Image.new("RGB", (32, 64), tuple(rgb)).save(path)
    return path


@pytest.fixture
def scene(tmp_path):
    """Visible images of three people (grey levels 40, 120, 200 plus a tint)
    and infrared ones (pure grey 45, 118, 205)."""
    vis, ir = tmp_path / "vis", tmp_path / "ir"
    vis.mkdir()
    ir.mkdir()
    people = {}
    for pid, level in enumerate((40, 120, 200)):
        people[str(_flat(vis / f"{pid}.png", (level, level + 30, level)))] = (pid, Modality.VISIBLE)
        people[str(_flat(ir / f"{pid}.png", (level + 5 - 7 * pid,) * 3))] = (pid, Modality.INFRARED)
    identities = {os.path.realpath(p): v for p, v in people.items()}
    return vis, ir, identities


def test_infrared_queries_search_visible_images_by_evaluation_distance(scene):
    vis, ir, identities = scene
    result = search(stand_in_model(), [ir], [vis, ir], top_k=3, identities=identities,
                    progress=False)  # fmt: skip
    assert result.gallery_counts == {"visible": 3, "infrared": 3}
    for ranked in result.lists:
        assert ranked.query.modality == Modality.INFRARED
        assert [m.modality for m in ranked.matches] == [Modality.VISIBLE] * 3
        assert ranked.first_match == 1 and ranked.is_true(ranked.matches[0])
        # euclidean distance between the mean colours (3 non-zero feature entries)
        level = Image.open(ranked.query.path).getpixel((0, 0))[0]
        top = np.array(Image.open(ranked.matches[0].path).getpixel((0, 0)), float)
        assert ranked.matches[0].distance == pytest.approx(np.linalg.norm(top - level))
    assert result.true_at_rank1() == (3, 3) and result.to_dict()["identities"] is True


def test_any_modality_never_returns_the_querys_own_file(scene):
    vis, ir, _ = scene
    result = search(stand_in_model(), [ir / "1.png"], [vis, ir], top_k=6, cross_modal=False,
                    progress=False)  # fmt: skip
    (ranked,) = result.lists
    paths = [m.path for m in ranked.matches]
    assert len(paths) == 5 and str(ir / "1.png") not in paths
    assert ranked.first_match is None  # no identities given


def test_a_gallery_without_the_other_modality_is_a_clear_error(scene):
    vis, ir, _ = scene
    with pytest.raises(DataError, match="holds no visible image to search across modalities"):
        search(stand_in_model(), [ir], [ir], progress=False)


def test_an_embeddings_file_must_come_from_the_same_model(scene, tmp_path):
    vis, ir, _ = scene
    model = stand_in_model()
    gallery = embed_images(model, sorted(vis.iterdir()), flip=True, progress=False)
    path, _ = save_embeddings(gallery, tmp_path / "gallery.safetensors")
    result = search(model, [ir], [path], top_k=1, progress=False)  # queries flipped as the gallery
    assert len(result.lists) == 3 and result.gallery == str(path)
    with pytest.raises(ConfigError, match="embedded with flip averaging"):
        search(model, [ir], [path], flip=False, progress=False)
    other = stand_in_model(num_classes=5)  # another spec: another hash
    with pytest.raises(DataError, match="was embedded by another model"):
        search(other, [ir], [path], progress=False)
    narrow = dataclasses.replace(gallery, features=gallery.features[:, :8], meta={})
    path, _ = save_embeddings(narrow, tmp_path / "narrow.npy")
    with pytest.raises(DataError, match="holds 8-d features"):
        search(model, [ir], [path], progress=False)
