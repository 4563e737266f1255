"""Run configuration: where each value comes from, overrides, TOML round trip, input size."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from vdreid.config import (
    TrainConfig,
    dump_toml,
    parse_overrides,
    resolve_train_config,
)
from vdreid.errors import ConfigError, SpecError
from vdreid.presets import RECIPES, recipe
from vdreid.workflows.train import run_spec


def test_priority_defaults_recipe_file_overrides(tmp_path):
    file = tmp_path / "run.toml"
    file.write_text('preset = "tiny"\nepochs = 7\nseed = 5\n[optim]\nlr = 0.5\n')
    cfg = resolve_train_config(file, parse_overrides(["seed=9", "augment.flip=0.25"]))
    assert cfg.epochs == 7 and cfg.optim.lr == 0.5  # the file beats the recipe
    assert cfg.seed == 9 and cfg.augment.flip == 0.25  # overrides beat the file
    start = RECIPES["tiny"].train
    assert cfg.ids_per_batch == start["ids_per_batch"]  # the recipe beats the defaults
    assert cfg.augment.channel == start["augment"]["channel"]
    assert cfg.optim.milestones == recipe("tiny").optim.milestones
    assert cfg.amp == TrainConfig.model_fields["amp"].default  # untouched: the default


def test_overrides_parse_json_values_and_reject_non_assignments():
    assert parse_overrides(["optim.lr=1e-3", "amp=false", "input_size=[96, 48]", "out=runs/x"]) == {
        "optim": {"lr": 1e-3},
        "amp": False,
        "input_size": [96, 48],
        "out": "runs/x",
    }
    with pytest.raises(ConfigError, match="is not KEY=VALUE"):
        parse_overrides(["epochs"])


def test_bad_values_are_named_with_what_was_received():
    with pytest.raises(ConfigError, match=r"epochs.*got 0") as info:
        resolve_train_config(None, {"epochs": 0, "preset": "tiny"})
    assert "training configuration" in str(info.value)
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        resolve_train_config(None, {"preset": "huge"})


def test_the_resolved_config_round_trips_through_toml(tmp_path):
    cfg = resolve_train_config(None, parse_overrides(["preset=tiny", "protocol.trials=3"]))
    file = tmp_path / "config.toml"
    file.write_text(dump_toml(cfg))
    assert resolve_train_config(file) == cfg


def test_a_config_toml_rounds_trips_values_json_would_spell_otherwise(tmp_path):
    # the hand-written writer printed json.dumps: inf became Infinity, not TOML
    cfg = resolve_train_config(
        None, {"preset": "tiny", "root": 'data/s "ä" \\ b', "optim": {"lr": math.inf}}
    )
    file = tmp_path / "config.toml"
    file.write_text(dump_toml(cfg), encoding="utf-8")
    assert resolve_train_config(file) == cfg


def test_toml_is_read_with_tomli_where_tomllib_is_missing(tmp_path):
    """Python 3.10 has no tomllib: vdreid.config falls back to tomli (CI runs
    3.11 only, so tomllib is blocked here)."""
    file = tmp_path / "run.toml"
    file.write_text('preset = "tiny"\nepochs = 3\n[optim]\nlr = 0.01\n')
    (tmp_path / "bad.toml").write_text("epochs = = 3\n")
    script = f"""
import sys
sys.modules["tomllib"] = None  # what `import tomllib` meets on Python 3.10
from pathlib import Path
from vdreid.config import resolve_train_config, tomllib
from vdreid.errors import ConfigError
assert tomllib.__name__ == "tomli", tomllib
cfg = resolve_train_config(Path({str(file)!r}))
assert (cfg.epochs, cfg.optim.lr) == (3, 0.01), cfg
try:
    resolve_train_config(Path({str(tmp_path / "bad.toml")!r}))
except ConfigError as exc:
    assert "is not valid TOML" in str(exc), exc
else:
    raise AssertionError("bad TOML accepted")
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_protocol_options_a_dataset_lacks_are_refused_not_ignored(tmp_path):
    with pytest.raises(ConfigError, match=r"protocol.mode = 'indoor' applies to SYSU-MM01 only"):
        resolve_train_config(None, {"dataset": "regdb", "protocol": {"mode": "indoor"}})
    with pytest.raises(ConfigError, match=r"protocol.trials = 3 applies to SYSU-MM01 and LLCM"):
        resolve_train_config(None, {"dataset": "manifest", "protocol": {"trials": 3}})
    with pytest.raises(ConfigError, match=r"protocol.shots = 10 .* llcm protocol"):
        resolve_train_config(None, {"dataset": "llcm", "protocol": {"shots": 10}})
    # the defaults are fine, and a recorded config reads back
    cfg = resolve_train_config(None, {"dataset": "regdb", "protocol": {"trials": 10}})
    file = tmp_path / "config.toml"
    file.write_text(dump_toml(cfg))
    assert resolve_train_config(file) == cfg
    assert resolve_train_config(None, {"dataset": "llcm", "protocol": {"trials": 3}})


def test_input_size_replaces_the_presets_and_null_restores_it():
    native = recipe("tiny").model_spec(7)
    cfg = resolve_train_config(None, {"preset": "tiny", "input_size": [96, 48]})
    spec = run_spec(cfg, 7)
    assert (spec.input.height, spec.input.width) == (96, 48)
    # only the input changes: same parameters, same normalisation
    assert spec.branches == native.branches and spec.input.mean == native.input.mean
    cfg = resolve_train_config(None, parse_overrides(["preset=tiny", "input_size=null"]))
    assert run_spec(cfg, 7) == native


def test_a_bad_input_size_is_refused():
    with pytest.raises(SpecError, match="too small"):
        recipe("tiny").model_spec(3, input_size=(16, 8))
    with pytest.raises(ConfigError, match="input_size"):
        resolve_train_config(None, {"preset": "tiny", "input_size": [128]})


def test_unreadable_config_files_are_one_line_errors(tmp_path):  # D12
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'root = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"latin1.toml is not UTF-8 text .* save it as UTF-8"):
        resolve_train_config(latin1)
    with pytest.raises(
        ConfigError, match=rf"config file {tmp_path} is a folder; pass a .toml file"
    ):
        resolve_train_config(tmp_path)


@pytest.mark.parametrize("preset", [["tiny"], [1], {}, 3, None])
def test_a_preset_that_is_not_a_name_is_refused(tmp_path, preset):  # D13
    with pytest.raises(ConfigError, match=r"unknown preset .*choose one of"):
        resolve_train_config(None, {"preset": preset})
    if preset is not None:  # TOML has no null
        path = tmp_path / "p.toml"
        path.write_text(f"preset = {json.dumps(preset).replace(':', '=')}\n")
        with pytest.raises(ConfigError, match="unknown preset"):
            resolve_train_config(path)
