"""The MindSpore interpreter: canonical names, batch-norm momentum and
variance, strict state loading."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mindspore")
from vdreid.errors import CheckpointError  # noqa: E402
from vdreid.presets import recipe  # noqa: E402
from vdreid.spec import BatchNorm, init_state, param_table  # noqa: E402
from vdreid_mindspore import names  # noqa: E402
from vdreid_mindspore._quiet import mindspore as ms  # noqa: E402
from vdreid_mindspore.build import batch_norm, build_model  # noqa: E402


def test_only_batch_norm_leaves_change_name():
    spec = recipe("tiny").model_spec(5)
    mapping = names.framework_keys(spec)
    changed = {c: f for c, f in mapping.items() if c != f}
    roles = {info.role for n, info in param_table(spec).items() if n in changed}
    assert roles == {"bn_scale", "bn_shift", "bn_mean", "bn_var"}
    assert len(set(mapping.values())) == len(mapping)  # one framework name per canonical one
    assert mapping["V.neck.bn.var"] == "V.neck.bn.moving_variance"


def test_batch_norm_running_statistics_follow_the_spec_convention():
    """running = (1 - m) running + m batch, with the UNBIASED batch variance (torch's rule)."""
    node = BatchNorm(channels=3, momentum=0.1)
    bn = batch_norm(node, maps=True)
    bn.set_train(True)
    x = np.random.default_rng(0).normal(2.0, 3.0, (4, 3, 5, 2)).astype(np.float32)
    y = bn(ms.Tensor(x)).asnumpy()
    mean = x.mean(axis=(0, 2, 3))
    np.testing.assert_allclose(bn.moving_mean.asnumpy(), 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(
        bn.moving_variance.asnumpy(), 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1), rtol=1e-5
    )
    # normalisation uses the biased batch variance
    want = (x - mean.reshape(1, 3, 1, 1)) / np.sqrt(
        x.var(axis=(0, 2, 3)).reshape(1, 3, 1, 1) + 1e-5
    )
    np.testing.assert_allclose(y, want, atol=1e-5)


def test_frozen_shift_gets_no_gradient():
    bn = batch_norm(BatchNorm(channels=4, shift_trainable=False), maps=False)
    assert not bn.beta.requires_grad and bn.gamma.requires_grad


def test_set_state_is_strict():
    spec = recipe("tiny").model_spec(5)
    model = build_model(spec)
    state = init_state(spec, 0)
    names.set_state(model, spec, state)
    broken = dict(state)
    del broken["V.neck.bn.var"]
    broken["V.extra.weight"] = np.zeros(2, np.float32)
    with pytest.raises(CheckpointError, match=r"V\.neck\.bn\.var.*|V\.extra\.weight"):
        names.set_state(model, spec, broken)
    with pytest.raises(CheckpointError, match="float"):
        names.set_state(
            model, spec, {**state, "V.neck.bn.var": state["V.neck.bn.var"].astype(np.int64)}
        )
    got = names.get_state(model, spec)
    assert list(got) == list(param_table(spec))
    assert all(np.array_equal(got[k], state[k]) for k in state)
