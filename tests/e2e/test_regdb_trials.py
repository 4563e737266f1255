"""`vdreid train --dataset regdb --trial all`: ten runs, each recording its
trial, and the mean ± std over the ten in both directions (torch, tiny)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vdreid.checkpoint import read_metadata
from vdreid.cli.app import app
from vdreid.data.synth import Shape, synthesize

pytest.importorskip("torch")


def test_all_ten_trials_train_and_report_both_directions(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    root = tmp_path / "regdb"
    synthesize(
        "regdb", root, shape=Shape(ids=6, test_ids=6, per_cam=2, size=(32, 16)), progress=False
    )
    args = ["train", "--backend", "torch", "--preset", "tiny", "--dataset", "regdb"]
    args += ["--root", str(root), "--trial", "all", "--out", str(tmp_path / "runs")]
    args += ["--epochs", "1", "--quiet", "--set", "input_size=null"]
    args += ["--set", "ids_per_batch=4", "--set", "instances=2"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    for trial in range(1, 11):
        ckpt = tmp_path / "runs" / f"trial-{trial:02d}" / "checkpoints" / "last.safetensors"
        meta = read_metadata(ckpt)
        assert (meta["dataset"], meta["trial"]) == ("regdb", str(trial))
    report = json.loads((tmp_path / "runs" / "trials.json").read_text())
    for direction in ("v2t", "t2v"):
        per_trial = report["per_trial"][direction]
        assert [t["trial"] for t in per_trial] == list(range(1, 11))
        assert {t["protocol"]["direction"] for t in per_trial} == {direction}
        r1 = [t["summary"]["R1"]["mean"] for t in per_trial]
        summary = report["summary"][direction]["R1"]
        assert summary["mean"] == pytest.approx(sum(r1) / 10)
    assert "visible to thermal" in r.output and "thermal to visible" in r.output
    table = [line for line in r.output.splitlines() if line[:1] in "┏┃┡│└"]
    assert "RegDB, 10 trials" in r.output and max(map(len, table)) <= 80
    # a finished set is evaluated again, not retrained
    again = CliRunner().invoke(app, [*args, "--resume", "auto"])
    assert again.exit_code == 0, again.output
    assert (
        json.loads((tmp_path / "runs" / "trials.json").read_text())["summary"] == report["summary"]
    )
