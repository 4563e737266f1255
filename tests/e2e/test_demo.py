"""`vdreid demo` end to end on the small tree: evaluations, training, both exports, the
table, the report (its path the last line printed)."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from vdreid.cli.app import app
from vdreid.cli.demo import show_demo

pytest.importorskip("torch")
pytest.importorskip("mindspore")


def test_demo_trains_evaluates_and_verifies_both_exports(sysu_root, tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "data").symlink_to(sysu_root)  # the demo synthesises only when no tree is there
    r = CliRunner().invoke(
        app,
        [
            "demo",
            "--out",
            str(out),
            "--epochs",
            "1",
            "--set",
            "input_size=null",
            "--set",
            "ids_per_batch=4",
            "--set",
            "protocol.trials=2",
            "--quiet",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    printed = json.loads(r.stdout)  # --json: nothing else on stdout
    assert printed["trials"] == 2 and printed["run_dir"] == str(out / "run")
    for which in ("untrained", "trained"):  # one epoch: the numbers, not their order
        assert all(0 <= printed[which][m]["mean"] <= 100 for m in ("R1", "R10", "mAP", "mINP"))
    assert [(e["format"], e["ok"]) for e in printed["exports"]] == [
        ("onnx", True),
        ("mindir", True),
    ]
    # without --json the same results are shown as tables, the report's path the last line
    shown = io.StringIO()
    show_demo(printed, Console(file=shown, width=80))
    text = shown.getvalue()
    for row in ("untrained", "trained", "ratio", "total"):
        assert row in text
    assert text.count("verified") == 2 and "failed" not in text and "…" not in text
    *tables, last = text.strip().splitlines()
    assert max(map(len, tables)) <= 80  # the path, whole to be copied, may be longer
    assert last == str(out / "report.html")
    assert (out / "tiny.onnx").stat().st_size > 0 and (out / "tiny.mindir").stat().st_size > 0
    run = out / "run"
    config = (run / "config.toml").read_text()
    assert "epochs = 1" in config and "ids_per_batch = 4" in config
    report = json.loads((run / "eval.json").read_text())
    assert len(report["trials"]) == 2
    # the run trained the preset's own size (input_size=null), not the recipe's 128x64
    spec = json.loads((run / "spec.json").read_text())
    assert (spec["input"]["height"], spec["input"]["width"]) == (64, 32)
    # the report: both exports are listed as checked
    assert printed["report"] == str(out / "report.html")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == 5 and 'class="notes"' not in html
    assert ">untrained</td>" in html and ">trained</td>" in html
    assert html.count("present, unchanged") == 2
    # every file the demo wrote is listed as its own (a rerun replaces them, deletes no other)
    listed = json.loads((out / ".vdreid-files.json").read_text())["files"]
    assert {"run/", "tiny.onnx", "tiny.mindir", "untrained.json", "report.html"} <= set(listed)
    assert "exports.jsonl" in json.loads((run / ".vdreid-files.json").read_text())["files"]
