"""SYSU-MM01: ``<root>/cam1..cam6/<pid:04d>/<NNNN>.jpg`` plus ``exp/`` id files.

Split ids come from ``exp/{train,val,test}_id.txt`` (ONE line of
comma-separated ids) or their ``.mat`` twins (variable ``id``); an id in
both the test file and the train or val file is an error. When the
folder has no ``exp/`` at all, the official ids packaged with vdreid are
used and the index says so in ``notes``. Training uses train + val ids (the
official recipe), ``val`` holds the val-id records, ``test`` the test-id
records of all six cameras. Records are in sorted path order
(camera, then person, then file name).
"""

from __future__ import annotations

from pathlib import Path

from vdreid.data import files
from vdreid.data.records import DatasetIndex, Modality, Record
from vdreid.data.sysu_split_files import official_ids
from vdreid.errors import DataError

CAMERAS = (1, 2, 3, 4, 5, 6)
RGB_CAMERAS = (1, 2, 4, 5)
IR_CAMERAS = (3, 6)
SPLITS = ("train", "val", "test")


def modality_of(cam: int) -> Modality:
    return Modality.INFRARED if cam in IR_CAMERAS else Modality.VISIBLE


def read_split_ids(root: Path) -> tuple[dict[str, tuple[int, ...]], tuple[str, ...]]:
    """{split: ids} from ``root/exp`` (or the packaged official files) and notes."""
    exp = root / "exp"
    if not exp.exists():
        ids = {s: official_ids(s) for s in SPLITS}
        note = (
            f"{exp} does not exist: using the official SYSU-MM01 split ids packaged with vdreid "
            f"({len(ids['train'])} train, {len(ids['val'])} val, {len(ids['test'])} test)"
        )
        return ids, (note,)
    files.require_dir(
        exp, "SYSU-MM01 split folder", "it must hold train_id.txt, val_id.txt and test_id.txt"
    )
    ids = {s: _read_id_file(exp, s) for s in SPLITS}
    for split in ("train", "val"):
        shared = sorted(set(ids[split]) & set(ids["test"]))
        if shared:
            raise DataError(
                f"SYSU-MM01 split files in {exp}: {len(shared)} id(s) are both {split} and test "
                f"ids ({', '.join(map(str, shared[:20]))}{' ...' if len(shared) > 20 else ''}); "
                "testing on identities the model was trained on measures memorisation: fix "
                f"{split}_id and test_id, or delete exp/ to use the official split packaged "
                "with vdreid"
            )
    return ids, ()


def _read_id_file(exp: Path, split: str) -> tuple[int, ...]:
    txt, mat = exp / f"{split}_id.txt", exp / f"{split}_id.mat"
    if txt.is_file():
        return files.parse_id_line(files.read_text(txt, "id file", ""), txt)
    if mat.is_file():
        return _read_mat_ids(mat)
    raise DataError(
        f"SYSU-MM01 split file {txt} does not exist (nor {mat.name}); expected ONE line of "
        f"comma-separated {split} ids: copy exp/ from the dataset, or delete exp/ to use the "
        "official ids packaged with vdreid"
    )


def _read_mat_ids(path: Path) -> tuple[int, ...]:
    import numpy as np
    import scipy.io as sio

    try:
        data = sio.loadmat(str(path))
    except Exception as exc:  # scipy raises several types for a damaged file
        raise DataError(
            f"cannot read MATLAB id file {path}: {exc}; expected a .mat file with variable 'id'"
        ) from None
    if "id" not in data:
        found = sorted(k for k in data if not k.startswith("__"))
        raise DataError(
            f"MATLAB id file {path} has no variable 'id' (found {found}); expected a 1xN array 'id'"
        )
    ids = np.asarray(data["id"]).ravel()
    if ids.size == 0 or not np.all(ids >= 0) or not np.all(ids == np.round(ids)):
        raise DataError(
            f"MATLAB id file {path}: 'id' must hold non-negative integers, got {ids[:8]}..."
        )
    return tuple(int(i) for i in ids)


def read_sysu(root: Path) -> DatasetIndex:
    root = files.require_dir(
        root, "SYSU-MM01 folder", "pass the folder that holds cam1..cam6 and exp/"
    )
    ids, notes = read_split_ids(root)
    for cam in CAMERAS:
        files.require_dir(
            root / f"cam{cam}",
            "SYSU-MM01 camera folder",
            "expected cam1..cam6 (RGB 1, 2, 4, 5; IR 3, 6) with one <pid:04d> folder per person",
        )
    by_split: dict[str, list[Record]] = {}
    for split in SPLITS:
        records = _records(root, ids[split])
        found = {r.pid for r in records}
        missing = [p for p in ids[split] if p not in found]
        if missing:
            raise DataError(
                f"SYSU-MM01: {len(missing)} {split} id(s) have no folder in any of "
                f"{root}/cam1..cam6, first {missing[:5]} (expected folders such as "
                f"{root / 'cam1' / f'{missing[0]:04d}'}); the copy is incomplete or the split file "
                "belongs to another dataset"
            )
        by_split[split] = records
    train = tuple(sorted(by_split["train"] + by_split["val"]))
    return DatasetIndex(
        name="sysu",
        root=root,
        train=train,
        val=tuple(by_split["val"]),
        test=tuple(by_split["test"]),
        notes=notes,
    )


def _records(root: Path, pids: tuple[int, ...]) -> list[Record]:
    out: list[Record] = []
    for cam in CAMERAS:
        mod = modality_of(cam)
        for pid in sorted(set(pids)):
            folder = root / f"cam{cam}" / f"{pid:04d}"
            if not folder.is_dir():
                continue  # this person was not seen by this camera
            for name in files.nonempty_image_names(folder, "SYSU-MM01 identity folder"):
                out.append(Record(str(folder / name), pid, cam, mod))
    return out
