"""The torch interpreter: canonical names, strict state loading, the built model."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vdreid.errors import CheckpointError  # noqa: E402
from vdreid.presets import recipe  # noqa: E402
from vdreid.spec import init_state, param_table  # noqa: E402
from vdreid_torch import names  # noqa: E402
from vdreid_torch.build import build_model  # noqa: E402


@pytest.fixture(scope="module")
def spec():
    return recipe("tiny").model_spec(3)


def test_state_has_canonical_names_only(spec):
    model = build_model(spec)
    torch_side = set(model.state_dict())
    assert any(k.endswith("num_batches_tracked") for k in torch_side)
    state = names.get_state(model, spec)
    assert list(state) == list(param_table(spec))
    keys = names.framework_keys(spec)
    assert keys["V.neck.bn.scale"] == "V.neck.bn.weight"
    assert keys["S.backbone.layer1.0.bn2.var"] == "S.backbone.layer1.0.bn2.running_var"
    assert keys["I.backbone.cam2.attn_scale"] == "I.backbone.cam2.attn_scale"


def test_set_state_reports_every_problem_at_once(spec):
    model = build_model(spec)
    state = init_state(spec, 0)
    del state["V.backbone.conv1.weight"]
    state["V.extra"] = np.zeros(1, np.float32)
    state["I.neck.bn.scale"] = np.zeros(5, np.float32)
    with pytest.raises(CheckpointError) as err:
        names.set_state(model, spec, state)
    msg = str(err.value)
    assert "V.backbone.conv1.weight" in msg and "V.extra" in msg and "I.neck.bn.scale" in msg


def test_built_model_is_zeroed_until_loaded(spec):
    state = names.get_state(build_model(spec), spec)
    for name, value in state.items():
        assert np.all(value == (1.0 if name.endswith(".var") else 0.0)), name


def test_bnneck_shift_is_frozen_in_the_module(spec):
    model = build_model(spec)
    assert not model.V.neck.bn.bias.requires_grad
    assert model.V.neck.bn.weight.requires_grad


def test_cpu_features_run_in_chunks_of_the_cpu_batch(spec, monkeypatch):
    """A CPU forwards at most CPU_FEATURE_BATCH images at a time, whatever
    the caller's batch_size, and the features do not depend on the chunking."""
    from vdreid.backend_inputs import CPU_FEATURE_BATCH
    from vdreid_torch import infer

    model = build_model(spec)
    names.set_state(model, spec, init_state(spec, 0))
    images = np.random.default_rng(0).integers(0, 256, (19, 32, 16, 3), dtype=np.uint8)
    whole = infer.features(model, images, batch_size=1)
    seen: list[int] = []
    inner = model.test_feature
    monkeypatch.setattr(model, "test_feature", lambda x: seen.append(len(x)) or inner(x))
    got = infer.features(model, images, batch_size=64)
    assert seen == [8, 8, 3] and CPU_FEATURE_BATCH == 8
    np.testing.assert_allclose(got, whole, rtol=0, atol=1e-5)
