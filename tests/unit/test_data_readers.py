"""Dataset readers: what they read from each layout, and the errors that name the culprit."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
from PIL import Image

from vdreid.data.images import load_image
from vdreid.data.readers import read_dataset
from vdreid.data.records import Modality, arrays
from vdreid.data.synth import Shape, synthesize
from vdreid.data.sysu_split_files import official_ids
from vdreid.errors import ConfigError, DataError

SMALL = Shape(ids=8, test_ids=3, per_cam=2, size=(16, 8))


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("trees")
    for layout in ("sysu", "regdb", "llcm"):
        synthesize(layout, base / layout, shape=SMALL, seed=3, progress=False)
    return {layout: base / layout for layout in ("sysu", "regdb", "llcm")}


@pytest.fixture
def copy_of(trees, tmp_path):
    def make(layout: str) -> Path:
        return Path(shutil.copytree(trees[layout], tmp_path / layout))

    return make


def _ids(path: Path) -> set[int]:
    return {int(t) for t in path.read_text().strip().split(",")}


# --- SYSU-MM01 ---------------------------------------------------------------------------


def test_sysu_splits_follow_the_exp_files(trees):
    root = trees["sysu"]
    index = read_dataset("sysu", root)
    train, val, test = (_ids(root / "exp" / f"{s}_id.txt") for s in ("train", "val", "test"))
    assert {r.pid for r in index.train} == train | val  # official recipe: train + val
    assert {r.pid for r in index.val} == val
    assert {r.pid for r in index.test} == test
    assert index.notes == () and index.name == "sysu" and index.root == root
    for r in index.train + index.test:
        assert Path(r.path).is_file()
        assert r.path.split("/")[-3] == f"cam{r.cam}" and int(r.path.split("/")[-2]) == r.pid
        assert r.modality == (Modality.INFRARED if r.cam in (3, 6) else Modality.VISIBLE)
    assert [r.path for r in index.test] == sorted(r.path for r in index.test)


@pytest.mark.parametrize("split", ["train", "val"])
def test_sysu_test_ids_in_the_training_split_files_are_refused(copy_of, split):  # D5
    root = copy_of("sysu")
    test = sorted(_ids(root / "exp" / "test_id.txt"))
    path = root / "exp" / f"{split}_id.txt"
    path.write_text(path.read_text().strip() + "," + ",".join(map(str, test[:2])) + "\n")
    with pytest.raises(DataError) as err:
        read_dataset("sysu", root)
    msg = str(err.value)
    assert f"2 id(s) are both {split} and test ids ({test[0]}, {test[1]})" in msg
    assert str(root / "exp") in msg and "delete exp/" in msg


def test_sysu_mat_twins_read_like_the_txt_files(trees, copy_of):
    root = copy_of("sysu")
    for split in ("train", "val", "test"):
        ids = sorted(_ids(root / "exp" / f"{split}_id.txt"))
        sio.savemat(
            str(root / "exp" / f"{split}_id.mat"), {"id": np.asarray([ids], dtype=np.uint16)}
        )
        (root / "exp" / f"{split}_id.txt").unlink()

    def rel(base: Path) -> list[tuple[str, int, int]]:
        return [
            (str(Path(r.path).relative_to(base)), r.pid, r.cam)
            for r in read_dataset("sysu", base).train
        ]

    assert rel(root) == rel(trees["sysu"])


def test_sysu_without_exp_uses_the_packaged_official_ids(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (4, 8), (90, 20, 30)).save(buf, format="JPEG")
    for cam in range(1, 7):
        (tmp_path / f"cam{cam}").mkdir()
    for split in ("train", "val", "test"):
        for pid in official_ids(split):
            for cam in (1, 3):  # one visible and one infrared camera per person
                folder = tmp_path / f"cam{cam}" / f"{pid:04d}"
                folder.mkdir()
                (folder / "0001.jpg").write_bytes(buf.getvalue())
    index = read_dataset("sysu", tmp_path)
    assert len({r.pid for r in index.train}) == 395 and len({r.pid for r in index.test}) == 96
    assert (
        len(index.notes) == 1
        and "packaged" in index.notes[0]
        and str(tmp_path / "exp") in index.notes[0]
    )


def test_sysu_bad_id_token_names_the_file_and_token(copy_of):
    root = copy_of("sysu")
    (root / "exp" / "test_id.txt").write_text("1,2,x3,4\n")
    with pytest.raises(
        DataError, match=r"test_id\.txt: token 3 is 'x3'; expected a non-negative integer"
    ):
        read_dataset("sysu", root)


def test_sysu_id_file_must_be_one_line(copy_of):
    root = copy_of("sysu")
    (root / "exp" / "val_id.txt").write_text("334,335\n336\n")
    with pytest.raises(DataError, match=r"val_id\.txt has 2 non-empty lines; expected ONE line"):
        read_dataset("sysu", root)


def test_sysu_missing_camera_folder_is_named(copy_of):
    root = copy_of("sysu")
    shutil.rmtree(root / "cam4")
    with pytest.raises(DataError, match=rf"camera folder {root / 'cam4'} does not exist"):
        read_dataset("sysu", root)


def test_sysu_empty_identity_folder_is_named(copy_of):
    root = copy_of("sysu")
    pid = sorted(_ids(root / "exp" / "train_id.txt"))[0]
    folder = next(p for p in sorted(root.glob(f"cam*/{pid:04d}")))
    for f in folder.iterdir():
        f.unlink()
    with pytest.raises(DataError, match=rf"identity folder {folder} holds no images"):
        read_dataset("sysu", root)


def test_sysu_listed_id_without_images_is_an_error(copy_of):
    root = copy_of("sysu")
    (root / "exp" / "train_id.txt").write_text(
        (root / "exp" / "train_id.txt").read_text().strip() + ",9999\n"
    )
    with pytest.raises(DataError, match=r"train id\(s\) have no folder in any of .*\[9999\]"):
        read_dataset("sysu", root)


def test_corrupt_image_names_the_path(copy_of):
    root = copy_of("sysu")
    victim = sorted(root.glob("cam1/*/*.jpg"))[0]
    victim.write_bytes(victim.read_bytes()[:40])  # truncated JPEG
    with pytest.raises(DataError, match=rf"cannot decode image {victim}"):
        load_image(victim)
    garbage = root / "cam1" / "not-an-image.jpg"
    garbage.write_bytes(b"hello")
    with pytest.raises(DataError, match=rf"cannot decode image {garbage}.*JPEG/PNG/BMP"):
        load_image(garbage)


# --- RegDB -------------------------------------------------------------------------------


def test_regdb_identity_comes_from_the_label_column(copy_of):
    root = copy_of("regdb")
    path = root / "idx" / "train_visible_2.txt"
    lines = path.read_text().splitlines()
    rel, _ = lines[0].split()
    lines[0] = f"{rel} 7"  # the folder says otherwise; the label wins
    path.write_text("\n".join(lines) + "\n")
    index = read_dataset("regdb", root, trial=2)
    first = next(r for r in index.train if r.path == str(root / rel))
    assert first.pid == 7 and first.cam == 1 and first.modality == Modality.VISIBLE
    assert index.trial == 2 and index.notes == ()
    assert {r.cam for r in index.test if r.modality == Modality.INFRARED} == {2}


def test_regdb_default_trial_is_one_and_noted(trees):
    index = read_dataset("regdb", trees["regdb"])
    assert index.trial == 1 and "trial 1" in index.notes[0]
    with pytest.raises(ConfigError, match="trial must be one of 1..10, got 11"):
        read_dataset("regdb", trees["regdb"], trial=11)


def test_regdb_label_out_of_range_names_file_and_line(copy_of):
    root = copy_of("regdb")
    path = root / "idx" / "test_thermal_1.txt"
    lines = path.read_text().splitlines()
    rel, _ = lines[2].split()
    lines[2] = f"{rel} 11"  # 8 + 3 identity folders: labels 0..10
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"{path}:3: label 11 is out of range; expected 0..10"):
        read_dataset("regdb", root)


def test_regdb_image_in_train_and_test_is_refused(copy_of):  # D5 (labels are per split)
    root = copy_of("regdb")
    test_line = (root / "idx" / "test_visible_1.txt").read_text().splitlines()[0]
    train = root / "idx" / "train_visible_1.txt"
    train.write_text(train.read_text() + test_line.split()[0] + " 0\n")
    with pytest.raises(DataError) as err:
        read_dataset("regdb", root)
    msg = str(err.value)
    assert "regdb trial 1" in msg and "1 image(s) are in both the training and the test" in msg
    assert str(root / test_line.split()[0]) in msg


def test_regdb_index_line_pointing_nowhere(copy_of):
    root = copy_of("regdb")
    path = root / "idx" / "train_thermal_1.txt"
    path.write_text("Thermal/1/missing.bmp 0\n")
    with pytest.raises(
        DataError, match=rf"{path}:1: image {root}/Thermal/1/missing.bmp does not exist"
    ):
        read_dataset("regdb", root)


# --- LLCM --------------------------------------------------------------------------------


def test_llcm_reads_cameras_from_path_components(trees):
    root = trees["llcm"]
    index = read_dataset("llcm", root)
    assert {r.pid for r in index.test} == _ids(root / "idx" / "test_id.txt")
    for r in index.train + index.test:
        cam_part = next(p for p in Path(r.path).parts if p.startswith("cam"))
        assert r.cam == int(cam_part[3:])
        assert ("_nir" in r.path) == (r.modality == Modality.INFRARED)
    assert {r.cam for r in index.test if r.modality == Modality.INFRARED} <= {
        1,
        2,
        4,
        5,
        6,
        7,
        8,
        9,
    }
    labels, n = index.train_labels()
    assert n == 8 and set(labels.tolist()) == set(range(8))


def test_llcm_missing_camera_folder(copy_of):
    root = copy_of("llcm")
    shutil.rmtree(root / "test_nir" / "cam5")
    with pytest.raises(
        DataError, match=rf"camera folder {root / 'test_nir' / 'cam5'} does not exist"
    ):
        read_dataset("llcm", root)


# --- manifest ----------------------------------------------------------------------------


def _manifest(tmp_path: Path, header: str, rows: list[str]) -> Path:
    (tmp_path / "img").mkdir(exist_ok=True)
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (4, 8)).save(tmp_path / "img" / name)
    path = tmp_path / "list.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_manifest_reads_rows_relative_to_itself(tmp_path):
    path = _manifest(
        tmp_path,
        "split,path,pid,cam,modality,extra",
        [
            "train,img/a.png,5,1,visible,x",
            "train,img/b.png,5,2,infrared,y",
            "test,img/c.png,9,3,infrared,z",
        ],
    )
    index = read_dataset("manifest", path)
    assert [(Path(r.path).name, r.pid, r.cam, r.modality) for r in index.train] == [
        ("a.png", 5, 1, Modality.VISIBLE),
        ("b.png", 5, 2, Modality.INFRARED),
    ]
    assert len(index.test) == 1 and index.val == () and index.root == tmp_path
    pids, cams, mods = arrays(index.test)
    assert pids.tolist() == [9] and cams.tolist() == [3] and mods.tolist() == [1]
    shutil.copy(path, tmp_path / "manifest.csv")
    assert read_dataset("manifest", tmp_path).train == index.train  # a folder holding manifest.csv


def test_manifest_missing_column_is_named(tmp_path):
    path = _manifest(tmp_path, "path,pid,modality,split", ["img/a.png,1,visible,train"])
    with pytest.raises(
        DataError, match=rf"manifest {path} lacks column\(s\) cam .*expected a header row"
    ):
        read_dataset("manifest", path)


def test_manifest_bad_values_name_the_line(tmp_path):
    path = _manifest(
        tmp_path,
        "path,pid,cam,modality,split",
        ["img/a.png,1,1,visible,train", "img/b.png,1,1,thermal,train"],
    )
    with pytest.raises(
        DataError, match=rf"{path}:3: modality 'thermal'; expected visible or infrared"
    ):
        read_dataset("manifest", path)
    path.write_text("path,pid,cam,modality,split\nimg/zz.png,1,1,visible,train\n")
    with pytest.raises(DataError, match=rf"{path}:2: image {tmp_path}/img/zz.png does not exist"):
        read_dataset("manifest", path)


def test_manifest_with_a_byte_order_mark_reads_like_without(tmp_path):  # D19
    path = _manifest(
        tmp_path,
        "path,pid,cam,modality,split",
        ["img/a.png,5,1,visible,train", "img/c.png,9,3,infrared,test"],
    )
    plain = read_dataset("manifest", path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # Excel's "CSV UTF-8"
    assert read_dataset("manifest", path) == plain


def test_manifest_duplicate_rows_name_both_lines(tmp_path):  # D6
    rows = ["img/a.png,5,1,visible,train", "img/c.png,9,3,infrared,test"]
    path = _manifest(
        tmp_path, "path,pid,cam,modality,split", [*rows, "img/../img/c.png,9,3,infrared,test"]
    )
    with pytest.raises(DataError) as err:
        read_dataset("manifest", path)
    assert str(err.value).startswith(f"{path}:4 repeats line 3 (image {tmp_path}/img/../img/c.png)")
    assert "delete one of them" in str(err.value)


@pytest.mark.parametrize(
    "again, shown",
    [
        ("img/a.png,6,1,visible,train", "(pid 6, cam 1, visible, train)"),
        ("img/a.png,5,2,infrared,train", "(pid 5, cam 2, infrared, train)"),
        ("img/a.png,5,1,visible,val", "(pid 5, cam 1, visible, val)"),
    ],
)
def test_manifest_conflicting_rows_name_both_lines(tmp_path, again, shown):  # D6
    rows = ["img/a.png,5,1,visible,train", "img/c.png,9,3,infrared,test", again]
    path = _manifest(tmp_path, "path,pid,cam,modality,split", rows)
    with pytest.raises(DataError) as err:
        read_dataset("manifest", path)
    msg = str(err.value)
    assert f"lines 2 and 4 both list image {tmp_path}/img/a.png" in msg
    assert "(pid 5, cam 1, visible, train)" in msg and shown in msg


def test_manifest_test_identity_also_in_train_or_val_is_refused(tmp_path):  # D5
    rows = [
        "img/a.png,5,1,visible,train",
        "img/b.png,9,2,visible,val",
        "img/c.png,9,3,infrared,test",
    ]
    path = _manifest(tmp_path, "path,pid,cam,modality,split", rows)
    with pytest.raises(DataError) as err:
        read_dataset("manifest", path)
    msg = str(err.value)
    assert "1 identity is in the test split and in train/val, first pid 9 (lines 3 and 4)" in msg
    rows[1] = "img/b.png,5,2,infrared,val"  # a val identity may also be a train identity
    path.write_text("path,pid,cam,modality,split\n" + "\n".join(rows) + "\n")
    assert len(read_dataset("manifest", path).val) == 1


def test_read_dataset_rejects_unknown_names_and_misplaced_trials(trees):
    with pytest.raises(ConfigError, match="unknown dataset 'market'"):
        read_dataset("market", trees["sysu"])
    with pytest.raises(ConfigError, match="trial=2 applies to RegDB only"):
        read_dataset("sysu", trees["sysu"], trial=2)
    with pytest.raises(DataError, match="SYSU-MM01 folder .* does not exist"):
        read_dataset("sysu", trees["sysu"] / "nowhere")
