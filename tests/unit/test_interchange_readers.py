"""Weight files read without their frameworks: torch's two formats by a
restricted unpickler, MindSpore's .ckpt by a protobuf wire reader.

Each reader is checked against the framework's own loader on files the
framework writes here, and the restricted unpickler against pickles that
try to run code."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

from vdreid.errors import CheckpointError
from vdreid.interchange.mindspore_ckpt import (
    _bytes_field,
    _encode_varint,
    _key,
    load_mindspore_ckpt,
    write_mindspore_ckpt,
)
from vdreid.interchange.native import torch_file_bytes
from vdreid.interchange.torch_files import LEGACY_MAGIC, LEGACY_PROTOCOL, load_torch_file


# -- torch ----------------------------------------------------------------------------
def _torch_objects(torch):
    """What checkpoints hold: a module's state dict (with _metadata), views,
    0-d tensors, half / bfloat16 / int / bool, a Parameter, plain values."""
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    base = torch.arange(20, dtype=torch.float32)
    return {
        "model": module.state_dict(),
        "views": OrderedDict(
            t=torch.randn(3, 5).t(), slice=base[3:11], strided=base[::3], empty=torch.zeros(0, 4)
        ),
        "kinds": [
            torch.tensor(7, dtype=torch.int64),
            torch.randn(4, dtype=torch.float16),
            torch.randn(4, dtype=torch.bfloat16),
            torch.tensor([True, False]),
            torch.arange(6, dtype=torch.int32).reshape(2, 3),
            torch.nn.Parameter(torch.ones(2)),
        ],
        "epoch": 80,
        "best_top1": 0.6002,
        "name": "mvd",
        "bytes": b"\x00\x01",
        "nested": {"a": (1, 2.5, None), "s": {3, 4}},
    }


def _assert_same(theirs, ours, path="obj"):
    torch = pytest.importorskip("torch")
    if isinstance(theirs, torch.Tensor):
        want = theirs.detach()
        want = (want.float() if want.dtype == torch.bfloat16 else want).numpy()
        assert isinstance(ours, np.ndarray), path
        assert ours.shape == want.shape and ours.dtype == want.dtype, path
        assert np.array_equal(ours, want), path
    elif isinstance(theirs, dict):
        assert list(ours) == list(theirs), path
        for k in theirs:
            _assert_same(theirs[k], ours[k], f"{path}[{k!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), path
        for i, (a, b) in enumerate(zip(theirs, ours, strict=True)):
            _assert_same(a, b, f"{path}[{i}]")
    else:
        assert type(ours) is type(theirs) and ours == theirs, path


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_torch_files_read_as_torch_load_weights_only_reads_them(tmp_path, zipped):
    torch = pytest.importorskip("torch")
    path = tmp_path / "checkpoint.pth.tar"
    torch.save(_torch_objects(torch), path, _use_new_zipfile_serialization=zipped)
    assert path.read_bytes()[:2] == (b"PK" if zipped else b"\x80\x02")
    _assert_same(torch.load(path, weights_only=True), load_torch_file(path))


def test_the_torch_writer_is_read_by_torch(tmp_path):
    torch = pytest.importorskip("torch")
    state = OrderedDict(
        w=np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        n=np.zeros((), np.int64),
        big=np.ones(70_000, np.float32),
    )
    path = tmp_path / "state.pt"
    path.write_bytes(torch_file_bytes(state))
    loaded = torch.load(path, weights_only=True)
    assert list(loaded) == list(state)
    for k, v in state.items():
        assert loaded[k].shape == v.shape and np.array_equal(loaded[k].numpy(), v), k


class _RunsCode:
    """Unpickling this calls os.system (what a malicious checkpoint does)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def _zip_with(pickled: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def _legacy_with(pickled: bytes) -> bytes:
    header = b"".join(pickle.dumps(v, protocol=2) for v in (LEGACY_MAGIC, LEGACY_PROTOCOL, {}))
    return header + pickled + pickle.dumps([], protocol=2)


@pytest.mark.parametrize("wrap", [_zip_with, _legacy_with], ids=["zip", "legacy"])
@pytest.mark.parametrize(
    "payload",
    [
        lambda marker: {"model": _RunsCode(f"touch {marker}")},
        lambda marker: [_RunsCode(f"touch {marker}")],
    ],
    ids=["in-a-dict", "top-level"],
)
def test_a_pickle_that_runs_code_is_refused_before_anything_runs(tmp_path, wrap, payload):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    path.write_bytes(wrap(pickle.dumps(payload(marker), protocol=2)))
    with pytest.raises(CheckpointError, match=r"refused: its pickle asks for (posix|os)\.system"):
        load_torch_file(path)
    assert not marker.exists()


def test_a_pickle_that_calls_builtins_is_refused(tmp_path):
    evil = b"\x80\x02cbuiltins\neval\nX\x08\x00\x00\x001 + 1 ==q\x00\x85R."
    path = tmp_path / "evil.pt"
    path.write_bytes(_zip_with(evil))
    with pytest.raises(CheckpointError, match=r"builtins\.eval, which a tensor file never needs"):
        load_torch_file(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda good: good[: len(good) // 2], "damaged zip archive|truncated|damaged"),
        (lambda good: _zip_with(b"\x80\x02}q\x00."), None),  # a valid, empty dict
        (lambda good: b"PK\x03\x04" + b"\x00" * 40, "damaged zip archive"),
        (lambda good: _legacy_with(b"\x80\x02}q\x00(X\x01")[:-20], "cut short|damaged"),
    ],
    ids=["truncated-zip", "empty-dict", "garbage-zip", "truncated-legacy"],
)
def test_damaged_torch_files_say_so(tmp_path, content, message):
    good = torch_file_bytes(OrderedDict(w=np.ones((3, 3), np.float32)))
    path = tmp_path / "damaged.pth"
    path.write_bytes(content(good))
    if message is None:
        assert load_torch_file(path) == {}
        return
    with pytest.raises(CheckpointError, match=message):
        load_torch_file(path)


def test_a_zip_without_a_pickle_is_not_a_torch_file(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez(path, a=np.ones(3))
    with pytest.raises(CheckpointError, match=r"without <folder>/data.pkl, so not a torch file"):
        load_torch_file(path)


def test_a_storage_missing_from_the_archive_is_named(tmp_path):
    good = torch_file_bytes(OrderedDict(w=np.ones((3, 3), np.float32)))
    source = zipfile.ZipFile(io.BytesIO(good))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in source.namelist():
            if not name.endswith("/data/0"):
                archive.writestr(name, source.read(name))
    path = tmp_path / "no-storage.pt"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="storage 0 is missing from the archive"):
        load_torch_file(path)


# -- MindSpore ----------------------------------------------------------------------------
def test_ckpt_files_read_as_mindspore_loads_them(tmp_path):
    ms = pytest.importorskip("mindspore")
    rng = np.random.default_rng(0)
    params = [
        {
            "name": "net.conv.weight",
            "data": ms.Tensor(rng.standard_normal((4, 3, 3, 3), np.float32)),
        },
        {"name": "global_step", "data": ms.Tensor(np.array(7, np.int32))},
        {"name": "h", "data": ms.Tensor(rng.standard_normal(5).astype(np.float16))},
        {"name": "bf", "data": ms.Tensor(rng.standard_normal(5).astype(np.float32), ms.bfloat16)},
        {"name": "flags", "data": ms.Tensor(np.array([True, False]))},
        {"name": "steps", "data": ms.Tensor(np.array([1, -5], np.int64))},
    ]
    for crc in (False, True):
        path = tmp_path / f"crc{crc}.ckpt"
        ms.save_checkpoint(
            params, str(path), crc_check=crc, append_dict={"epoch_num": 3, "note": "hi"}
        )
        ours, theirs = load_mindspore_ckpt(path), ms.load_checkpoint(str(path))
        assert list(ours) == list(theirs)
        for name, value in theirs.items():
            if isinstance(value, str):
                assert ours[name] == value
                continue
            want = (value.float() if value.dtype == ms.bfloat16 else value).asnumpy()
            assert ours[name].dtype == want.dtype and ours[name].shape == want.shape, name
            assert np.array_equal(ours[name], want), name


def test_the_ckpt_writer_writes_the_bytes_mindspore_writes(tmp_path):
    ms = pytest.importorskip("mindspore")
    rng = np.random.default_rng(1)
    state = {
        "a.weight": rng.standard_normal((3, 2)).astype(np.float32),
        "step": np.array(3, np.int64),
        "b": np.array([1.5], np.float64),
    }
    ours = write_mindspore_ckpt(tmp_path / "ours.ckpt", state)
    theirs = tmp_path / "theirs.ckpt"
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in state.items()], str(theirs))
    assert ours.read_bytes() == theirs.read_bytes()


