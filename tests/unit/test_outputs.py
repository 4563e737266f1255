"""The output-path rule (vdreid.outputs): atomic writes, modes, stale temps,
clear OS errors, inputs never replaced, owned folders and their lock."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vdreid import outputs
from vdreid.errors import OutputError


def _temp(folder: Path, pid: int, name: str = "last.safetensors", age: float = 60.0) -> Path:
    """A temporary file of vdreid's pattern, last written ``age`` seconds before this process."""
    path = folder / f"{outputs.TEMP_PREFIX}{pid}-abcd_123-{name}"
    path.write_bytes(b"half a file")
    old = outputs.STARTED - age
    os.utime(path, (old, old))
    return path


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_written_files_follow_the_umask(tmp_path):  # D20
    old = os.umask(0o027)
    try:
        import importlib

        importlib.reload(outputs)  # the mask is read once, when vdreid is imported
        path = outputs.write_text(tmp_path / "a.json", "{}")
        assert path.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
        importlib.reload(outputs)
    path = outputs.write_text(tmp_path / "b.json", "{}")
    assert path.stat().st_mode & 0o777 == 0o666 & ~old


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = outputs.write_text(tmp_path / "r.json", "old")
    with pytest.raises(RuntimeError, match="verification failed"):
        with outputs.atomic(path) as tmp:
            tmp.write_text("new but wrong")
            raise RuntimeError("verification failed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["r.json"]


def test_os_errors_become_one_clear_line(tmp_path, monkeypatch):  # D11, D19
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match=r"afile is a file, not a folder"):
        outputs.write_text(tmp_path / "afile" / "m.onnx", "x")
    (tmp_path / "adir").mkdir()
    with pytest.raises(OutputError, match=r"adir is a folder; pass a file path"):
        outputs.write_text(tmp_path / "adir", "x")
    with pytest.raises(OutputError, match=r"adir is a folder; pass a file path"):
        outputs.check_writable(tmp_path / "adir")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OutputError) as err:
        outputs.write_text(tmp_path / "x.json", "x", "evaluation results")
    msg = str(err.value)
    assert "cannot write evaluation results" in msg and "x.json" in msg
    assert "No space left on device; free some space" in msg
    assert sorted(os.listdir(tmp_path)) == ["adir", "afile"]


def test_unwritable_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    def denied(*args, **kwargs):  # as in a read-only or foreign folder (root may write anyway)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(outputs.tempfile, "mkstemp", denied)
    with pytest.raises(OutputError) as err:
        outputs.check_writable(tmp_path / "results.json", "--json")
    assert str(err.value) == (
        f"cannot write --json {tmp_path / 'results.json'}: Permission denied; "
        "choose a writable path"
    )


def test_an_output_may_not_replace_an_input(tmp_path):  # D2
    ckpt = tmp_path / "c.safetensors"
    ckpt.write_bytes(b"weights")
    (tmp_path / "sub").mkdir()
    other_spelling = tmp_path / "sub" / ".." / "c.safetensors"
    with pytest.raises(OutputError, match="is the --checkpoint this command reads"):
        outputs.refuse_input(other_spelling, {"--checkpoint": ckpt}, "--out")
    outputs.refuse_input(tmp_path / "m.onnx", {"--checkpoint": ckpt, "--root": None}, "--out")


def test_stale_temps_of_killed_writes_are_removed_and_nothing_else(tmp_path):  # D14
    dead = _dead_pid()
    stale = _temp(tmp_path, dead)
    fresh = _temp(tmp_path, dead, "eval.json", age=-60)  # written after this process started
    live = _temp(tmp_path, os.getppid())  # its writer may still be running
    lookalikes = [
        tmp_path / ".last.safetensors.abcd1234.tmp",
        tmp_path / f"vdreid-tmp-{dead}-abcd_123-x",
        tmp_path / "notes.txt",
    ]
    for p in lookalikes:
        p.write_text("user's")
        os.utime(p, (0, 0))
    outputs.write_text(tmp_path / "eval.json", "{}")  # the next write in that folder cleans
    assert not stale.exists()
    assert fresh.exists() and live.exists() and all(p.exists() for p in lookalikes)


