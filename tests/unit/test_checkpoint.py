"""Checkpoints: exact round trip, clear load errors, atomic writes, strict state reports."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

from vdreid import __version__
from vdreid.checkpoint import (
    META_BACKEND,
    META_SPEC_HASH,
    META_VERSION,
    StateReport,
    check_state,
    load_checkpoint,
    model_state,
    namespace_state,
    save_checkpoint,
    state_report,
    with_namespace,
)
from vdreid.errors import CheckpointError, OutputError
from vdreid.optim import optimizer_step
from vdreid.presets import recipe
from vdreid.spec import init_state, param_table, spec_hash


@pytest.fixture(scope="module")
def spec():
    return recipe("tiny").model_spec(4)


@pytest.fixture
def tensors(spec):
    state = init_state(spec, 7)
    rng = np.random.default_rng(0)
    optim = {
        "step": np.array(12, np.int64),
        "V.head.fc1.weight.exp_avg": rng.standard_normal((32, 64)).astype(np.float32),
        "flags": np.array([True, False]),
        "f64": rng.standard_normal((3, 2)).T,  # non-contiguous float64
    }
    return {**state, **with_namespace(optim, "optim")}


def test_round_trip_is_bitwise_exact(tmp_path, spec, tensors):
    path = save_checkpoint(
        tmp_path / "ck.safetensors", tensors, spec=spec, backend="torch", meta={"epoch": "3"}
    )
    ck = load_checkpoint(path)
    assert set(ck.tensors) == set(tensors)
    for name, value in tensors.items():
        got = ck.tensors[name]
        assert got.dtype == value.dtype and got.shape == value.shape, name
        assert got.tobytes() == np.ascontiguousarray(value).tobytes(), name
    assert ck.spec == spec
    assert ck.meta == {
        META_VERSION: __version__,
        META_BACKEND: "torch",
        META_SPEC_HASH: spec_hash(spec),
        "epoch": "3",
    }
    assert ck.backend == "torch"
    assert list(model_state(ck.tensors)) == list(param_table(spec))  # canonical order back


def test_namespaces_split_model_and_other_state(tensors, spec):
    assert set(model_state(tensors)) == set(param_table(spec))
    optim = namespace_state(tensors, "optim")
    assert set(optim) == {"step", "V.head.fc1.weight.exp_avg", "flags", "f64"}
    assert optim["step"].shape == ()
    with pytest.raises(CheckpointError):
        with_namespace({}, "a/b")


def test_checkpoint_without_spec(tmp_path):
    path = save_checkpoint(tmp_path / "plain.safetensors", {"a": np.arange(3, dtype=np.float32)})
    ck = load_checkpoint(path)
    assert ck.spec is None and ck.backend is None and ck.meta == {META_VERSION: __version__}


def test_load_errors_name_the_problem(tmp_path, spec):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"PK\x03\x04 this is a zip, not safetensors" * 4)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(garbage)
    good = save_checkpoint(tmp_path / "good.safetensors", init_state(spec, 0), spec=spec)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(truncated)
    bad_spec = tmp_path / "bad_spec.safetensors"
    save_file(
        {"a": np.zeros(2, np.float32)}, str(bad_spec), metadata={"vdreid.spec": '{"preset": "x"}'}
    )
    with pytest.raises(CheckpointError, match="stored model spec is invalid"):
        load_checkpoint(bad_spec)


def test_bad_metadata_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="reserved"):
        save_checkpoint(tmp_path / "a.safetensors", {"a": np.zeros(1)}, meta={"vdreid.spec": "{}"})
    with pytest.raises(CheckpointError, match="must be a string"):
        save_checkpoint(tmp_path / "a.safetensors", {"a": np.zeros(1)}, meta={"epoch": 3})  # type: ignore[dict-item]
    assert list(tmp_path.iterdir()) == []


def test_failed_writes_leave_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "ck.safetensors", {"a": np.ones(4, np.float32)})
    before = path.read_bytes()
    with pytest.raises(CheckpointError):  # unserialisable tensor: fails inside the writer
        save_checkpoint(path, {"a": np.array(["text", None], dtype=object)})

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OutputError) as err:  # D19: the reason and what to do, not "numpy arrays"
        save_checkpoint(path, {"a": np.zeros(4, np.float32)})
    assert str(err.value) == (
        f"cannot write checkpoint {path}: No space left on device; "
        "free some space or choose another path"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["ck.safetensors"]
    assert path.read_bytes() == before


def test_checkpoints_follow_the_umask_like_every_other_output(tmp_path):  # D20
    path = save_checkpoint(tmp_path / "ck.safetensors", {"a": np.ones(4, np.float32)})
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


_KILLED_WRITE = """
import os, signal, sys
import numpy as np
from vdreid.checkpoint import save_checkpoint

