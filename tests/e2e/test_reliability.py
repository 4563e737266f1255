"""Runs that keep the user's files and tell the truth (docs/reliability.md):
foreign folders refused, Ctrl-C and kill -9 mid-run, resume messages and
records, metrics once per step, two writers into one folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vdreid.checkpoint import load_checkpoint
from vdreid.cli.app import app
from vdreid.config import dump_toml
from vdreid.errors import ConfigError, Interrupted, OutputError
from vdreid.workflows.run_dir import RunDir
from vdreid.workflows.train import train

from e2e_runs import tiny_config

pytest.importorskip("torch")
runner = CliRunner()


def _invoke(*args: str):
    """The command's output, one line per message (no wrapping at 80 columns)."""
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "1000"})


def _steps(run: Path) -> list[tuple[int, int]]:
    return [(r["epoch"], r["step"]) for r in RunDir(run).read_metrics() if "step" in r]


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _write_config(sysu_root: Path, out: Path, backend: str = "torch", **fields) -> Path:
    """A --config file of the tiny e2e recipe (3 steps per epoch) at the model's 64x32
    (TOML has no null, so the size is written out)."""
    path = out.parent / f"{out.name}.toml"
    cfg = tiny_config(sysu_root, out, backend, **{"input_size": (64, 32), **fields})
    path.write_text(dump_toml(cfg))
    return path


def test_a_fresh_run_refuses_a_folder_with_files_it_did_not_write(sysu_root, tmp_path):  # D4
    out = tmp_path / "u"
    (out / "checkpoints").mkdir(parents=True)
    (out / "config.toml").write_text('# my notes\npreset = "tiny"\n')
    (out / "eval.json").write_text("mine")
    (out / "metrics.jsonl").write_text('{"mine": 1}\n')
    (out / "checkpoints" / "best.safetensors").write_text("another model")
    before = _files(out)
    with pytest.raises(OutputError) as err:
        train(tiny_config(sysu_root, out, "torch"), progress=False)
    msg = str(err.value)
    assert f"--out {out} holds files vdreid did not write" in msg
    assert "checkpoints/best.safetensors, config.toml, eval.json, metrics.jsonl" in msg
    assert _files(out) == before  # nothing written, nothing removed


def test_train_out_that_is_a_file_is_a_one_line_error(sysu_root, tmp_path):  # D11
    (tmp_path / "afile").write_text("x")
    r = _invoke("train", "--config", _write_config(sysu_root, tmp_path / "afile"), "--quiet")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "afile is a file, not a folder" in r.output


def test_eval_json_is_checked_before_the_features(sysu_root, tmp_path, monkeypatch):  # D11
    import vdreid.workflows.evaluate as evaluate_mod

    run = train(tiny_config(sysu_root, tmp_path / "run", "torch"), evaluate=False, progress=False)
    computed = []
    monkeypatch.setattr(evaluate_mod, "extract_features", lambda *a, **k: computed.append(1))
    (tmp_path / "jdir").mkdir()
    base = ("eval", "--checkpoint", run.checkpoint, "--dataset", "sysu", "--root", sysu_root)
    r = _invoke(*base, "--quiet", "--json-out", tmp_path / "jdir")
    assert r.exit_code == 2 and "jdir is a folder; pass a file path" in r.output
    r = _invoke(*base, "--quiet", "--json-out", run.checkpoint)
    assert r.exit_code == 2 and "is the --checkpoint this command reads" in r.output
    assert computed == [] and os.listdir(tmp_path / "jdir") == []


def _interrupt_at(monkeypatch, epoch: int, step: int) -> None:
    """Ctrl-C (KeyboardInterrupt) in the trainer's step ``step`` of ``epoch`` (0-based)."""
    from vdreid_torch.train import TorchTrainer

    real_step, real_epoch = TorchTrainer.step, TorchTrainer.set_epoch
    where = {}

    def set_epoch(self, e):
        where.update(epoch=e, step=0)
        return real_epoch(self, e)

    def interrupted_step(self, batch):
        if (where["epoch"], where["step"]) == (epoch, step):
            raise KeyboardInterrupt
        where["step"] += 1
        return real_step(self, batch)

    monkeypatch.setattr(TorchTrainer, "set_epoch", set_epoch)
    monkeypatch.setattr(TorchTrainer, "step", interrupted_step)


def test_ctrl_c_says_what_was_kept_and_how_to_go_on(sysu_root, tmp_path, monkeypatch):  # D17
    out = tmp_path / "run"
    config = _write_config(sysu_root, out, epochs=3, deterministic=True)
    _interrupt_at(monkeypatch, epoch=1, step=2)
    r = _invoke("train", "--config", config, "--quiet")
    assert r.exit_code == 130 and "Traceback" not in r.output
    said = " ".join(r.output.split())
    assert f"interrupted: kept {out}/checkpoints/last.safetensors (after epoch 1 of 3)" in said
    assert f"to go on, run: vdreid train --out {out} --resume auto" in said
    assert _steps(out) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]  # what ran before the stop

    monkeypatch.undo()
    r = _invoke("train", "--out", out, "--resume", "auto", "--quiet", "--no-eval")  # as told
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert f"settings: {out}/config.toml" in said
    assert f"resuming from {out}/checkpoints/last.safetensors after epoch 1 (of 3)" in said
    assert _steps(out) == [(e, s) for e in range(3) for s in range(3)]  # D15: each step once
    straight = tiny_config(sysu_root, tmp_path / "straight", "torch", epochs=3, deterministic=True)
    train(straight, evaluate=False, progress=False)
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.safetensors").tensors
    b = load_checkpoint(out / "checkpoints" / "last.safetensors").tensors
    assert [k for k in a if not np.array_equal(a[k], b[k])] == []


