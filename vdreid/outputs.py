"""How vdreid writes files: the one rule every command follows (docs/reliability.md).

- **Atomic.** A file is written under a temporary name beside its
  destination (``.vdreid-tmp-<pid>-<random>-<name>``), flushed to disk and
  renamed over the destination. A failure or a kill leaves the old file (or
  none), never half a file, and a failed write never removes a file that
  was there before. Use :func:`atomic` (a path to write to, then verify)
  or :func:`write_text` / :func:`write_bytes`.
- **Mode.** New files follow the umask, like any other program's output.
- **Stale temporary files** (a process killed in the middle of a write)
  are removed the next time vdreid writes in that folder: only names of
  the pattern above, last modified before this process started, whose
  writing process is gone. Nothing else is ever removed.
- **Clear OS errors.** An unwritable path raises OutputError naming the
  file, the reason and what to do; :func:`check_writable` runs that check
  before long work, and :func:`refuse_input` keeps an output from
  replacing an input.
- **Folders of several files** (run folders, the demo's folder) are an
  :class:`OwnedFolder`: a marker lists the files vdreid wrote there, vdreid
  replaces or deletes only those, refuses a folder holding anything else,
  and a lock keeps two processes from writing one folder at once.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from vdreid import __version__
from vdreid.errors import OutputError

try:  # POSIX; elsewhere folders are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

TEMP_PREFIX = ".vdreid-tmp-"
#: ``.vdreid-tmp-<pid>-<8 random characters>-<destination name>[suffix]``
TEMP_NAME = re.compile(r"^\.vdreid-tmp-(?P<pid>\d+)-[a-z0-9_]{8}-.+$")
#: In an OwnedFolder: the list of the files vdreid wrote, and the writers' lock.
MARKER = ".vdreid-files.json"
LOCK = ".vdreid.lock"
#: When this process started (as far as vdreid can tell: when it was imported).
STARTED = time.time()


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
FILE_MODE = 0o666 & ~_UMASK
_cleaned: set[Path] = set()


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def output_error(path: Path | str, exc: OSError, what: str, todo: str = "") -> OutputError:
    """``cannot write <what> <path>: <reason>; <todo>`` as an OutputError."""
    todo = todo or (
        "free some space or choose another path"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT)
        else "choose a writable path"
    )
    return OutputError(f"cannot write {what} {path}: {_reason(exc)}; {todo}")


def _file_in_the_way(path: Path) -> Path | None:
    """The first of ``path`` and its parents that exists and is not a folder."""
    return next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)


def make_folder(path: Path | str, what: str = "folder") -> Path:
    """``path`` as an existing folder (created with its parents when missing)."""
    path = Path(path)
    blocker = _file_in_the_way(path)
    if blocker == path:
        raise OutputError(
            f"{what} {path} is a file, not a folder; choose a folder (new, empty or one vdreid wrote)"
        )
    if blocker is not None:
        raise OutputError(
            f"cannot create {what} {path}: {blocker} is a file, not a folder; choose another path"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create {what} {path}: {_reason(exc)}; choose a writable location"
        ) from None
    return path


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def is_temp_name(name: str) -> bool:
    return TEMP_NAME.match(name) is not None


def clean_stale_temps(folder: Path | str) -> list[Path]:
    """Remove vdreid's temporary files in ``folder`` left by killed writes.

    Only names of vdreid's pattern, last modified before this process
    started, whose writing process is no longer running. Runs once per
    folder per process; returns what it removed.
    """
    folder = Path(folder)
    key = folder.absolute()
    if key in _cleaned:
        return []
    _cleaned.add(key)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        m = TEMP_NAME.match(entry.name)
        if m is None or _alive(int(m.group("pid"))):
            continue
        try:
            if not entry.is_file(follow_symlinks=False) or entry.stat().st_mtime >= STARTED:
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def _folder_for(dest: Path, what: str) -> Path:
    """``dest``'s folder, created, with the stale temporary files of killed writes removed."""
    blocker = _file_in_the_way(dest.parent)
    if blocker is not None:
        raise OutputError(
            f"cannot write {what} {dest}: {blocker} is a file, not a folder; choose another path"
        )
    folder = make_folder(dest.parent, f"the folder of {what}")
    clean_stale_temps(folder)
    return folder


def temp_name(dest: Path, suffix: str = "") -> Path:
    """A fresh temporary name beside ``dest`` (not created: its writer creates it)."""
    token = secrets.token_hex(4)
    return dest.parent / f"{TEMP_PREFIX}{os.getpid()}-{token}-{dest.name}{suffix}"


