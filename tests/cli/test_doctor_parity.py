"""`vdreid doctor --parity`: the table, the JSON and the exit code follow the
parity report (the checks themselves run in tests/contract/test_parity.py;
here the report is given, so the command's own logic is tested quickly)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vdreid.cli.app import app
from vdreid.workflows import parity

runner = CliRunner()


def _report(value: float) -> parity.ParityReport:
    rows = [
        parity.Diff("features", "mindspore", "oracle", "test_feature", 9e-8, "abs", 1e-4),
        parity.Diff(
            "one step: parameters", "torch", "mindspore", "V.head.bn1.var", value, "rel", 1e-5
        ),
    ]
    return parity.ParityReport(rows, skipped={})


@pytest.fixture
def given(monkeypatch):
    seen = {}

    def use(value):
        def fake(names, **kwargs):
            seen["names"] = list(names)
            return _report(value)

        monkeypatch.setattr(parity, "run_parity", fake)
        return seen

    return use


def test_parity_table_and_exit_zero_when_every_check_passes(given):
    seen = given(2.7e-6)
    r = runner.invoke(app, ["doctor", "--parity"])
    assert r.exit_code == 0, r.output
    # the table may wrap long cells at the console's width; these do not wrap
    assert "parity" in r.output and "2.70e-06" in r.output and "mismatch" not in r.output
    assert seen["names"]  # the healthy backends were handed to the checks


def test_a_mismatch_exits_one_and_is_marked(given):
    given(3e-3)
    r = runner.invoke(app, ["doctor", "--parity"])
    assert r.exit_code == 1
    assert "mismatch" in r.output


def test_json_carries_every_row(given):
    given(2.7e-6)
    r = runner.invoke(app, ["doctor", "--parity", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["ok"] is True
    assert [row["check"] for row in out["parity"]] == ["features", "one step: parameters"]
    assert all(row["ok"] for row in out["parity"])


def test_without_the_flag_no_parity_runs(given):
    seen = given(1.0)
    r = runner.invoke(app, ["doctor", "--json"])
    assert "parity" not in json.loads(r.output) and "names" not in seen
