"""Decoding: every image mode becomes the 8-bit RGB it shows, checked on known pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vdreid.data import images
from vdreid.data.images import MAX_PIXELS, load_image
from vdreid.errors import DataError


def test_sixteen_bit_grey_is_scaled_not_saturated(tmp_path):  # D7
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    got = load_image(tmp_path / "g16.png")
    assert got.dtype == np.uint8 and got.shape == (1, 4, 3)
    assert got[0, :, 0].tolist() == [0, 1, 128, 255]
    assert np.all(got[..., 0] == got[..., 1]) and np.all(got[..., 1] == got[..., 2])
    ramp = np.linspace(0, 65535, 2048).reshape(64, 32).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    assert abs(load_image(tmp_path / "ramp.png").mean() - 127.5) < 0.5  # was 254.4


def test_thirty_two_bit_integers_in_range_are_sixteen_bit_and_others_refused():
    # older Pillows open 16-bit PNGs as mode I
    sixteen = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.int32), mode="I")
    assert np.asarray(images._to_rgb(sixteen, "i.png"))[0, :, 0].tolist() == [0, 128, 255]
    wide = Image.fromarray(np.array([[0, 70000]], dtype=np.int32), mode="I")
    with pytest.raises(DataError, match=r"values outside 0\.\.65535"):
        images._to_rgb(wide, "wide.tif")
    floats = Image.fromarray(np.zeros((2, 2), np.float32), mode="F")
    with pytest.raises(DataError, match="floating-point image"):
        images._to_rgb(floats, "f.tif")


def test_palette_with_transparency_keeps_its_colours(tmp_path):
    p = Image.new("P", (3, 1))
    p.putpalette([255, 0, 0, 0, 0, 255, 10, 200, 30] + [0] * (256 * 3 - 9))
    for x in range(3):
        p.putpixel((x, 0), x)
    p.save(tmp_path / "p.png", transparency=bytes([0, 128, 255]))  # clear, half, opaque
    assert Image.open(tmp_path / "p.png").info.get("transparency") is not None
    assert load_image(tmp_path / "p.png")[0].tolist() == [[255, 0, 0], [0, 0, 255], [10, 200, 30]]
    pa = Image.new("PA", (2, 1))
    pa.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    pa.putpixel((0, 0), (0, 0))
    pa.putpixel((1, 0), (1, 255))
    assert np.asarray(images._to_rgb(pa, "pa")).tolist() == [[[255, 0, 0], [0, 0, 255]]]


def test_cmyk_uses_the_multiplicative_formula(tmp_path):
    c = Image.new("CMYK", (4, 1))
    for x, px in enumerate([(0, 255, 255, 0), (128, 0, 0, 128), (0, 0, 0, 255), (0, 0, 0, 0)]):
        c.putpixel((x, 0), px)
    c.save(tmp_path / "c.tif")  # lossless; a JPEG would blur the pixels
    want = [[255, 0, 0], [63, 127, 127], [0, 0, 0], [255, 255, 255]]
    assert np.asarray(images._to_rgb(Image.open(tmp_path / "c.tif"), "c")).tolist() == [want]
    c.save(tmp_path / "c.jpg", quality=100)  # an Adobe CMYK JPEG, decoded by PIL
    got = load_image(tmp_path / "c.jpg").astype(int)
    assert np.abs(got[0] - np.array(want)).max() <= 3


def test_greyscale_rgba_and_bitmap_images_become_rgb(tmp_path):
    Image.new("L", (2, 2), 77).save(tmp_path / "l.png")
    Image.new("RGBA", (2, 2), (1, 2, 3, 0)).save(tmp_path / "rgba.png")
    Image.new("1", (2, 2), 1).save(tmp_path / "one.png")
    assert load_image(tmp_path / "l.png")[0, 0].tolist() == [77, 77, 77]
    assert load_image(tmp_path / "rgba.png")[0, 0].tolist() == [1, 2, 3]
    assert load_image(tmp_path / "one.png")[0, 0].tolist() == [255, 255, 255]


def test_a_decompression_bomb_is_refused_naming_file_and_limit(tmp_path):  # D8
    bomb = tmp_path / "bomb.png"
    Image.new("1", (14000, 13000)).save(bomb)  # 182 MP in a few KB
    assert bomb.stat().st_size < 100_000
    with pytest.raises(DataError) as err:
        load_image(bomb)
    msg = str(err.value)
    assert str(bomb) in msg and f"{MAX_PIXELS:,}" in msg and "182,000,000" in msg
    below_pil = tmp_path / "big.png"  # above vdreid's limit, below PIL's own
    Image.new("1", (9000, 8000)).save(below_pil)
    with pytest.raises(DataError, match=r"72,000,000 \(9000x8000\) pixels"):
        load_image(below_pil)


def test_a_large_photo_below_the_limit_still_decodes(tmp_path):
    Image.new("RGB", (6000, 4000), (9, 8, 7)).save(tmp_path / "big.jpg")
    assert load_image(tmp_path / "big.jpg", (8, 4)).shape == (8, 4, 3)
