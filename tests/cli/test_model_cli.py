"""`vdreid model summary` through Typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vdreid.cli.app import app

runner = CliRunner()


def summary(*args: str) -> dict:
    r = runner.invoke(app, ["model", "summary", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


@pytest.mark.parametrize(
    ("preset", "classes", "total"),
    [
        ("official", "395", 82_091_559),
        ("msport", "395", 82_091_550),
        ("official", "206", 80_784_057),
    ],
)
def test_totals_match_the_method(preset, classes, total):
    s = summary("--preset", preset, "--num-classes", classes)
    assert s["total_parameters"] == total
    assert sum(b["parameters"] for b in s["branches"].values()) == total
    assert s["feature_dim"] == 8192 and set(s["branches"]) == {"V", "I", "S"}


def test_frozen_bnneck_shift_and_input_size():
    off = summary("--preset", "official")
    assert off["frozen_parameters"] == 3 * 2048  # one frozen BNNeck shift per branch
    assert off["input"] == {"height": 256, "width": 128}
    ms = summary("--preset", "msport")
    assert ms["frozen_parameters"] == 0 and ms["input"] == {"height": 288, "width": 144}
    assert ms["test_feature"]["distance"] == "inner_product"


def test_table_output():
    r = runner.invoke(app, ["model", "summary", "--preset", "tiny", "--num-classes", "8"])
    assert r.exit_code == 0, r.output
    tiny = summary("--preset", "tiny", "--num-classes", "8")
    assert f"{tiny['total_parameters']:,}" in r.output
    assert "128x64" in r.output and "resnet18" in r.output  # the size tiny trains at


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "resnet"], "'resnet' is not one of"),
        (["--num-classes", "0"], "got 0"),
    ],
)
def test_user_errors_exit_2_without_traceback(args, message):
    r = runner.invoke(app, ["model", "summary", *args])
    assert r.exit_code == 2
    assert message in r.output and "Traceback" not in r.output
