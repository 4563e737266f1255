"""LLCM: ``idx/train_{vis,nir}.txt``, ``idx/test_id.txt`` and ``test_{vis,nir}/camN/<pid>/``.

Training identities come from the label column of the idx files; the
camera of a training image is the ``camN`` component of its path (0 when
the path has none). Test records are every image of the test ids in
``test_vis/cam1..9`` and ``test_nir/cam{1,2,4..9}``; pid and camera are
parsed from the path components (never by splitting the whole path on
"cam"). Records are in sorted path order within each modality.
"""

from __future__ import annotations

import re
from pathlib import Path

from vdreid.data import files
from vdreid.data.records import DatasetIndex, Modality, Record
from vdreid.errors import DataError

VIS_CAMERAS = (1, 2, 3, 4, 5, 6, 7, 8, 9)
NIR_CAMERAS = (1, 2, 4, 5, 6, 7, 8, 9)
TEST_FOLDERS = {
    "test_vis": (Modality.VISIBLE, VIS_CAMERAS),
    "test_nir": (Modality.INFRARED, NIR_CAMERAS),
}
TRAIN_FILES = {"train_vis.txt": Modality.VISIBLE, "train_nir.txt": Modality.INFRARED}
_CAM = re.compile(r"cam(\d+)$")


def camera_of(relpath: str) -> int:
    """The N of the first ``camN`` path component, 0 when there is none."""
    for part in Path(relpath).parts[:-1]:
        m = _CAM.match(part)
        if m:
            return int(m.group(1))
    return 0


def read_llcm(root: Path) -> DatasetIndex:
    root = files.require_dir(
        root, "LLCM folder", "pass the folder that holds idx/, test_vis/ and test_nir/"
    )
    idx = files.require_dir(
        root / "idx", "LLCM index folder", "expected idx/train_vis.txt, train_nir.txt, test_id.txt"
    )
    train: list[Record] = []
    for name, mod in TRAIN_FILES.items():
        for rel, label in files.parse_index_file(idx / name, root):
            train.append(Record(str(root / rel), label, camera_of(rel), mod))
    test_id_path = idx / "test_id.txt"
    test_ids = files.parse_id_line(
        files.read_text(
            test_id_path, "LLCM test id file", "expected ONE line of comma-separated ids"
        ),
        test_id_path,
    )
    test: list[Record] = []
    for top, (mod, cams) in TEST_FOLDERS.items():
        files.require_dir(
            root / top, "LLCM test folder", f"expected {top}/camN/<pid:04d>/ image folders"
        )
        for cam in cams:
            cam_dir = files.require_dir(
                root / top / f"cam{cam}",
                "LLCM camera folder",
                f"expected {top}/cam{cam}/<pid:04d>/ image folders",
            )
            for pid in sorted(set(test_ids)):
                folder = cam_dir / f"{pid:04d}"
                if folder.is_dir():
                    for n in files.nonempty_image_names(folder, "LLCM identity folder"):
                        test.append(Record(str(folder / n), pid, cam, mod))
    found = {r.pid for r in test}
    missing = [p for p in test_ids if p not in found]
    if missing:
        raise DataError(
            f"LLCM: {len(missing)} test id(s) listed in {test_id_path} have no image folder under "
            f"{root}/test_vis or test_nir, first {missing[:5]}; the copy is incomplete"
        )
    return DatasetIndex(name="llcm", root=root, train=tuple(train), test=tuple(test))