def test_reserve_checks_free_space_and_allocates(tmp_path, monkeypatch):  # D9
    f = tmp_path / "big"
    f.write_bytes(b"")
    monkeypatch.setattr(outputs, "free_bytes", lambda folder: 1000)
    with pytest.raises(OutputError, match=r"needs 5.0 KB, the disk has 1.0 KB free; do this"):
        outputs.reserve(f, 5000, "image cache", "do this")
    monkeypatch.setattr(outputs, "free_bytes", lambda folder: 10**12)
    outputs.reserve(f, 5000, "image cache", "do this")
    if hasattr(os, "posix_fallocate"):
        assert f.stat().st_size == 5000 and f.stat().st_blocks * 512 >= 5000


def _folder_with(tmp_path: Path) -> outputs.OwnedFolder:
    folder = outputs.OwnedFolder(tmp_path / "run", "run")
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    for rel in ("config.toml", "checkpoints/last.safetensors"):
        folder.path(rel).write_text("vdreid's")
    return folder


def test_owned_folder_lists_foreign_files_and_removes_only_its_own(tmp_path):  # D1, D4
    folder = _folder_with(tmp_path)
    assert folder.foreign() == []
    (folder.root / "notes.txt").write_text("user's")
    (folder.root / "checkpoints" / "best.safetensors").write_text("user's")
    assert folder.foreign() == ["checkpoints/best.safetensors", "notes.txt"]
    with pytest.raises(OutputError) as err:
        folder.refuse_foreign("choose another --out")
    assert "holds files vdreid did not write (checkpoints/best.safetensors, notes.txt)" in str(
        err.value
    )
    assert sorted(folder.remove_owned()) == ["checkpoints/last.safetensors", "config.toml"]
    left = sorted(p.relative_to(folder.root).as_posix() for p in folder.root.rglob("*"))
    assert left == [
        ".vdreid-files.json",
        "checkpoints",
        "checkpoints/best.safetensors",
        "notes.txt",
    ]
    assert folder.owned() == []


def test_an_owned_tree_and_inputs_are_not_foreign(tmp_path):
    folder = outputs.OwnedFolder(tmp_path, "demo")
    folder.claim("data/")
    (tmp_path / "data" / "cam1").mkdir(parents=True)
    (tmp_path / "data" / "cam1" / "1.jpg").write_text("x")
    (tmp_path / "given" / "exp").mkdir(parents=True)
    (tmp_path / "given" / "exp" / "train_id.txt").write_text("1")
    assert folder.foreign(inputs=("given",)) == []
    assert folder.foreign() == ["given/exp/train_id.txt"]
    folder.remove_owned(["data/"])
    assert not (tmp_path / "data").exists() and (tmp_path / "given").is_dir()


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(tmp_path):
    folder = outputs.OwnedFolder(tmp_path / "run", "run")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from vdreid.outputs import OwnedFolder\n"
            "with OwnedFolder(sys.argv[1], 'run').locked():\n"
            "    print('locked', flush=True); time.sleep(60)",
            str(folder.root),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputError) as err:
            with folder.locked():
                pass
        assert f"is being written by another vdreid process (pid {holder.pid})" in str(err.value)
    finally:
        holder.kill()
        holder.wait()
    with folder.locked():  # the lock dies with its process (kill -9 included)
        pass


def test_a_damaged_file_list_is_a_clear_error(tmp_path):
    folder = outputs.OwnedFolder(tmp_path, "run")
    folder.marker.write_text("{not json")
    with pytest.raises(OutputError, match="is damaged"):
        folder.owned()


def test_stale_temp_age_uses_the_process_start(tmp_path, monkeypatch):
    dead = _dead_pid()
    stale = _temp(tmp_path, dead, age=1)
    monkeypatch.setattr(outputs, "STARTED", time.time() - 3600)  # began before the temp
    assert outputs.clean_stale_temps(tmp_path) == [] and stale.exists()
