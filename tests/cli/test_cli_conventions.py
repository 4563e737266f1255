"""CLI conventions every command keeps: flags show no value type, closed
choices are listed, bracketed text in errors survives rich, and the default
preset and input size agree between commands."""

from __future__ import annotations

import json
from typing import get_args

import pytest
import typer
from typer.testing import CliRunner

from vdreid import registry
from vdreid.checkpoint import save_checkpoint
from vdreid.cli.app import app
from vdreid.config import TrainConfig
from vdreid.data.readers import DATASETS
from vdreid.presets import RECIPES, PresetName, recipe
from vdreid.spec import init_state

runner = CliRunner()


def _commands(group=None, path=()):
    """Every leaf command's argv path, walking the Click tree."""
    group = group or typer.main.get_command(app)
    for name, cmd in getattr(group, "commands", {}).items():
        if getattr(cmd, "commands", None):
            yield from _commands(cmd, (*path, name))
        else:
            yield (*path, name)


COMMANDS = sorted(_commands())


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_flags_show_no_value_type(argv, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    r = runner.invoke(app, [*argv, "--help"])
    assert r.exit_code == 0, r.output
    assert "<bool>" not in r.output


def test_closed_choices_are_listed(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    train = runner.invoke(app, ["train", "--help"]).output
    assert f"<{'|'.join(DATASETS)}>" in train and f"<{'|'.join(RECIPES)}>" in train
    assert f"<{'|'.join(DATASETS)}>" in runner.invoke(app, ["eval", "--help"]).output
    assert set(get_args(PresetName)) == set(RECIPES)  # the CLI's type is the table's names


def test_a_missing_backend_prints_the_pip_extra_intact(monkeypatch, tmp_path):
    spec = recipe("tiny").model_spec(3)
    ckpt = save_checkpoint(tmp_path / "c.safetensors", init_state(spec, 0), spec=spec)
    monkeypatch.setattr(registry, "registered", lambda: {})
    r = runner.invoke(
        app,
        ["export", "--backend", "torch", "--checkpoint", str(ckpt), "--out", str(tmp_path / "m")],
    )
    assert r.exit_code == 2
    assert "pip install 'vdreid[torch]'" in r.output, r.output


def test_model_summary_defaults_to_the_training_preset_and_its_input_size():
    s = json.loads(runner.invoke(app, ["model", "summary", "--json"]).stdout)
    assert s["preset"] == TrainConfig.model_fields["preset"].default
    tiny = recipe("tiny")
    h, w = tiny.train["input_size"]
    assert (s["input"]["height"], s["input"]["width"]) == (h, w) == (128, 64)
    assert (h, w) != (tiny.model_spec(4).input.height, tiny.model_spec(4).input.width)
    official = json.loads(
        runner.invoke(app, ["model", "summary", "--preset", "official", "--json"]).stdout
    )
    assert (official["input"]["height"], official["input"]["width"]) == (256, 128)


def _table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line[:1] in "┏┃┡│└╭╰┌├"]


def test_every_table_fits_80_columns_without_cutting_a_number(tmp_path, monkeypatch):
    from vdreid.data.synth import Shape, synthesize

    monkeypatch.setenv("COLUMNS", "80")
    spec = recipe("tiny").model_spec(3, input_size=(64, 32))
    ckpt = save_checkpoint(
        tmp_path / "c.safetensors", init_state(spec, 0), spec=spec, backend="fake"
    )
    small = Shape(ids=8, test_ids=8, per_cam=2, size=(32, 16))
    runs = [
        ["backends"],
        ["doctor"],
        ["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "m.npz")],
        *(["model", "summary", "--preset", p] for p in RECIPES),
        ["data", "synth", "--layout", "llcm", "--out", str(tmp_path / "s"), "--ids", "4"],
    ]
    for layout in ("sysu", "regdb", "llcm"):
        root = tmp_path / layout
        synthesize(layout, root, shape=small, progress=False)
        runs.append(["data", "check", "--dataset", layout, "--root", str(root)])
        evaluate = ["eval", "--checkpoint", str(ckpt), "--dataset", layout, "--root", str(root)]
        runs.append([*evaluate, "--quiet", *(["--trial", "1"] if layout == "regdb" else [])])
    for argv in runs:
        r = runner.invoke(app, argv)
        assert r.exit_code in (0, 2), (argv, r.output)  # doctor on the fake backend may say no
        lines = _table_lines(r.stdout)
        assert lines, (argv, r.stdout)
        too_wide = [line for line in lines if len(line) > 80]
        assert too_wide == [], (argv, too_wide)
        assert not any("…" in line for line in lines), (argv, r.stdout)
