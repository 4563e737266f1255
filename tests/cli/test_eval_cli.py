"""`vdreid eval` on the fake backend: RegDB's trial comes from the checkpoint,
options a protocol lacks are refused, and the title says what was run."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vdreid.checkpoint import save_checkpoint
from vdreid.cli.app import app
from vdreid.data.readers import read_dataset
from vdreid.data.synth import Shape, synthesize
from vdreid.presets import recipe
from vdreid.spec import init_state

runner = CliRunner()


@pytest.fixture(scope="module")
def regdb_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("regdb")
    synthesize(
        "regdb", root, shape=Shape(ids=8, test_ids=8, per_cam=2, size=(32, 16)), progress=False
    )
    return root


def _checkpoint(folder, **meta):
    spec = recipe("tiny").model_spec(3, input_size=(64, 32))
    return save_checkpoint(
        folder / "c.safetensors", init_state(spec, 0), spec=spec, backend="fake", meta=meta
    )


def evaluate(checkpoint, root, *args: str):
    return runner.invoke(
        app,
        ["eval", "--backend", "fake", "--checkpoint", str(checkpoint), "--dataset", "regdb"]
        + ["--root", str(root), "--quiet", *args],
    )


def test_regdb_evaluates_the_trial_the_checkpoint_was_trained_on(regdb_root, tmp_path):
    ckpt = _checkpoint(tmp_path, dataset="regdb", trial="3")
    r = evaluate(ckpt, regdb_root, "--json-out", str(tmp_path / "e.json"))
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "e.json").read_text())["trial"] == 3
    assert "trial 3" in r.output


def test_regdb_refuses_another_trial_unless_asked(regdb_root, tmp_path):
    ckpt = _checkpoint(tmp_path, dataset="regdb", trial="3")
    r = evaluate(ckpt, regdb_root, "--trial", "5")
    assert r.exit_code == 2
    seen = {p.pid for p in read_dataset("regdb", regdb_root, trial=3).train}
    tested = {p.pid for p in read_dataset("regdb", regdb_root, trial=5).test}
    assert f"trained on RegDB trial 3, and {len(seen & tested)} of trial 5's" in r.output
    assert "--any-trial" in r.output
    r = evaluate(ckpt, regdb_root, "--trial", "5", "--any-trial", "--json-out", str(tmp_path / "e"))
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "e").read_text())["trial"] == 5


def test_a_regdb_checkpoint_without_a_trial_needs_one(regdb_root, tmp_path):
    ckpt = _checkpoint(tmp_path, dataset="regdb")
    r = evaluate(ckpt, regdb_root)
    assert r.exit_code == 2 and "does not record which trial" in r.output, r.output
    assert evaluate(ckpt, regdb_root, "--trial", "2").exit_code == 0


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--mode", "indoor"], "--mode indoor applies to SYSU-MM01 only"),
        (["--shots", "10"], "--shots 10 applies to SYSU-MM01 only"),
        (["--sampler", "agw"], "--sampler agw applies to SYSU-MM01 only"),
        (["--trials", "3"], "--trials 3 applies to SYSU-MM01 and LLCM only"),
        (["--mode", "all"], "--mode all applies to SYSU-MM01 only"),  # set, though the default
    ],
)
def test_sysu_only_options_are_refused_on_regdb(regdb_root, tmp_path, flags, named):
    r = evaluate(_checkpoint(tmp_path, dataset="regdb", trial="1"), regdb_root, *flags)
    assert r.exit_code == 2 and named in r.output and "regdb protocol" in r.output, r.output


def test_the_title_states_trial_direction_flip_and_reranking(regdb_root, tmp_path):
    ckpt = _checkpoint(tmp_path, dataset="regdb", trial="2")
    r = evaluate(ckpt, regdb_root, "--flip", "--rerank", "--direction", "t2v")
    assert r.exit_code == 0, r.output
    title = " ".join(r.output.split("┏")[0].split())  # rich may wrap it
    assert title == "regdb: trial 2, t2v, euclidean, flip, re-ranked", title


def test_without_backend_an_installed_one_computes_the_features(regdb_root, tmp_path):
    spec = recipe("tiny").model_spec(3, input_size=(64, 32))
    ckpt = save_checkpoint(
        tmp_path / "c.safetensors",
        init_state(spec, 0),
        spec=spec,
        backend="mindspore",
        meta={"dataset": "regdb", "trial": "1"},
    )
    r = runner.invoke(
        app, ["eval", "--checkpoint", str(ckpt), "--dataset", "regdb", "--root", str(regdb_root)]
    )
    assert r.exit_code == 0, r.output
    assert (
        "using the fake backend (the checkpoint's writer, mindspore, is not installed" in r.output
    )


def test_json_prints_only_json_on_stdout_and_json_out_writes_a_file(regdb_root, tmp_path):
    ckpt = _checkpoint(tmp_path, dataset="regdb", trial="4")
    r = evaluate(ckpt, regdb_root, "--json", "--json-out", str(tmp_path / "e.json"))
    assert r.exit_code == 0, r.output
    printed = json.loads(r.stdout)  # nothing else on stdout
    assert printed == json.loads((tmp_path / "e.json").read_text())
    assert printed["trial"] == 4 and set(printed["summary"]) >= {"R1", "mAP", "mINP"}