def test_ctrl_c_before_the_first_checkpoint(sysu_root, tmp_path, monkeypatch):  # D15, D16, D17
    out = tmp_path / "run"
    _interrupt_at(monkeypatch, epoch=0, step=2)
    cfg = tiny_config(sysu_root, out, "torch", epochs=2)
    with pytest.raises(Interrupted) as err:
        train(cfg, progress=False)
    assert str(err.value).startswith(f"no checkpoint was written yet in {out}; to go on, run:")
    assert _steps(out) == [(0, 0), (0, 1)]
    monkeypatch.undo()
    r = _invoke("train", "--out", out, "--resume", "auto", "--quiet", "--no-eval")
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert f"no checkpoint in {out}: starting a fresh run" in said
    assert f"{out} held a run stopped before its first checkpoint" in said
    assert _steps(out) == [(e, s) for e in range(2) for s in range(3)]  # no stale lines


def test_resume_lists_and_records_changed_settings(sysu_root, tmp_path):  # D18
    out = tmp_path / "run"
    train(tiny_config(sysu_root, out, "torch", epochs=2), evaluate=False, progress=False)
    r = _invoke(
        "train", "--out", out, "--resume", "auto", "--epochs", "3",
        "--set", "optim.lr=0.5", "--set", "augment.flip=0", "--quiet", "--no-eval",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    lr = tiny_config(sysu_root, out, "torch").optim.lr
    assert (
        f"settings changed since the recorded run: augment.flip 0.5 -> 0.0; epochs 2 -> 3; "
        f"optim.lr {json.dumps(lr)} -> 0.5 (recorded in {out}/resumes.jsonl)"
    ) in said
    (record,) = [json.loads(x) for x in (out / "resumes.jsonl").read_text().splitlines()]
    assert record["after_epoch"] == 2 and record["changed"]["optim.lr"] == {"was": lr, "now": 0.5}
    assert "lr = 0.5" in (out / "config.toml").read_text()  # the settings the run goes on with

    before = _files(out)
    r = _invoke("train", "--out", out, "--resume", "auto", "--epochs", "2", "--quiet")
    assert r.exit_code == 2
    assert "epochs = 2, but" in r.output and "already holds 3 epochs" in r.output
    assert _files(out) == before  # refused before anything was written


def test_demo_never_deletes_a_users_folders(tmp_path):  # D1
    out = tmp_path / "d"
    for rel in ("data/photos.txt", "run/results.txt"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("mine")
    r = _invoke("demo", "--out", out, "--epochs", "1", "--quiet")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "holds files vdreid did not write (data/photos.txt, run/results.txt)" in r.output
    assert (out / "data/photos.txt").read_text() == "mine"
    assert (out / "run/results.txt").read_text() == "mine"


def _wait_for(predicate, process: subprocess.Popen, timeout: float = 600) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "1000"}  # one line per message
    cmd = [sys.executable, "-m", "vdreid", "train", *args, "--quiet", "--no-eval"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_second_run_into_a_busy_folder_is_refused(sysu_root, tmp_path):
    out = tmp_path / "run"
    first = _start(["--config", str(_write_config(sysu_root, out, epochs=50))])
    try:
        _wait_for(lambda: len(_steps(out)) >= 1, first)
        before = (out / "config.toml").read_bytes()
        r = _invoke("train", "--config", _write_config(sysu_root, out, epochs=2), "--quiet")
        assert r.exit_code == 2
        said = " ".join(r.output.split())
        assert f"--out {out} is being written by another vdreid process (pid {first.pid})" in said
        assert (out / "config.toml").read_bytes() == before
    finally:
        first.kill()
        first.wait()


@pytest.mark.slow
@pytest.mark.training
def test_kill_9_mid_epoch_then_resume_is_bit_identical(backend, backend_name, sysu_root, tmp_path):
    """A real kill -9 in the middle of epoch 2 of 3, then `--resume auto`: the
    weights, Adam state and metrics equal an uninterrupted run's."""
    out, ref = tmp_path / "killed", tmp_path / "straight"
    fields = {"epochs": 3, "deterministic": True}
    # both in subprocesses of the same settings (one thread each): same arithmetic
    straight = _start(["--config", str(_write_config(sysu_root, ref, backend_name, **fields))])
    killed = _start(["--config", str(_write_config(sysu_root, out, backend_name, **fields))])
    try:
        _wait_for(lambda: any(e == 1 for e, _ in _steps(out)), killed)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    assert int(load_checkpoint(out / "checkpoints" / "last.safetensors").meta["epoch"]) < 3
    resumed = _start(["--out", str(out), "--resume", "auto"])
    said = {}
    for name, process in (("resumed", resumed), ("straight", straight)):
        said[name] = process.communicate()[1].decode()
        assert process.returncode == 0, said[name]
    assert f"resuming from {out}/checkpoints/last.safetensors after epoch" in said["resumed"]

    a = load_checkpoint(ref / "checkpoints" / "last.safetensors").tensors
    b = load_checkpoint(out / "checkpoints" / "last.safetensors").tensors
    assert a.keys() == b.keys() and [k for k in a if not np.array_equal(a[k], b[k])] == []
    counts = Counter(_steps(out))
    assert sorted(counts) == [(e, s) for e in range(3) for s in range(3)]
    assert set(counts.values()) == {1}
    temps = [p.name for p in out.rglob("*") if p.name.startswith(".vdreid-tmp-")]
    assert temps == []


def test_an_unknown_resume_file_writes_nothing(sysu_root, tmp_path):
    cfg = tiny_config(sysu_root, tmp_path / "run", "torch")
    with pytest.raises(ConfigError, match="no such checkpoint file"):
        train(cfg, resume=str(tmp_path / "nope.safetensors"), progress=False)
    assert not (tmp_path / "run").exists()
