"""What every backend must do, checked against the numpy oracle (cases a-g).

(a) state names and shapes == param_table, for every preset
(b) forward == oracle (eval and train mode), features == oracle test feature
(c) every loss term == the oracle's (NumpyOps), on the Ops and in a train step
(d) state -> checkpoint file -> state is exact (model and trainer state)
(e) export -> runtime -> the eager model's features; the file describes its input
(f) optimiser steps on a fixed batch lower the loss and stay finite
(g) MindSpore's "same" padding and per-batch-norm eps (the msport network) == oracle

Cases marked ``training`` are generated only for backends that train
(``Backend.trains``); an inference-only backend runs the others and
``test_an_inference_backend_refuses_to_train``.
"""

from __future__ import annotations

import numpy as np
import pytest

from vdreid import __version__
from vdreid.checkpoint import load_checkpoint, save_checkpoint
from vdreid.errors import CheckpointError, NotSupported
from vdreid.export_metadata import read_metadata
from vdreid.losses import objective
from vdreid.ops import NumpyOps
from vdreid.presets import RECIPES, recipe
from vdreid.reference import reference_forward, reference_forward_with_stats
from vdreid.spec import param_table, running_names, spec_hash
from vdreid.trainer import TrainerOptions
from vdreid.verified_export import example_batch, feature_drift

FORWARD_ATOL = 1e-4  # fp32 backend vs float64 oracle, max abs diff
LOSS_RTOL = 1e-4  # relative, per loss term (measured on torch: <= 2e-5)
LOSS_PRESETS = ("official", "paper", "msport")
PARITY = TrainerOptions(amp=False, dropout=False, seed=0)


#: the cases that share trainers (``trainer_for``) run on one pytest-xdist worker
SHARES_TRAINERS = pytest.mark.xdist_group("contract-trainers")


@pytest.fixture(scope="session")
def _trainers(backend) -> dict:
    """The trainers built so far on ``backend``, by loss preset (see ``trainer_for``)."""
    return {}


@pytest.fixture
def trainer_for(backend, spec, state, _trainers):
    """``trainer_for(loss_name)``: the tiny optimiser with PARITY options on a
    model holding ``state``, and a fresh optimiser (step 0, zero moments).

    One trainer per (backend, loss preset) serves every case: each call loads
    ``state`` back (model tensors and running statistics, no optimiser
    entries, so the moments restart at zero), drops the loss sums of earlier
    steps and sets epoch 0. A MindSpore trainer compiles its step on the
    first step, about a minute on a 2-core CPU; a state loaded after that
    compile is what the next step reads (tests/backends/mindspore/test_train.py).
    """

    def get(loss_name: str):
        if loss_name not in _trainers:
            model = backend.build(spec, device="cpu")
            _trainers[loss_name] = backend.trainer(
                model, recipe(loss_name).loss, recipe("tiny").optim, PARITY
            )
        trainer = _trainers[loss_name]
        trainer.load(state)
        trainer.metrics()
        trainer.set_epoch(0)
        return trainer

    return get