def temp_beside(dest: Path, what: str = "file") -> Path:
    """A new empty file beside ``dest`` with vdreid's temporary name (mode 0600)."""
    folder = _folder_for(dest, what)
    try:
        fd, name = tempfile.mkstemp(
            prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=f"-{dest.name}", dir=folder
        )
        os.close(fd)
    except OSError as exc:
        raise output_error(dest, exc, what) from None
    return Path(name)


def _fsync(path: Path, *, folder: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if folder:  # some file systems cannot open folders; the rename stands
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not folder:
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic(dest: Path | str, what: str = "file", *, suffix: str = "") -> Iterator[Path]:
    """Yield a fresh temporary path beside ``dest``; on a clean exit the file
    written there replaces ``dest``.

    Write (and verify) the file at the yielded path inside the block; an
    exception or a kill leaves ``dest`` as it was and removes the temporary
    file. ``suffix`` ends the temporary name (for writers and runtimes that
    read only their format's suffix). OSErrors of the block become an
    OutputError naming ``dest``.
    """
    dest = Path(dest)
    if dest.is_dir():
        raise OutputError(
            f"{what} {dest} is a folder; pass a file path (for example {dest / 'out'}{dest.suffix})"
        )
    _folder_for(dest, what)
    tmp = temp_name(dest, suffix)
    try:
        try:
            yield tmp
            os.chmod(tmp, FILE_MODE)  # a writer may have put its own file there (ms.export: 0400)
            _fsync(tmp)
            os.replace(tmp, dest)
        except OSError as exc:
            raise output_error(dest, exc, what) from None
        _fsync(dest.parent, folder=True)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(dest: Path | str, data: bytes, what: str = "file") -> Path:
    dest = Path(dest)
    with atomic(dest, what) as tmp:
        tmp.write_bytes(data)
    return dest


def write_text(dest: Path | str, text: str, what: str = "file") -> Path:
    return write_bytes(dest, text.encode("utf-8"), what)


def check_writable(dest: Path | str, what: str = "file") -> Path:
    """Fail now, not after the work, when ``dest`` could not be written."""
    dest = Path(dest)
    if dest.is_dir():
        raise OutputError(f"{what} {dest} is a folder; pass a file path")
    temp_beside(dest, what).unlink()
    return dest


def same_file(a: Path | str, b: Path | str) -> bool:
    a, b = Path(a), Path(b)
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.absolute().resolve() == b.absolute().resolve()


def refuse_input(dest: Path | str, inputs: Mapping[str, Path | str | None], flag: str) -> None:
    """An output must never replace one of the command's inputs."""
    for name, path in inputs.items():
        if path is not None and same_file(dest, path):
            raise OutputError(
                f"{flag} {dest} is the {name} this command reads; writing it would destroy the "
                f"input: choose another {flag}"
            )


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def reserve(path: Path, size: int, what: str, todo: str) -> None:
    """Allocate ``size`` bytes of the open-for-writing file ``path`` now.

    A memory-mapped file on a full disk kills the process with SIGBUS when
    a page is first written; a file whose blocks are allocated up front
    cannot. Checks the free space first for a clear message.
    """
    free = free_bytes(path.parent)
    if size > free:
        raise OutputError(
            f"not enough space for the {what} in {path.parent}: it needs {_human(size)}, the "
            f"disk has {_human(free)} free; {todo}"
        )
    allocate = getattr(os, "posix_fallocate", None)
    if allocate is None:  # pragma: no cover - macOS, Windows
        return
    fd = os.open(path, os.O_RDWR)
    try:
        allocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # the file system cannot: carry on
            return
        raise output_error(path.parent, exc, what, todo) from None
    finally:
        os.close(fd)


class OwnedFolder:
    """A folder vdreid writes several files into, and what it wrote there.

    The marker (``.vdreid-files.json``) lists the files (relative paths; a
    name ending in "/" is a whole subtree vdreid created) that vdreid wrote.
    A path is claimed *before* it is written, so a file whose write was
    killed still counts as vdreid's. Only claimed files are replaced or
    deleted; anything else in the folder is "foreign" and the commands that
    write the folder refuse it (:meth:`refuse_foreign`).
    """

    def __init__(self, root: Path | str, kind: str, flag: str = "--out"):
        self.root = Path(root)
        self.kind = kind
        self.flag = flag  # how the user named the folder, for messages

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    def owned(self) -> list[str]:
        try:
            data = json.loads(self.marker.read_text(encoding="utf-8"))
            files = data["files"]
        except (FileNotFoundError, NotADirectoryError):
            if self.root.exists():  # a file, or below one: say so
                make_folder(self.root, self.flag)
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OutputError(
                f"{self.marker} (the list of the files vdreid wrote in {self.root}) is damaged "
                f"({exc}); move the folder's files away or choose another folder"
            ) from None
        return [str(f) for f in files]

    def has_marker(self) -> bool:
        return self.marker.is_file()

    def claim(self, *rels: str) -> None:
        """Add ``rels`` (relative to the root) to the marker."""
        files = set(self.owned())
        new = {r for r in rels if r not in files}
        if not new and self.has_marker():
            return
        self._write_marker(sorted(files | new))

    def _write_marker(self, files: list[str]) -> None:
        body = {"written_by": f"vdreid {__version__}", "kind": self.kind, "files": files}
        write_text(self.marker, json.dumps(body, indent=1) + "\n", "file list")

    def path(self, rel: str) -> Path:
        """``root/rel``, claimed as vdreid's."""
        self.claim(rel)
        return self.root / rel

    def _present(self) -> Iterator[str]:
        """Relative paths of the files (and links) under the root."""
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = Path(dirpath).relative_to(self.root)
            links = [d for d in dirnames if os.path.islink(Path(dirpath) / d)]
            for name in sorted(filenames + links):
                yield (rel_dir / name).as_posix()
            dirnames[:] = sorted(d for d in dirnames if d not in links)

    def foreign(
        self,
        inputs: Iterable[str] = (),
        also_owned: Iterable[str] = (),
        *,
        limit: int | None = None,
    ) -> list[str]:
        """Files under the root vdreid did not write (sorted); ``inputs`` are
        top-level names the caller reads and never writes (skipped),
        ``also_owned`` files to count as vdreid's though not listed. With
        ``limit``, the search stops after that many (a home folder given as
        --out is not walked whole)."""
        owned = set(self.owned()) | set(also_owned)
        trees = tuple(o for o in owned if o.endswith("/"))
        skip = set(inputs)
        out = []
        for rel in self._present():
            name = rel.rsplit("/", 1)[-1]
            if rel in (MARKER, LOCK) or rel in owned or rel.startswith(trees):
                continue
            if rel.split("/", 1)[0] in skip or is_temp_name(name):
                continue
            out.append(rel)
            if limit is not None and len(out) >= limit:
                break
        return sorted(out)

    def refuse_foreign(
        self, todo: str, inputs: Iterable[str] = (), also_owned: Iterable[str] = ()
    ) -> None:
        found = self.foreign(inputs, also_owned, limit=6)
        if found:
            shown = ", ".join(found[:5]) + (" and more" if len(found) > 5 else "")
            raise OutputError(
                f"{self.flag} {self.root} holds files vdreid did not write ({shown}); "
                f"vdreid only replaces its own files: {todo}"
            )

    def remove_owned(self, rels: Iterable[str] | None = None) -> list[str]:
        """Delete claimed files (all, or those of ``rels``) and the folders they
        leave empty; unclaim them. Returns what was deleted."""
        owned = self.owned()
        chosen = owned if rels is None else [r for r in owned if r in set(rels)]
        removed = []
        for rel in chosen:
            path = self.root / rel.rstrip("/")
            try:
                if rel.endswith("/") and path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif path.is_file() or path.is_symlink():
                    path.unlink()
                else:
                    continue
            except OSError as exc:
                raise OutputError(
                    f"cannot remove {path} (written by vdreid earlier): {_reason(exc)}; "
                    "remove it yourself or choose another folder"
                ) from None
            removed.append(rel)
            self._prune(path.parent)
        self._write_marker(sorted(set(owned) - set(chosen)))
        return removed

    def _prune(self, folder: Path) -> None:
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    @contextlib.contextmanager
    def locked(self) -> Iterator[OwnedFolder]:
        """Hold the folder's writer lock; a second process is refused at once."""
        make_folder(self.root, self.flag)
        if fcntl is None:  # pragma: no cover
            yield self
            return
        path = self.root / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise output_error(path, exc, f"the lock file of {self.flag}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "?"
                raise OutputError(
                    f"{self.flag} {self.root} is being written by another vdreid process (pid {holder}); "
                    "wait for it to finish, or choose another folder"
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            yield self
        finally:
            os.close(fd)  # releases the lock