def _value(tag: str, dims: tuple[int, ...], kind: str, content: bytes) -> bytes:
    """One Checkpoint message as MindSpore writes it (dims unpacked, then type, content)."""
    tensor = b"".join(_key(1, 0) + _encode_varint(d) for d in dims)
    tensor += _bytes_field(2, kind.encode()) + _bytes_field(3, content)
    return _bytes_field(1, _bytes_field(1, tag.encode()) + _bytes_field(2, tensor))


def test_a_large_tensor_saved_in_slices_reads_whole(tmp_path):
    """MindSpore writes a tensor over 512 MB as consecutive values with its tag."""
    whole = np.arange(12, dtype=np.float32).reshape(3, 4)
    flat = whole.reshape(-1)
    path = tmp_path / "sliced.ckpt"
    path.write_bytes(
        _value("w", (3, 4), "Float32", flat[:5].tobytes())
        + _value("w", (3, 4), "Float32", flat[5:].tobytes())
        + _value("b", (2,), "Float32", np.ones(2, np.float32).tobytes())
    )
    loaded = load_mindspore_ckpt(path)
    assert list(loaded) == ["w", "b"] and np.array_equal(loaded["w"], whole)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda raw: raw[:-7], "not a readable MindSpore checkpoint"),
        (lambda raw: raw + b"crc_num" + (123).to_bytes(10, "big"), "CRC32 .* does not match"),
        (lambda raw: b"\x0a\x05\x0a\x03abc" + b"\x12\xff\xff", "not a readable MindSpore"),
        (lambda raw: b"", "holds no tensors"),
    ],
    ids=["truncated", "bad-crc", "garbage", "empty"],
)
def test_damaged_ckpt_files_say_so(tmp_path, damage, message):
    raw = write_mindspore_ckpt(
        tmp_path / "good.ckpt", {"w": np.ones((2, 2), np.float32)}
    ).read_bytes()
    path = tmp_path / "bad.ckpt"
    path.write_bytes(damage(raw))
    with pytest.raises(CheckpointError, match=message):
        load_mindspore_ckpt(path)


def test_a_scalar_reads_0_d_as_mindspore_reads_it(tmp_path):
    """A 0-d tensor has no dims; some MindSpore versions write dims [0] for it."""
    path = tmp_path / "old.ckpt"
    path.write_bytes(_value("step", (0,), "Int32", struct.pack("<i", 42)))
    step = load_mindspore_ckpt(path)["step"]
    assert step.shape == () and int(step) == 42