def max_diff(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> dict[str, float]:
    assert set(got) == set(want), f"names differ: {sorted(set(got) ^ set(want))}"
    return {k: float(np.max(np.abs(np.asarray(got[k], np.float64) - want[k]))) for k in want}


def oracle_terms(spec, state, images, batch, loss_name):
    outputs, _ = reference_forward_with_stats(spec, state, images)
    outputs = {k: v.astype(np.float64) for k, v in outputs.items()}
    terms = objective(
        NumpyOps(), recipe(loss_name).loss, outputs, batch["labels"], batch["modality"]
    )
    return outputs, {k: float(v) for k, v in terms.items()}


# (a) ------------------------------------------------------------------------
@pytest.mark.parametrize("preset", sorted(RECIPES))
def test_state_shapes_match_param_table(backend, preset):
    spec = recipe(preset).model_spec(395)
    table = param_table(spec)
    shapes = backend.state_shapes(spec)
    assert list(shapes) == list(table)
    assert {n: tuple(s) for n, s in shapes.items()} == {n: info.shape for n, info in table.items()}


def test_built_state_matches_param_table(backend, spec):
    """The real thing for tiny: build, read the state back, compare with the table."""
    state = backend.get_state(backend.build(spec, device="cpu"))
    table = param_table(spec)
    assert set(state) == set(table)
    assert {n: tuple(v.shape) for n, v in state.items()} == {n: i.shape for n, i in table.items()}
    assert all(v.dtype == np.float32 for v in state.values())
    assert {n: tuple(s) for n, s in backend.state_shapes(spec).items()} == {
        n: i.shape for n, i in table.items()
    }


# (b) ------------------------------------------------------------------------
def test_eval_forward_matches_oracle(backend, model, spec, state, images):
    diffs = max_diff(
        backend.forward(model, images, train=False), reference_forward(spec, state, images)
    )
    assert "test_feature" in diffs and len(diffs) == 4 * 5 + 1
    assert max(diffs.values()) <= FORWARD_ATOL, {k: v for k, v in diffs.items() if v > FORWARD_ATOL}


@pytest.mark.training
def test_train_forward_and_running_stats_match_oracle(backend, model, spec, state, images):
    want, stats = reference_forward_with_stats(spec, state, images)
    diffs = max_diff(backend.forward(model, images, train=True), want)
    assert max(diffs.values()) <= FORWARD_ATOL, {k: v for k, v in diffs.items() if v > FORWARD_ATOL}
    after = backend.get_state(model)
    names = running_names(param_table(spec))
    assert set(stats) == set(names)
    stat_diffs = max_diff({n: after[n] for n in names}, stats)
    assert max(stat_diffs.values()) <= FORWARD_ATOL
    # the statistics did move: the check above is not comparing unchanged values
    assert any(not np.allclose(after[n], state[n]) for n in names)


def test_features_match_oracle_test_feature(backend, model, spec, state, batch, images):
    want = reference_forward(spec, state, images)["test_feature"]
    got = backend.features(model, batch["images"], batch_size=3)  # 3 does not divide 8: batching
    assert got.shape == (len(images), spec.feature_dim) == want.shape and got.dtype == np.float32
    assert np.max(np.abs(got - want)) <= FORWARD_ATOL
    assert np.allclose(
        np.linalg.norm(got, axis=1), 1.0, atol=1e-5
    )  # the official recipe: unit rows


# (c) ------------------------------------------------------------------------
@pytest.mark.training
@pytest.mark.parametrize("loss_name", LOSS_PRESETS)
def test_loss_terms_on_backend_ops_match_numpy(backend, spec, state, images, batch, loss_name):
    outputs, want = oracle_terms(spec, state, images, batch, loss_name)
    ops = backend.ops()
    got = objective(
        ops,
        recipe(loss_name).loss,
        {k: ops.asarray(v.astype(np.float32)) for k, v in outputs.items()},
        ops.asarray(batch["labels"]),
        ops.asarray(batch["modality"]),
    )
    got = {k: float(ops.to_numpy(v)) for k, v in got.items()}
    assert set(got) == set(want) == {*recipe(loss_name).loss.terms(), "total"}
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=LOSS_RTOL, abs=1e-6), k
    assert all(abs(v) > 1e-6 for v in want.values()), want  # nothing trivially zero


@pytest.mark.training
@SHARES_TRAINERS
@pytest.mark.parametrize("loss_name", LOSS_PRESETS)
def test_train_step_loss_terms_match_oracle(trainer_for, spec, state, images, batch, loss_name):
    """The trainer's first-step terms are computed before the update, on ``state``."""
    _, want = oracle_terms(spec, state, images, batch, loss_name)
    trainer = trainer_for(loss_name)
    trainer.step(batch)
    got = trainer.metrics()
    assert set(got) == set(want)
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=LOSS_RTOL, abs=1e-6), k


# (d) ------------------------------------------------------------------------
def test_model_state_checkpoint_round_trip_is_exact(
    backend, backend_name, model, spec, state, tmp_path
):
    saved = backend.get_state(model)
    path = save_checkpoint(tmp_path / "m.safetensors", saved, spec=spec, backend=backend_name)
    ckpt = load_checkpoint(path)
    assert ckpt.spec == spec and ckpt.backend == backend_name
    fresh = backend.build(ckpt.spec, device="cpu")
    backend.set_state(fresh, ckpt.tensors)
    again = backend.get_state(fresh)
    assert set(again) == set(state)
    for k in state:
        assert np.array_equal(again[k], state[k]), k


