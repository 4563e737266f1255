"""The numpy oracle forward: its primitives against loops, routing, BN statistics."""

from __future__ import annotations

import numpy as np
import pytest

from vdreid.errors import CheckpointError, DataError
from vdreid.presets import recipe
from vdreid.reference import (
    channel_attention,
    conv2d,
    max_pool,
    reference_forward,
    reference_forward_with_stats,
)
from vdreid.spec import (
    PATH_NAMES,
    PATH_OUTPUTS,
    init_state,
    param_table,
    preprocess,
    to_grey,
)

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def spec():
    return recipe("tiny").model_spec(5)


@pytest.fixture(scope="module")
def state(spec):
    """Init weights with non-trivial shifts, running statistics and attention scales."""
    rng = np.random.default_rng(1)
    s = init_state(spec, 0)
    for name, info in param_table(spec).items():
        if info.role in ("bn_shift", "bias", "scalar", "bn_mean"):
            s[name] = (0.1 * rng.standard_normal(info.shape)).astype(np.float32)
        elif info.role == "bn_var":
            s[name] = (1 + rng.random(info.shape)).astype(np.float32)
    return s


@pytest.fixture(scope="module")
def images(spec):
    raw = np.random.default_rng(2).integers(
        0, 256, (4, spec.input.height, spec.input.width, 3), dtype=np.uint8
    )
    return preprocess(spec, raw)


