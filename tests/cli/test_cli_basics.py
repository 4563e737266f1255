"""The foundation commands through Typer's CliRunner, on the fake backend."""

import json

from typer.testing import CliRunner

from vdreid import __version__
from vdreid.cli.app import app
from vdreid.workflows import doctor as doctor_mod

runner = CliRunner()


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"vdreid {__version__}"


def test_no_args_shows_help():
    r = runner.invoke(app, [])
    assert "Usage" in r.output and "backends" in r.output


def test_backends_json_lists_the_installed_one_with_its_version():
    r = runner.invoke(app, ["backends", "--json"])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.output)
    assert row["name"] == "fake" and row["status"] == "ok", row
    assert row["framework"] == "numpy" and row["version"] and row["devices"] == ["cpu"]


def test_backends_table():
    r = runner.invoke(app, ["backends"])
    assert r.exit_code == 0 and "fake" in r.output and "numpy" in r.output


def test_doctor_runs_a_computation_on_every_backend():
    r = runner.invoke(app, ["doctor", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["ok"] is True
    assert [b["name"] for b in report["backends"]] == ["fake"]
    assert all(
        b["max_abs_diff"] is not None and b["max_abs_diff"] < 1e-5 for b in report["backends"]
    )


def test_doctor_fails_on_a_wrong_result(monkeypatch):
    real = doctor_mod.smoke

    def skewed(ops):
        out = real(ops)
        return out + 1.0 if ops.name == "fake" else out

    monkeypatch.setattr(doctor_mod, "smoke", skewed)
    r = runner.invoke(app, ["doctor", "--json"])
    assert r.exit_code == 1
    rows = {b["name"]: b for b in json.loads(r.output)["backends"]}
    assert rows["fake"]["status"].startswith("mismatch")
