"""param_table against the official checkpoint's keys, and init_state's rules."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from vdreid.errors import ConfigError
from vdreid.presets import recipe
from vdreid.spec import init_state, param_table
from vdreid.spec.initial_state import draw, tensor_rng

OFFICIAL_KEYS = Path(__file__).parents[1] / "data" / "mvd_official_state_dict_keys.tsv"
BRANCH = {"RGB": "V", "IR": "I", "shared": "S"}
CAM = {"256": "2", "512": "3", "1024": "4"}
HEAD = {"0": "fc1", "1": "bn1", "3": "fc2", "4": "bn2", "6": "fc3"}
ZCLS = {"0": "hidden", "1": "bn", "4": "fc"}
BN_TENSOR = {"weight": "scale", "bias": "shift", "running_mean": "mean", "running_var": "var"}


def official_rows() -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in OFFICIAL_KEYS.read_text().splitlines()[1:]:
        key, shape, _ = line.split("\t")
        rows.append((key, () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))))
    return rows


def canonical(key: str, bn_modules: set[str]) -> str:
    """The canonical counterpart of an official key (a test-local map, not the converter)."""
    owner, tensor = key.rsplit(".", 1)
    if owner in bn_modules:
        tensor = BN_TENSOR[tensor]
    prefix, rest = owner.split("_", 1) if not owner.startswith("shared") else ("shared", owner[7:])
    b = BRANCH[prefix]
    if m := re.fullmatch(r"backbone\.cam_(\d+)\._cam_module", rest):
        return f"{b}.backbone.cam{CAM[m[1]]}.attn_scale"
    if rest.startswith("backbone.base."):
        rest = rest[len("backbone.base.") :].replace("downsample.0", "downsample.conv")
        return f"{b}.backbone.{rest.replace('downsample.1', 'downsample.bn')}.{tensor}"
    if rest == "backbone.bottleneck":
        return f"{b}.neck.bn.{tensor}"
    if rest == "backbone.classifier.0":
        return f"{b}.classifier.fc.{tensor}"
    if m := re.fullmatch(r"Bottleneck\.bottleneck\.model\.(\d)", rest):
        return f"{b}.head.{HEAD[m[1]]}.{tensor}"
    if m := re.fullmatch(r"Bottleneck\.classifier\.(\d)", rest):
        return f"{b}.z_classifier.{ZCLS[m[1]]}.{tensor}"
    raise AssertionError(f"no canonical counterpart for {key}")


def test_every_official_key_has_a_canonical_counterpart_of_the_same_shape():
    rows = official_rows()
    assert len(rows) == 1065
    bn_modules = {k.rsplit(".", 1)[0] for k, _ in rows if k.endswith(".running_mean")}
    used = [
        (k, s) for k, s in rows if not k.endswith("num_batches_tracked") and ".base.fc." not in k
    ]
    table = param_table(recipe("official").model_spec(395))
    mapped = {canonical(k, bn_modules): s for k, s in used}
    assert len(mapped) == len(used)  # the map is one-to-one
    assert set(mapped) == set(table)
    for name, shape in mapped.items():
        assert table[name].shape == shape, name
    for b in "VIS":  # per-branch counts agree too
        assert sum(1 for n in mapped if n.startswith(f"{b}.")) == sum(
            1 for n in table if n.startswith(f"{b}.")
        )


def test_roles_and_trainability():
    table = param_table(recipe("official").model_spec(395))
    assert table["V.neck.bn.shift"].trainable is False
    assert table["V.neck.bn.scale"].trainable is True
    assert table["S.backbone.bn1.mean"].running and not table["S.backbone.bn1.mean"].trainable
    assert table["I.backbone.cam3.attn_scale"].role == "scalar"
    assert {i.role for i in table.values()} == {
        "weight",
        "bias",
        "bn_scale",
        "bn_shift",
        "bn_mean",
        "bn_var",
        "scalar",
    }
    assert all(i.running == (i.role in ("bn_mean", "bn_var")) for i in table.values())
    assert param_table(recipe("msport").model_spec(395))["V.neck.bn.shift"].trainable is True


def test_init_state_covers_the_table_in_float32_and_is_deterministic():
    spec = recipe("tiny").model_spec(6)
    table = param_table(spec)
    a, b, c = init_state(spec, 0), init_state(spec, 0), init_state(spec, 1)
    assert list(a) == list(table)
    for name, info in table.items():
        assert a[name].dtype == np.float32 and a[name].shape == info.shape
        assert np.array_equal(a[name], b[name])
    assert not np.array_equal(a["V.backbone.conv1.weight"], c["V.backbone.conv1.weight"])
    # branches draw independently: same shapes, different values
    assert not np.array_equal(a["V.backbone.conv1.weight"], a["I.backbone.conv1.weight"])
    with pytest.raises(ConfigError):
        init_state(spec, -1)


def test_init_rules_follow_the_method():
    spec = recipe("tiny").model_spec(6)
    s = init_state(spec, 3)
    assert np.all(s["V.backbone.cam2.attn_scale"] == 0)
    assert np.all(s["V.neck.bn.scale"] == 1) and np.all(s["V.neck.bn.shift"] == 0)
    assert np.all(s["V.backbone.bn1.var"] == 1) and np.all(s["V.backbone.bn1.mean"] == 0)
    assert np.all(s["V.z_classifier.bn.scale"] == 1)
    assert np.all(s["V.head.fc1.bias"] == 0) and np.all(s["V.classifier.fc.bias"] == 0)


@pytest.mark.parametrize(
    ("name", "mean", "std"),
    [
        ("V.head.fc1.weight", 0.0, math.sqrt(2 / 1000)),  # kaiming fan_out of Linear(2048, 1000)
        ("V.backbone.layer1.0.conv2.weight", 0.0, math.sqrt(2 / (64 * 9))),  # fan_out = O*kh*kw
        ("V.head.bn1.scale", 1.0, 0.02),
        ("V.z_classifier.fc.weight", 0.0, 0.001),
        ("V.classifier.fc.weight", 0.0, 0.001),
    ],
)
def test_init_statistics_on_official_shapes(name, mean, std):
    info = param_table(recipe("official").model_spec(395))[name]
    x = draw(info.init, info.shape, tensor_rng(0, name)).astype(np.float64)
    n = x.size
    assert abs(x.mean() - mean) < 5 * std / math.sqrt(n)
    assert abs(x.std() / std - 1) < 5 / math.sqrt(2 * n) + 1e-3
