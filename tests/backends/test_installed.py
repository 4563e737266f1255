"""`vdreid backends` and `vdreid doctor` find the first-party backends
installed and working. The commands' own logic (tables, JSON, a mismatch
exiting 1) is tested on the fake backend in tests/cli/test_cli_basics.py."""

import json

from typer.testing import CliRunner

from vdreid.cli.app import app

runner = CliRunner()


def test_backends_json_lists_both_with_versions():
    r = runner.invoke(app, ["backends", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.output)}
    for name, device in (("torch", "cpu"), ("mindspore", "CPU")):
        assert rows[name]["status"] == "ok", rows[name]
        assert rows[name]["version"] and device in rows[name]["devices"]


def test_backends_table():
    r = runner.invoke(app, ["backends"])
    assert r.exit_code == 0 and "torch" in r.output and "mindspore" in r.output


def test_doctor_runs_a_computation_on_every_backend():
    r = runner.invoke(app, ["doctor", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["ok"] is True
    names = {b["name"] for b in report["backends"]}
    assert {"torch", "mindspore"} <= names
    assert all(
        b["max_abs_diff"] is not None and b["max_abs_diff"] < 1e-5 for b in report["backends"]
    )
