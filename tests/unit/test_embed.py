"""Embedding people's own image files (no framework: a numpy stand-in backend).

Listing files, telling infrared from visible by their pixels, decoding in
threads ahead of the backend (order kept), and the embeddings file with
its CSV index. The stand-in's feature is an image's mean colour.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vdreid.data.image_files import list_images, looks_infrared, parse_modality, read_image
from vdreid.data.images import load_image
from vdreid.data.records import Modality
from vdreid.errors import ConfigError, DataError
from vdreid.workflows.embed import (
    Embeddings,
    embed_images,
    index_path,
    load_embeddings,
    save_embeddings,
)

from stand_in_backend import stand_in_model


@pytest.fixture
def stand_in():
    return stand_in_model()


def _write(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    """Colour and grey images of various sizes and formats, one hidden file, one text file."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    colour = rng.integers(0, 256, (90, 40, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (50, 30), dtype=np.uint8)
    _write(folder / "b" / "colour.png", colour)
    _write(folder / "a" / "grey8.bmp", grey, "L")  # single channel, as RegDB's thermal images
    _write(folder / "a" / "grey3.jpg", np.repeat(grey[..., None], 3, axis=2))  # as SYSU's IR
    _write(folder / "c.jpg", colour[:60])
    _write(folder / ".hidden.png", colour)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_folders_are_listed_recursively_sorted_without_hidden_or_other_files(photos, tmp_path):
    found = list_images([photos])
    names = [p.relative_to(photos).as_posix() for p in found]
    assert names == ["a/grey3.jpg", "a/grey8.bmp", "b/colour.png", "c.jpg"]
    # a file named twice (folder and file) is listed once, in the order first named
    again = list_images([photos / "c.jpg", photos])
    assert again[0].name == "c.jpg" and len(again) == 4
    with pytest.raises(DataError, match="does not exist"):
        list_images([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        list_images([tmp_path / "empty"])
    with pytest.raises(ConfigError, match="no images given"):
        list_images([])


def test_grey_images_are_infrared_and_colour_ones_visible(photos):
    grey3, grey8, colour, _ = list_images([photos])
    assert looks_infrared(load_image(grey3)) and looks_infrared(load_image(grey8))
    assert not looks_infrared(load_image(colour))
    nearly = np.full((4, 4, 3), 100, np.uint8)
    nearly[0, 0] = (100, 102, 100)  # JPEG rounding: still grey
    assert looks_infrared(nearly)
    nearly[0, 0] = (100, 110, 100)
    assert not looks_infrared(nearly)


def test_read_image_resizes_as_the_cache_and_reports_the_files_own_size(photos):
    image, size = read_image(photos / "b" / "colour.png", (64, 32))
    assert size == (40, 90)  # (width, height) of the file
    assert np.array_equal(image, load_image(photos / "b" / "colour.png", (64, 32)))


def test_parse_modality():
    assert parse_modality("auto") is None
    assert parse_modality("Infrared") == Modality.INFRARED
    with pytest.raises(ConfigError, match="--modality 'thermal'"):
        parse_modality("thermal")


def test_embed_keeps_file_order_across_batches_and_decides_modality_per_image(photos, stand_in):
    paths = list_images([photos])
    result = embed_images(stand_in, paths, batch_size=3, workers=2, progress=False)
    assert stand_in.backend.batches == [3, 1]
    assert [e.path for e in result.images] == [str(p) for p in paths]
    assert [e.modality for e in result.images] == [
        Modality.INFRARED,
        Modality.INFRARED,
        Modality.VISIBLE,
        Modality.VISIBLE,
    ]
    assert [(e.width, e.height) for e in result.images] == [(30, 50), (30, 50), (40, 90), (40, 60)]
    for row, path in zip(result.features, paths, strict=True):  # row i is file i's feature
        assert np.allclose(row[:3], load_image(path, (64, 32)).reshape(-1, 3).mean(axis=0))
    assert result.counts() == {"visible": 2, "infrared": 2}
    given = embed_images(stand_in, paths, modality=Modality.VISIBLE, progress=False)
    assert given.counts() == {"visible": 4, "infrared": 0}
    assert result.meta["spec_hash"] == stand_in.spec_hash and result.meta["input_size"] == "64x32"


def test_an_undecodable_file_stops_embedding_with_its_name(photos, stand_in):
    bad = photos / "b" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        embed_images(stand_in, list_images([photos]), batch_size=2, progress=False)


@pytest.mark.parametrize("suffix", [".safetensors", ".npy"])
def test_embeddings_round_trip_with_their_csv_index(photos, stand_in, tmp_path, suffix):
    result = embed_images(stand_in, list_images([photos]), progress=False)
    features, index = save_embeddings(result, tmp_path / f"emb{suffix}")
    assert index == tmp_path / "emb.csv"
    rows = list(csv.DictReader(open(index, encoding="utf-8")))
    assert list(rows[0]) == ["path", "modality", "width", "height"]
    assert rows[1]["modality"] == "infrared" and rows[2]["width"] == "40"
    back = load_embeddings(features)
    assert np.array_equal(back.features, result.features) and back.images == result.images
    if suffix == ".safetensors":
        assert back.meta["spec_hash"] == result.meta["spec_hash"]
    else:
        assert back.meta == {}  # a bare array records no model


def test_broken_embeddings_files_are_refused(photos, stand_in, tmp_path):
    result = embed_images(stand_in, list_images([photos]), progress=False)
    path, index = save_embeddings(result, tmp_path / "emb.safetensors")
    lines = index.read_text().splitlines()
    index.write_text("\n".join(lines[:-1]) + "\n")  # one image fewer than feature rows
    with pytest.raises(DataError, match="holds 4 feature rows but its index"):
        load_embeddings(path)
    index.unlink()
    with pytest.raises(DataError, match="keep the two files together"):
        load_embeddings(path)
    with pytest.raises(DataError, match=r"expected a \.safetensors or \.npy file"):
        save_embeddings(result, tmp_path / "emb.pt")
    with pytest.raises(DataError, match="one row per image"):
        Embeddings(np.zeros((2, 3), np.float32), result.images, {})
    assert index_path(tmp_path / "x.npy") == tmp_path / "x.csv"
