"""Reading a dataset's folders and small text files, with errors that name them.

Shared by every reader: list the images of a folder (sorted, dot-files and
non-images skipped), require a folder, parse ``<relpath> <label>`` index
files and one-line comma-separated id files.
"""

from __future__ import annotations

import os
from pathlib import Path

from vdreid.errors import DataError

#: File endings read as images (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def is_image_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)


def require_dir(path: Path, what: str, todo: str) -> Path:
    """``path`` if it is a folder, else a DataError saying what was expected there."""
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise DataError(f"{what} {path} {state}; {todo}")
    return path


def image_names(folder: Path) -> list[str]:
    """Image file names in ``folder``, sorted (the official file-name order)."""
    try:
        names = os.listdir(folder)
    except OSError as exc:
        raise DataError(
            f"cannot list folder {folder}: {exc.strerror}; check its permissions"
        ) from None
    return sorted(n for n in names if is_image_name(n))


def nonempty_image_names(folder: Path, what: str) -> list[str]:
    """Like :func:`image_names`, but an identity folder without images is an error."""
    names = image_names(folder)
    if not names:
        raise DataError(
            f"{what} {folder} holds no images (expected at least one .jpg/.jpeg/.png/.bmp file); "
            "the copy may be incomplete: re-extract the dataset or remove the empty folder"
        )
    return names


def read_text(path: Path, what: str, todo: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{what} {path} does not exist; {todo}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {what} {path}: {exc}; expected a UTF-8 text file") from None


def parse_id_line(text: str, path: Path) -> tuple[int, ...]:
    """Ids from ONE line of comma-separated integers (SYSU exp/*.txt, LLCM test_id.txt).

    Whitespace around tokens and one trailing comma are tolerated.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) != 1:
        raise DataError(
            f"id file {path} has {len(lines)} non-empty lines; expected ONE line of "
            "comma-separated ids such as 1,2,5,7"
        )
    tokens = [t.strip() for t in lines[0].split(",")]
    if tokens and tokens[-1] == "":
        tokens.pop()
    ids = []
    for pos, tok in enumerate(tokens, start=1):
        if not tok.isdigit():
            raise DataError(
                f"id file {path}: token {pos} is {tok!r}; expected a non-negative integer id "
                "(one line of comma-separated ids such as 1,2,5,7); fix or re-download the file"
            )
        ids.append(int(tok))
    if not ids:
        raise DataError(f"id file {path} lists no ids; expected one line of comma-separated ids")
    return tuple(ids)


def parse_index_file(
    path: Path, root: Path, *, max_label: int | None = None
) -> list[tuple[str, int]]:
    """``(relpath, label)`` pairs from a ``<relpath> <label>`` file (RegDB, LLCM idx/).

    Relative paths are checked against ``root``; labels must be integers in
    ``[0, max_label)`` when ``max_label`` is given.
    """
    text = read_text(path, "index file", "restore the idx/ folder of the dataset")
    out: list[tuple[str, int]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataError(
                f"{path}:{lineno}: {line.strip()!r} has {len(parts)} fields; "
                "expected '<relative image path> <integer label>'"
            )
        rel, raw = parts
        try:
            label = int(raw)
        except ValueError:
            raise DataError(
                f"{path}:{lineno}: label {raw!r} is not an integer; expected '<relative image path> <integer label>'"
            ) from None
        if label < 0 or (max_label is not None and label >= max_label):
            limit = f"0..{max_label - 1}" if max_label is not None else ">= 0"
            raise DataError(
                f"{path}:{lineno}: label {label} is out of range; expected {limit} "
                f"(one label per identity folder); fix the index file"
            )
        if not (root / rel).is_file():
            raise DataError(
                f"{path}:{lineno}: image {root / rel} does not exist; "
                "the index file and the image folders disagree: re-extract the dataset"
            )
        out.append((rel, label))
    if not out:
        raise DataError(
            f"index file {path} is empty; expected lines '<relative image path> <integer label>'"
        )
    return out