@pytest.mark.training
@SHARES_TRAINERS
def test_trainer_state_checkpoint_round_trip_is_exact(backend, trainer_for, spec, batch, tmp_path):
    loss, optim = recipe("official").loss, recipe("tiny").optim
    trainer = trainer_for("official")
    trainer.step(batch)
    before = trainer.state()
    assert int(before["optim/step"]) == 1 and before["optim/step"].dtype == np.int64
    save_checkpoint(tmp_path / "t.safetensors", before, spec=spec)
    other = backend.trainer(backend.build(spec, device="cpu"), loss, optim, PARITY)
    other.load(load_checkpoint(tmp_path / "t.safetensors").tensors)
    after = other.state()
    assert set(after) == set(before)
    for k in before:
        assert np.array_equal(after[k], before[k]), k
    # the moments are real: Adam's second moment is positive somewhere after a step
    assert any(np.any(v > 0) for k, v in before.items() if k.startswith("optim/v/"))


@pytest.mark.training
@SHARES_TRAINERS
def test_adams_first_moments_use_one_minus_beta_to_float32_rounding(trainer_for, batch):
    """From zero moments one step gives m = (1 - b1) g and v = (1 - b2) g^2, so
    v / m^2 = (1 - b2) / (1 - b1)^2 whatever the gradient. (1 - b2) computed in
    float32 inside a graph is 0.00099998713: 1.3e-5 too small on every tensor."""
    optim = recipe("tiny").optim
    trainer = trainer_for("official")
    trainer.step(batch)
    state = trainer.state()
    (b1, b2), ratios = optim.betas, []
    for key, v in state.items():
        if key.startswith("optim/v/"):
            m = state["optim/m/" + key.removeprefix("optim/v/")].astype(np.float64)
            seen = (np.abs(v) > 1e-30) & (m != 0)  # no underflow in g^2
            ratios.append(v[seen].astype(np.float64) / m[seen] ** 2)
    ratios = np.concatenate(ratios)
    assert ratios.size > 1000
    want = (1.0 - b2) / (1.0 - b1) ** 2
    assert np.max(np.abs(ratios / want - 1.0)) < 1e-6


@pytest.mark.training
def test_trainer_refuses_a_damaged_optimiser_state(backend, model, spec):
    trainer = backend.trainer(model, recipe("official").loss, recipe("tiny").optim, PARITY)
    state = trainer.state()  # a fresh optimiser: step 0, zero moments
    no_v = {k: v for k, v in state.items() if not k.startswith("optim/v/")}
    with pytest.raises(CheckpointError, match=r"optimiser state \(optim/\.\.\.\) does not match"):
        trainer.load(no_v)
    with pytest.raises(CheckpointError, match="optim/step must be a non-negative integer"):
        trainer.load({**state, "optim/step": np.array(-3)})
    trainer.load(state)  # the intact state still loads


# (e) ------------------------------------------------------------------------
def _onnxruntime_features(path: str, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]


#: runtimes the test drives itself, independently of the backend's own check
RUNTIMES = {"onnx": _onnxruntime_features}


def test_export_runs_in_its_runtime_with_the_same_features(
    backend, export_format, model, spec, tmp_path
):
    fmt = export_format
    example = example_batch(spec, batch=3, seed=1)
    path = tmp_path / f"features.{fmt}"
    report = backend.export(model, fmt, str(path), example=example, tolerance=1e-4)
    assert path.is_file() and report.path == str(path) and report.format == fmt
    assert report.ok and report.max_abs_diff <= 1e-4 and report.min_cosine > 0.99999
    if fmt in RUNTIMES:  # a batch size the export never saw: the batch axis is dynamic
        other = example_batch(spec, batch=5, seed=2)
        eager = backend.forward(model, other)["test_feature"]
        max_abs, min_cos = feature_drift(eager, RUNTIMES[fmt](str(path), other))
        assert max_abs <= 1e-4 and min_cos > 0.99999


# (f) ------------------------------------------------------------------------
@pytest.mark.training
@SHARES_TRAINERS
def test_optimiser_steps_lower_the_loss_and_stay_finite(trainer_for, spec, batch):
    trainer = trainer_for("official")
    totals = []
    for _ in range(4):
        trainer.step(batch)
        terms = trainer.metrics()
        assert all(np.isfinite(v) for v in terms.values()), terms
        totals.append(terms["total"])
    assert totals[-1] < totals[0], totals
    state = trainer.state()
    assert int(state["optim/step"]) == 4
    assert all(np.all(np.isfinite(v)) for v in state.values())
    assert len(state) > len(param_table(spec))  # optimiser moments included


def _onnx_metadata(path: str) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}