def killed(src, dst):  # between the write and the rename
    os.kill(os.getpid(), signal.SIGKILL)

os.replace = killed
save_checkpoint(sys.argv[1], {"a": np.full(1000, 2.0, np.float32)})
"""


def test_the_next_write_removes_the_temp_of_a_killed_one(tmp_path):  # D14
    path = save_checkpoint(tmp_path / "last.safetensors", {"a": np.ones(1000, np.float32)})
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITE, str(path)])
    assert killed.returncode == -signal.SIGKILL
    (orphan,) = [p for p in tmp_path.iterdir() if p != path]
    assert orphan.stat().st_size > 4000  # a full-size temporary file
    assert float(load_checkpoint(path).tensors["a"][0]) == 1.0  # the old one intact
    again = "import sys, numpy as np; from vdreid.checkpoint import save_checkpoint; "
    again += "save_checkpoint(sys.argv[1], {'a': np.zeros(3, np.float32)})"
    subprocess.run([sys.executable, "-c", again, str(path)], check=True)  # a later process
    assert list(tmp_path.iterdir()) == [path]


def test_strict_report_lists_every_problem_at_once(spec):
    table = param_table(spec)
    state = init_state(spec, 0)
    check_state(table, state)  # a matching state passes
    del state["V.backbone.conv1.weight"], state["S.neck.bn.var"]
    state["V.head.fc1.weight"] = state["V.head.fc1.weight"].T
    state["V.backbone.fc.weight"] = np.zeros((3, 3), np.float32)
    report = state_report(table, state)
    assert isinstance(report, StateReport) and not report.ok
    assert report.missing == ("V.backbone.conv1.weight", "S.neck.bn.var")
    assert report.unexpected == ("V.backbone.fc.weight",)
    assert report.mismatched == (("V.head.fc1.weight", (32, 64), (64, 32)),)
    with pytest.raises(CheckpointError) as err:
        check_state(table, state, source="ck.safetensors")
    msg = str(err.value)
    for word in (
        "ck.safetensors",
        "2 missing",
        "V.backbone.conv1.weight",
        "S.neck.bn.var",
        "1 unexpected",
        "V.backbone.fc.weight",
        "1 with the wrong shape",
        "expected (32, 64), got (64, 32)",
    ):
        assert word in msg
    # expected may also be plain shapes or another state
    assert state_report({"a": (2,)}, {"a": np.zeros(2)}).ok
    assert state_report({"a": np.zeros((2, 1))}, {"a": np.zeros(2)}).mismatched == (
        ("a", (2, 1), (2,)),
    )


def test_optimizer_state_layout_is_checked_and_gives_the_step():
    shapes = {"a.weight": (2, 3), "a.bias": (2,)}
    optim = {"step": np.array(7, np.int64)}
    for name, shape in shapes.items():
        optim[f"m/{name}"] = optim[f"v/{name}"] = np.zeros(shape, np.float32)
    assert optimizer_step(optim, shapes) == 7
    missing = {k: v for k, v in optim.items() if k != "v/a.bias"}
    with pytest.raises(CheckpointError, match=r"optimiser state .*v/a\.bias"):
        optimizer_step(missing, shapes)
    for bad in (np.array(7.0), np.array(-1)):
        with pytest.raises(CheckpointError, match="optim/step must be a non-negative integer"):
            optimizer_step({**optim, "step": bad}, shapes)
    with pytest.raises(CheckpointError, match=r"step \(expected \(\), got \(1,\)\)"):
        optimizer_step({**optim, "step": np.array([7])}, shapes)