def naive_conv(x, w, stride, padding):
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    o, _, k, _ = w.shape
    ho, wo = (x.shape[2] - k) // stride + 1, (x.shape[3] - k) // stride + 1
    out = np.zeros((x.shape[0], o, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = x[:, :, i * stride : i * stride + k, j * stride : j * stride + k]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out


@pytest.mark.parametrize(
    ("k", "stride", "padding"), [(1, 1, 0), (1, 2, 0), (3, 1, 1), (3, 2, 1), (7, 2, 3)]
)
def test_conv2d_matches_a_loop(k, stride, padding):
    x, w = RNG.standard_normal((2, 3, 9, 7)), RNG.standard_normal((4, 3, k, k))
    np.testing.assert_allclose(
        conv2d(x, w, stride, padding), naive_conv(x, w, stride, padding), rtol=1e-10, atol=1e-12
    )


def test_max_pool_pads_with_minus_infinity():
    x = -1 - RNG.random((1, 2, 5, 4))  # all negative: zero padding would leak zeros
    y = max_pool(x, 3, 2, 1)
    assert y.shape == (1, 2, 3, 2)
    assert y[0, 0, 0, 0] == x[0, 0, :2, :2].max()
    assert y[0, 1, 2, 1] == x[0, 1, 3:5, 1:4].max()


def test_channel_attention_formula():
    x = RNG.standard_normal((2, 3, 2, 2))
    assert np.array_equal(channel_attention(x, np.zeros(1)), x)
    flat = x.reshape(2, 3, 4)
    want = np.empty_like(flat)
    for n in range(2):
        e = flat[n] @ flat[n].T
        e = e.max(axis=1, keepdims=True) - e
        a = np.exp(e) / np.exp(e).sum(axis=1, keepdims=True)
        want[n] = 0.5 * (a @ flat[n]) + flat[n]
    np.testing.assert_allclose(
        channel_attention(x, np.array([0.5])), want.reshape(x.shape), rtol=1e-12
    )


def test_outputs_are_named_shaped_finite_and_deterministic(spec, state, images):
    out = reference_forward(spec, state, images)
    assert set(out) == {f"{p}.{n}" for p in PATH_NAMES for n in PATH_OUTPUTS} | {"test_feature"}
    table = param_table(spec)
    for path in spec.paths:
        b = path.branch
        widths = {
            "global": table[f"{b}.neck.bn.scale"].shape[0],
            "feat": table[f"{b}.neck.bn.scale"].shape[0],
            "logits": table[f"{b}.classifier.fc.weight"].shape[0],
            "z": table[f"{b}.head.fc3.weight"].shape[0],
            "z_logits": table[f"{b}.z_classifier.fc.weight"].shape[0],
        }
        for name, width in widths.items():
            assert out[f"{path.name}.{name}"].shape == (4, width)
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in out.values())
    again = reference_forward(spec, state, images)
    assert all(np.array_equal(out[k], again[k]) for k in out)


def test_eval_bnneck_uses_running_statistics(spec, state, images):
    out = reference_forward(spec, state, images)
    n = "V.neck.bn"
    want = (out["V.global"] - state[f"{n}.mean"]) / np.sqrt(state[f"{n}.var"] + 1e-5) * state[
        f"{n}.scale"
    ] + state[f"{n}.shift"]
    np.testing.assert_allclose(out["V.feat"], want, rtol=1e-5, atol=1e-5)


def test_paths_route_branches_to_views(spec, state, images):
    """With every branch holding V's weights, V/Sx see x and I/Sg see grey(x)."""
    same = dict(state)
    for name in state:
        if name.startswith("V."):
            same["I" + name[1:]] = same["S" + name[1:]] = state[name]
    out = reference_forward(spec, same, images)
    grey_v = reference_forward(spec, same, to_grey(spec, images))
    for n in PATH_OUTPUTS:
        np.testing.assert_array_equal(out[f"Sx.{n}"], out[f"V.{n}"])
        np.testing.assert_array_equal(out[f"Sg.{n}"], out[f"I.{n}"])
        np.testing.assert_allclose(out[f"I.{n}"], grey_v[f"V.{n}"], rtol=1e-6, atol=1e-6)
    assert not np.allclose(out["V.feat"], out["I.feat"])


def test_test_feature_recipes(spec, state, images):
    out = reference_forward(spec, state, images)
    cat = np.concatenate([out[f"{p}.feat"] for p in ("I", "Sg", "V", "Sx")], axis=1).astype(
        np.float64
    )
    np.testing.assert_allclose(
        out["test_feature"], cat / np.linalg.norm(cat, axis=1, keepdims=True), rtol=1e-5, atol=1e-7
    )
    per_block = spec.model_copy(
        update={"test_feature": recipe("msport").model_spec(5).test_feature}
    )
    feat = reference_forward(per_block, state, images)["test_feature"]
    np.testing.assert_allclose(np.linalg.norm(feat, axis=1), 2.0, rtol=1e-5)  # four unit blocks
    np.testing.assert_allclose(np.linalg.norm(feat[:, :64], axis=1), 1.0, rtol=1e-5)


def test_train_mode_uses_batch_statistics_and_updates_running_ones(spec, state, images):
    out, stats = reference_forward_with_stats(spec, state, images)
    assert "test_feature" not in out
    assert set(stats) == {n for n, i in param_table(spec).items() if i.running}
    eval_out = reference_forward(spec, state, images)
    assert not np.allclose(out["V.feat"], eval_out["V.feat"])

    def stem_stats(x, branch):  # the stem BN sees conv1(x): batch mean and unbiased variance
        y = conv2d(
            x.astype(np.float64), state[f"{branch}.backbone.conv1.weight"].astype(np.float64), 2, 3
        )
        return y.mean(axis=(0, 2, 3)), y.var(axis=(0, 2, 3), ddof=1)

    def blend(old, new):
        return 0.9 * old + 0.1 * new

    mv, vv = stem_stats(images, "V")
    np.testing.assert_allclose(
        stats["V.backbone.bn1.mean"], blend(state["V.backbone.bn1.mean"], mv), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        stats["V.backbone.bn1.var"], blend(state["V.backbone.bn1.var"], vv), rtol=1e-5
    )
    # S is called on grey first, then on x: two updates in that order
    mg, vg = stem_stats(to_grey(spec, images), "S")
    mx, vx = stem_stats(images, "S")
    m0, v0 = state["S.backbone.bn1.mean"], state["S.backbone.bn1.var"]
    np.testing.assert_allclose(
        stats["S.backbone.bn1.mean"], blend(blend(m0, mg), mx), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(stats["S.backbone.bn1.var"], blend(blend(v0, vg), vx), rtol=1e-5)
    # and the batch-normalised feature has (nearly) zero batch mean before the affine shift
    centred = (out["V.feat"] - state["V.neck.bn.shift"]) / state["V.neck.bn.scale"]
    np.testing.assert_allclose(centred.mean(axis=0), 0.0, atol=1e-4)


def test_bad_inputs_are_reported(spec, state, images):
    with pytest.raises(DataError, match="float NCHW"):
        reference_forward(spec, state, np.zeros((2, 64, 32, 3), np.uint8))
    with pytest.raises(DataError, match="more than 1 value"):
        reference_forward_with_stats(spec, state, images[:1])
    broken = {k: v for k, v in state.items() if not k.endswith("attn_scale")}
    broken["V.extra"] = np.zeros(1, np.float32)
    with pytest.raises(CheckpointError) as err:
        reference_forward(spec, broken, images)
    assert "9 missing" in str(err.value) and "V.extra" in str(err.value)