def _mindir_metadata(path: str) -> dict[str, str]:
    from mindspore.train import mind_ir_pb2

    model = mind_ir_pb2.ModelProto()
    with open(path, "rb") as fh:
        model.ParseFromString(fh.read())
    return dict(model.user_info)


#: how a test reads each format's own metadata (ONNX metadata_props, MindIR user_info)
METADATA = {"onnx": _onnx_metadata, "mindir": _mindir_metadata}


def test_export_says_how_to_feed_it(backend, export_format, model, spec, tmp_path):
    path = tmp_path / f"m.{export_format}"
    backend.export(model, export_format, str(path), example=example_batch(spec, batch=2))
    meta = METADATA[export_format](str(path))
    assert read_metadata(meta, str(path)) == spec
    h, w = spec.input.height, spec.input.width
    assert meta["vdreid.input_size"] == f"{h}x{w}" and meta["vdreid.colour_order"] == "RGB"
    assert [float(v) for v in meta["vdreid.mean"].split(",")] == list(spec.input.mean)
    assert [float(v) for v in meta["vdreid.std"].split(",")] == list(spec.input.std)
    assert meta["vdreid.distance"] == spec.test_feature.distance == "euclidean"
    assert meta["vdreid.feature_layout"].startswith("I.feat 64 + Sg.feat 64 + V.feat 64")
    assert meta["vdreid.spec_hash"] == spec_hash(spec) and meta["vdreid.version"] == __version__


# (g) ------------------------------------------------------------------------
def _scaled_diff(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> dict[str, float]:
    """max |got - want| / max(1, max |want|) per output: this network's deep
    bottleneck stacks make outputs of a few hundred, where fp32 keeps 1e-7 relative."""
    diffs = max_diff(got, want)
    return {k: d / max(1.0, float(np.max(np.abs(want[k])))) for k, d in diffs.items()}


def test_same_padding_network_matches_oracle_in_eval(backend, same_spec, same_case):
    state, images, x = same_case
    model = backend.build(same_spec, device="cpu")
    backend.set_state(model, state)
    want = reference_forward(same_spec, state, x)
    diffs = _scaled_diff(backend.forward(model, x), want)
    assert max(diffs.values()) <= FORWARD_ATOL, {k: v for k, v in diffs.items() if v > FORWARD_ATOL}
    got = backend.features(model, images, batch_size=3)
    assert np.max(np.abs(got - want["test_feature"])) <= FORWARD_ATOL


#: train mode on 4 images: the batch statistics of a BNNeck over 4 near-equal
#: pooled vectors divide fp32 rounding by a small spread (measured on torch:
#: 5e-4 scaled at Sg.feat, 1e-6 in eval mode on the same weights)
SAME_TRAIN_TOL = 2e-3


@pytest.mark.training
def test_same_padding_network_matches_oracle_in_training(backend, same_spec, same_case):
    """Batch statistics and the running statistics a step leaves, bn3's
    momentum of 0.003 included (the oracle's spec convention)."""
    state, _, x = same_case
    model = backend.build(same_spec, device="cpu")
    backend.set_state(model, state)
    want, stats = reference_forward_with_stats(same_spec, state, x)
    diffs = _scaled_diff(backend.forward(model, x, train=True), want)
    assert max(diffs.values()) <= SAME_TRAIN_TOL, {k: v for k, v in diffs.items() if v > 1e-4}
    after = backend.get_state(model)
    assert max(_scaled_diff({n: after[n] for n in stats}, stats).values()) <= SAME_TRAIN_TOL
    bn3 = "V.backbone.layer1.0.bn3.mean"
    moved = np.abs(after[bn3] - state[bn3])
    assert np.allclose(moved, np.abs(stats[bn3] - state[bn3]), atol=1e-5) and moved.max() > 0


def test_same_padding_network_exports(backend, export_format, same_spec, same_case, tmp_path):
    state, _, x = same_case
    model = backend.build(same_spec, device="cpu")
    backend.set_state(model, state)
    path = tmp_path / f"same.{export_format}"
    report = backend.export(model, export_format, str(path), example=x[:3])
    assert report.ok and report.max_abs_diff <= 1e-4


@pytest.mark.inference_only
def test_an_inference_backend_refuses_to_train(backend, backend_name, model, images):
    with pytest.raises(NotSupported, match=f"the {backend_name} backend does not train.*torch"):
        backend.trainer(model, recipe("official").loss, recipe("tiny").optim, PARITY)
    with pytest.raises(NotSupported, match="does not train.*--backend torch or mindspore"):
        backend.forward(model, images, train=True)
