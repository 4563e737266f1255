"""Model specs: presets, validation, JSON round trip, hashing, builders."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vdreid.errors import SpecError
from vdreid.presets import RECIPES, recipe
from vdreid.spec import (
    ModelSpec,
    count_params,
    param_table,
    resnet,
    spec_from_json,
    spec_hash,
)
from vdreid.spec.nodes import resolve_padding, same_padding
from vdreid.spec.params import resnet_params


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_json_round_trip_is_identical(name):
    spec = recipe(name).model_spec(7)
    text = spec.model_dump_json()
    back = ModelSpec.model_validate_json(text)
    assert back == spec
    assert back.model_dump_json() == text
    assert spec_hash(back) == spec_hash(spec)


def test_hash_is_stable_across_processes_and_sensitive_to_content():
    code = (
        "from vdreid.presets import recipe; from vdreid.spec import spec_hash; "
        "print(spec_hash(recipe('official').model_spec(395)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123"},
    )
    here = spec_hash(recipe("official").model_spec(395))
    assert out.stdout.strip() == here
    assert len(here) == 64
    assert spec_hash(recipe("official").model_spec(206)) != here
    assert spec_hash(recipe("paper").model_spec(395)) != here


#: spec hashes written by vdreid before msport became the port's network
#: (main at b2cd702): the presets that did not change must keep them, so
#: their checkpoints keep loading (load_checkpoint checks the hash)
HASHES_BEFORE_PADDING_MODES = {
    "official": "48149778ca9f2d91d78c5d2de34f1c3c3e48487102aef85570e5d51deb15dded",
    "paper": "264955fcf7ab9f879bd5af06987bbcf680c036d9048468f145f35673da40af89",
    "tiny": "97a89aefe9e7ecee8643d8c251e3e02d5c122aa8f5d70568212d1a66825ba44e",
}


@pytest.mark.parametrize("name", sorted(HASHES_BEFORE_PADDING_MODES))
def test_presets_without_same_padding_keep_their_spec_hash(name):
    spec = recipe(name).model_spec(395)
    assert spec_hash(spec) == HASHES_BEFORE_PADDING_MODES[name]
    assert '"same"' not in spec.model_dump_json()


def test_msport_pads_as_mindspore_at_288x144():
    """TensorFlow's SAME: the stem pads rows (2, 3), the max pool and the
    stride-2 3x3 convolutions (0, 1); stride-1 windows pad symmetrically."""
    spec = recipe("msport").model_spec(395)
    trunk = spec.branch("V").backbone
    assert trunk.stem.conv.padding == trunk.stem.pool.padding == "same"
    assert same_padding(288, 7, 2) == (2, 3) and same_padding(144, 7, 2) == (2, 3)
    assert same_padding(72, 3, 2) == (0, 1) and same_padding(36, 3, 2) == (0, 1)
    assert same_padding(9, 3, 2) == (1, 1) and same_padding(18, 3, 1) == (1, 1)
    assert same_padding(18, 1, 2) == (0, 0)
    assert resolve_padding("same", 7, 2, 288, 144) == (2, 3, 2, 3)
    assert resolve_padding(3, 7, 2, 288, 144) == (3, 3, 3, 3)
    bn3 = trunk.stages[0].blocks[0].bn3
    assert (bn3.eps, bn3.momentum) == (1e-3, 0.003)
    assert trunk.stages[0].blocks[0].bn2.eps == 1e-5
    assert spec.test_feature.paths == ("V", "Sx", "I", "Sg")


# Published counts: the ImageNet fc of torchvision's ResNets (in*1000 + 1000) excluded.
@pytest.mark.parametrize(
    ("depth", "count"),
    [
        (18, 11_689_512 - 513_000),
        (34, 21_797_672 - 513_000),
        (50, 25_557_032 - 2_049_000),
        (101, 44_549_160 - 2_049_000),
    ],
)
def test_resnet_trunk_matches_torchvision_counts(depth, count):
    table = dict(resnet_params(resnet(depth), "b"))
    assert count_params(table) == count


@pytest.mark.parametrize(
    ("preset", "classes", "total"),
    [
        ("official", 395, 82_091_559),
        ("msport", 395, 82_091_550),
        ("official", 206, 80_784_057),
        ("paper", 395, 82_091_559),
    ],
)
def test_preset_parameter_counts_match_the_method(preset, classes, total):
    table = param_table(recipe(preset).model_spec(classes))
    assert count_params(table) == total
    per_branch = [count_params(table, f"{b}.") for b in "VIS"]
    assert per_branch[0] == per_branch[1] == per_branch[2]
    assert sum(per_branch) == total


def test_official_network_shape():
    spec = recipe("official").model_spec(395)
    assert [p.name for p in spec.paths] == ["V", "I", "Sg", "Sx"]
    assert [(p.branch, p.view) for p in spec.paths] == [
        ("V", "x"),
        ("I", "grey"),
        ("S", "grey"),
        ("S", "x"),
    ]
    v = spec.branch("V")
    assert v.feat_dim == 2048 and v.head.out_features == 512
    assert [s.attention is not None for s in v.backbone.stages] == [False, True, True, True]
    assert v.backbone.stages[3].blocks[0].conv2.stride == 1  # last stride 1
    assert v.neck.bn.shift_trainable is False
    assert v.z_classifier.dropout == 0.5 and v.classifier.dropout == 0.0
    assert spec.feature_dim == 4 * 2048
    assert (spec.input.height, spec.input.width) == (256, 128)


def test_msport_differs_where_the_method_says():
    off, ms = recipe("official").model_spec(395), recipe("msport").model_spec(395)
    b = ms.branch("S")
    assert all(s.attention is None for s in b.backbone.stages)
    assert b.backbone.stages[3].blocks[0].conv2.stride == 2
    assert b.neck.bn.shift_trainable is True
    assert (ms.input.height, ms.input.width) == (288, 144)
    assert ms.grey.coefficients[2] == 0.1440 and off.grey.coefficients[2] == 0.1140
    assert ms.test_feature.normalise == "per_block" and off.test_feature.normalise == "whole"


def test_tiny_is_small_and_keeps_the_structure():
    spec = recipe("tiny").model_spec(10)
    assert count_params(param_table(spec)) < 1_000_000
    b = spec.branch("I")
    assert b.backbone.depth == 18 and b.neck is not None
    assert any(s.attention is not None for s in b.backbone.stages)
    assert (spec.input.height, spec.input.width) == (64, 32)


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(SpecError) as err:
        recipe("offical").model_spec(395)
    for name in RECIPES:
        assert name in str(err.value)


@pytest.mark.parametrize(
    "kwargs", [{"depth": 26}, {"width": 0.001}, {"last_stride": 3}, {"cam_positions": (5,)}]
)
def test_resnet_builder_rejects_bad_arguments(kwargs):
    with pytest.raises(SpecError):
        resnet(**{"depth": 18, **kwargs})


def test_inconsistent_spec_json_is_a_spec_error():
    data = json.loads(recipe("tiny").model_spec(5).model_dump_json())
    data["num_classes"] = 6  # classifiers still have 5 outputs
    with pytest.raises(SpecError, match="num_classes"):
        spec_from_json(json.dumps(data))
    data = json.loads(recipe("tiny").model_spec(5).model_dump_json())
    data["paths"][0]["branch"] = "X"
    with pytest.raises(SpecError, match="branch 'X'"):
        spec_from_json(json.dumps(data))
    with pytest.raises(SpecError):
        spec_from_json("{not json")


def test_specs_are_immutable():
    spec = recipe("tiny").model_spec(5)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError for frozen models
        spec.num_classes = 3  # type: ignore[misc]
