"""The decoded-image cache: contents, memory mapping, staleness, errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vdreid.data.cache import ImageCache, default_cache_dir
from vdreid.data.images import load_image
from vdreid.errors import DataError, OutputError

SIZE = (24, 12)


@pytest.fixture
def images(tmp_path) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(7):
        p = tmp_path / "imgs" / f"{i:02d}.{'png' if i % 2 else 'jpg'}"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (30 + i, 15, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def test_cache_holds_the_resized_images_memory_mapped(images, tmp_path):
    cache = ImageCache.open(images, SIZE, tmp_path / "c", progress=False)
    assert cache.built and len(cache) == 7
    assert isinstance(cache.images, np.memmap) and cache.images.dtype == np.uint8
    assert cache.images.shape == (7, *SIZE, 3) and not cache.images.flags.writeable
    for i, p in enumerate(images):
        assert np.array_equal(cache.images[i], load_image(p, SIZE))
    picked = cache.take(np.array([6, 0, 6]))
    assert picked.flags.c_contiguous and np.array_equal(picked[0], cache.images[6])


def test_reopening_reuses_and_touching_a_file_rebuilds(images, tmp_path):
    first = ImageCache.open(images, SIZE, tmp_path / "c", progress=False)
    again = ImageCache.open(images, SIZE, tmp_path / "c", progress=False)
    assert first.built and not again.built and again.fingerprint == first.fingerprint
    st = os.stat(images[3])
    os.utime(images[3], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    touched = ImageCache.open(images, SIZE, tmp_path / "c", progress=False)
    assert touched.built and touched.fingerprint != first.fingerprint
    assert touched.folder == first.folder  # rebuilt in place, not next to the stale one


def test_replaced_image_content_reaches_the_cache(images, tmp_path):
    ImageCache.open(images, SIZE, tmp_path / "c", progress=False)
    Image.new("RGB", (15, 30), (10, 200, 30)).save(images[1])
    cache = ImageCache.open(images, SIZE, tmp_path / "c", progress=False)
    assert cache.built and np.all(cache.images[1] == [10, 200, 30])


def test_other_sizes_and_lists_get_their_own_cache(images, tmp_path):
    a = ImageCache.open(images, SIZE, tmp_path / "c", progress=False)
    b = ImageCache.open(images, (12, 6), tmp_path / "c", progress=False)
    c = ImageCache.open(images[:3], SIZE, tmp_path / "c", progress=False)
    assert len({a.folder, b.folder, c.folder}) == 3 and b.images.shape == (7, 12, 6, 3)
    assert not ImageCache.open(images, SIZE, tmp_path / "c", progress=False).built


def test_worker_processes_build_the_same_cache(images, tmp_path, monkeypatch):
    import vdreid.data.cache as cache_mod

    monkeypatch.setattr(cache_mod, "_CHUNK", 2)  # several chunks for two workers
    one = ImageCache.open(images, SIZE, tmp_path / "one", progress=False)
    two = ImageCache.open(images, SIZE, tmp_path / "two", workers=2, progress=False)
    assert np.array_equal(np.asarray(one.images), np.asarray(two.images))


def test_corrupt_or_missing_images_are_named(images, tmp_path):
    Path(images[4]).write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(DataError, match=rf"cannot decode image {images[4]}"):
        ImageCache.open(images, SIZE, tmp_path / "c", progress=False)
    assert not list((tmp_path / "c").rglob("meta.json"))  # no half-built cache left behind as valid
    os.remove(images[4])
    with pytest.raises(DataError, match=rf"image {images[4]} does not exist"):
        ImageCache.open(images, SIZE, tmp_path / "c", progress=False)


def test_the_default_cache_is_in_the_users_cache_keyed_by_the_datasets_path(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    a, b = tmp_path / "one" / "SYSU-MM01", tmp_path / "two" / "SYSU-MM01"
    home = tmp_path / "xdg" / "vdreid" / "images"
    assert default_cache_dir(a).parent == home and default_cache_dir(a).name.startswith(
        "SYSU-MM01-"
    )
    assert default_cache_dir(a) != default_cache_dir(b)  # the same name elsewhere
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert default_cache_dir(Path("..") / "one" / "SYSU-MM01") == default_cache_dir(a)
    assert tmp_path / "one" not in default_cache_dir(a).parents  # never inside the dataset
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG rule: absolute only
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir(a).parent == tmp_path / "home" / ".cache" / "vdreid" / "images"


def test_an_unwritable_cache_folder_names_the_flag(images, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("in the way")
    with pytest.raises(OutputError, match=r"pass --cache-dir DIR .* to use another folder"):
        ImageCache.open(images, SIZE, blocked / "cache", progress=False)


def test_a_damaged_cache_is_rebuilt_with_one_line(images, tmp_path, capfd):  # D10
    first = ImageCache.open(images, SIZE, tmp_path / "c", progress=False)
    npy = first.folder / "images.npy"
    expected = np.asarray(first.images).copy()
    del first
    with open(npy, "r+b") as f:
        f.truncate(npy.stat().st_size // 2)
    capfd.readouterr()
    again = ImageCache.open(images, SIZE, tmp_path / "c", progress=False)
    err = capfd.readouterr().err
    assert again.built and np.array_equal(np.asarray(again.images), expected)
    assert err.count("\n") == 1 and "is damaged" in err and "rebuilding it" in err
    assert str(again.folder) in err.replace("\n", "")


def test_a_full_disk_is_a_clear_error_before_decoding(images, tmp_path, monkeypatch):  # D9
    import vdreid.data.cache as cache_mod
    from vdreid import outputs
    from vdreid.errors import OutputError

    decoded = []
    monkeypatch.setattr(cache_mod, "load_image", lambda p, s: decoded.append(p))
    monkeypatch.setattr(outputs, "free_bytes", lambda folder: 1000)
    with pytest.raises(OutputError) as err:
        ImageCache.open(images, SIZE, tmp_path / "c", progress=False)
    msg = str(err.value)
    assert "not enough space for the image cache" in msg and "the disk has 1.0 KB free" in msg
    assert "cache_dir" in msg and decoded == []
    (folder,) = (tmp_path / "c").iterdir()
    assert os.listdir(folder) == []  # no cache-sized temporary file left


def test_allocation_failure_removes_the_temp_file(images, tmp_path, monkeypatch):  # D9
    import errno

    from vdreid.errors import OutputError

    if not hasattr(os, "posix_fallocate"):
        pytest.skip("no posix_fallocate on this platform: only the free-space check applies")

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(OutputError, match="No space left on device"):
        ImageCache.open(images, SIZE, tmp_path / "c", progress=False)
    (folder,) = (tmp_path / "c").iterdir()
    assert os.listdir(folder) == []


_KILLED_BUILD = """
import os, signal, sys
import vdreid.data.cache as cache
from vdreid.data.cache import ImageCache

def killed(*args):  # in the middle of decoding
    os.kill(os.getpid(), signal.SIGKILL)

cache.load_image = killed
ImageCache.open(sys.argv[2:], (24, 12), sys.argv[1], progress=False)
"""


def test_a_killed_build_leaves_a_temp_the_next_build_removes(images, tmp_path):  # D14
    import subprocess
    import sys

    killed = subprocess.run([sys.executable, "-c", _KILLED_BUILD, str(tmp_path / "c"), *images])
    assert killed.returncode == -9
    (folder,) = (tmp_path / "c").iterdir()
    (orphan,) = os.listdir(folder)
    assert orphan.startswith(".vdreid-tmp-") and orphan.endswith("-images.npy")
    rebuild = "import sys; from vdreid.data.cache import ImageCache; "
    rebuild += "ImageCache.open(sys.argv[2:], (24, 12), sys.argv[1], progress=False)"
    subprocess.run([sys.executable, "-c", rebuild, str(tmp_path / "c"), *images], check=True)
    assert sorted(os.listdir(folder)) == ["images.npy", "meta.json"]
