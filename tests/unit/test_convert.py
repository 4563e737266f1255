"""`vdreid convert`'s core: every layout in, canonical names out, checked
against a second, independent reading of each layout (tests/foreign_files.py)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from safetensors.numpy import save_file

from vdreid.checkpoint import load_checkpoint
from vdreid.errors import CheckpointError
from vdreid.interchange.convert import convert_file, fold_bn_eps
from vdreid.interchange.mindspore_ckpt import write_mindspore_ckpt
from vdreid.interchange.native import torch_file_bytes
from vdreid.presets import recipe
from vdreid.reference import reference_forward
from vdreid.spec import init_state, param_table, preprocess
from vdreid.spec.builders import with_input_size
from vdreid.workflows.convert import convert
from vdreid.workflows.pretrained import apply_pretrained

import foreign_files as ff

#: one pytest-xdist worker runs this module: its shared fixtures are costly
pytestmark = pytest.mark.xdist_group("convert")


def _assert_tensors(got: dict, want: dict) -> None:
    assert set(got) == set(want), sorted(set(got) ^ set(want))[:6]
    for k in want:
        assert got[k].dtype == np.float32 and np.array_equal(got[k], want[k]), k


@pytest.mark.parametrize(("prefix", "classes"), [("", 395), ("module.", 206)])
def test_official_checkpoint_converts_every_tensor(tmp_path, prefix, classes):
    state = ff.official_state(prefix=prefix, classes=classes)
    path = tmp_path / "model_best.pth.tar"
    path.write_bytes(torch_file_bytes(state))  # the authors' layout, written without torch
    c = convert_file(path)
    assert c.layout == "official" and c.spec == recipe("official").model_spec(classes)
    _assert_tensors(
        c.tensors, ff.official_to_canonical({k[len(prefix) :]: v for k, v in state.items()})
    )
    assert set(c.tensors) == set(param_table(c.spec))  # every tensor placed: gammas, statistics
    assert {why: len(keys) for why, keys in c.dropped.items()} == {
        "batch-norm step counters (vdreid keeps none)": 171,
        "the unused ImageNet fc": 6,
    }


def test_the_output_records_where_it_came_from(tmp_path):
    pytest.importorskip("torch")
    source = ff.save_torch(
        tmp_path / "checkpoint.pth.tar",
        {"model": ff.official_state(), "epoch": 215, "best_top1": 0.6002},
    )
    result = convert(source, tmp_path / "official.safetensors")
    ckpt = load_checkpoint(result.out)
    assert ckpt.spec == recipe("official").model_spec(395)
    assert ckpt.meta["source"] == "checkpoint.pth.tar"
    assert ckpt.meta["source_format"] == "official"
    assert ckpt.meta["source_epoch"] == "215" and ckpt.meta["source_best_top1"] == "0.6002"
    import hashlib

    assert ckpt.meta["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert "epoch" not in ckpt.meta  # not a training position: --resume refuses it


def test_msport_ckpt_converts_one_to_one(tmp_path):
    state = ff.msport_state(classes=206)
    path = write_mindspore_ckpt(tmp_path / "best_epoch_80.ckpt", state)
    c = convert_file(path)
    assert c.layout == "msport" and c.spec == recipe("msport").model_spec(206)
    assert len(state) == len(c.tensors) == 879 and not c.dropped
    _assert_tensors(c.tensors, ff.msport_to_canonical(state))


def test_msport_ckpt_written_by_mindspore_converts(tmp_path):
    ms = pytest.importorskip("mindspore")
    state = ff.msport_state()
    path = tmp_path / "port.ckpt"
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in state.items()], str(path))
    _assert_tensors(convert_file(path).tensors, ff.msport_to_canonical(state))


def _backbone_files(tmp_path):
    tv = ff.torchvision_resnet50()
    zoo = ff.mindspore_zoo_resnet50()
    legacy = tmp_path / "resnet50-19c8e357.pth"
    save_file(dict(tv), tmp_path / "model.safetensors")
    (tmp_path / "timm.pth").write_bytes(torch_file_bytes(OrderedDict(tv)))
    return {
        "torchvision": (legacy, tv, ff.TORCH_BN, "downsample"),
        "timm": (tmp_path / "model.safetensors", tv, ff.TORCH_BN, "downsample"),
        "timm-pth": (tmp_path / "timm.pth", tv, ff.TORCH_BN, "downsample"),
        "mindspore-zoo": (
            write_mindspore_ckpt(tmp_path / "resnet50.ckpt", zoo),
            zoo,
            ff.MINDSPORE_BN,
            "down_sample_layer",
        ),
    }


@pytest.mark.parametrize("kind", ["torchvision", "timm", "timm-pth", "mindspore-zoo"])
def test_imagenet_backbones_land_in_every_branch(tmp_path, kind):
    files = _backbone_files(tmp_path)
    path, source, bn, down = files[kind]
    if kind == "torchvision":
        torch = pytest.importorskip("torch")  # the real file is torch's legacy format
        ff.save_torch(path, source, zipped=False)
        assert path.read_bytes()[:2] == b"\x80\x02"
        del torch
    backbone = ff.backbone_to_canonical(source, bn, down)
    c = convert_file(path, "timm" if kind == "timm-pth" else "auto")
    assert c.kind == "backbone" and c.layout == kind.removesuffix("-pth")
    _assert_tensors(c.tensors, backbone)
    spec = recipe("official").model_spec(395)
    start = init_state(spec, 0)
    out, report = apply_pretrained(spec, start, path)
    assert report.branches == ("V", "I", "S") and report.loaded == 3 * len(backbone)
    eps_moved = kind == "mindspore-zoo"  # trained with eps 1e-4; official's is 1e-5
    for branch in "VIS":
        for name, value in backbone.items():
            got = out[f"{branch}.{name}"]
            if eps_moved and name.endswith(".var"):
                assert np.allclose(got, value + np.float32(9e-5), rtol=0, atol=1e-7), name
            else:
                assert np.array_equal(got, value), (branch, name)
    others = [k for k in start if ".backbone." not in k or ".cam" in k]
    assert all(np.array_equal(out[k], start[k]) for k in others)  # heads keep their init


def test_a_vdreid_backbone_file_applies_like_its_source(tmp_path):
    path, _, _, _ = _backbone_files(tmp_path)["mindspore-zoo"]
    out = convert(path, tmp_path / "backbone.safetensors").out
    spec = recipe("msport").model_spec(395)
    start = init_state(spec, 0)
    direct, _ = apply_pretrained(spec, start, path)
    via_file, report = apply_pretrained(spec, start, out)
    assert report.layout == "vdreid-backbone"
    assert all(np.array_equal(direct[k], via_file[k]) for k in direct)


@pytest.mark.parametrize(("source", "target"), [(1e-4, 1e-5), (1e-5, 1e-3), (1e-3, 1e-5)])
def test_folding_the_batch_norm_eps_keeps_eval_outputs(source, target):
    rng = np.random.default_rng(0)
    var = np.concatenate([rng.uniform(0, 1e-3, 50), rng.uniform(0.1, 2.0, 50)]).astype(np.float32)
    scale = rng.uniform(0.5, 1.5, 100).astype(np.float32)
    x = rng.normal(0, 1, (8, 100))
    new_scale, new_var = fold_bn_eps(scale, var, source, target)
    before = scale * x / np.sqrt(var.astype(np.float64) + source)
    after = new_scale * x / np.sqrt(new_var.astype(np.float64) + target)
    assert np.allclose(after, before, rtol=1e-6, atol=0)
    assert np.all(new_var >= 0)
    if source > target:  # the difference fits in the variance: the scales stay
        assert np.array_equal(new_scale, scale)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda p: write_mindspore_ckpt(p, {"foo.weight": np.ones((2, 2), np.float32)}),
            r"no weight layout vdreid knows: a mindspore file whose top level holds foo\.weight",
        ),
        (
            lambda p: p.write_bytes(
                torch_file_bytes(
                    OrderedDict(
                        {
                            "conv1.weight": np.ones((64, 3, 3, 3), np.float32),
                            "bn1.running_mean": np.ones(64, np.float32),
                        }
                    )
                )
            ),
            "no 7x7 RGB stem convolution",
        ),
        (
            lambda p: write_mindspore_ckpt(
                p, {k: v for k, v in ff.msport_state().items() if "layer3" not in k}
            ),
            r"does not fit the msport layout .*missing",
        ),
    ],
    ids=["unknown-layout", "deep-stem", "incomplete-msport"],
)
def test_files_that_do_not_fit_say_what_they_hold(tmp_path, build, message):
    path = tmp_path / "weights.bin"
    build(path)
    with pytest.raises(CheckpointError, match=message):
        convert_file(path)


def _official_file(tmp_path):
    state = ff.official_state(seed=5, classes=12)
    path = tmp_path / "model_best.pth.tar"
    path.write_bytes(torch_file_bytes(state))
    return path, ff.official_to_canonical(state)


def _msport_file(tmp_path):
    state = ff.msport_state(classes=12, seed=5)
    return write_mindspore_ckpt(tmp_path / "port.ckpt", state), ff.msport_to_canonical(state)


#: features of a converted model vs the oracle on the independently mapped
#: tensors, relative to the largest feature value (measured: ~1e-6 on torch)
FEATURE_RTOL = 1e-5


@pytest.fixture(scope="session", params=[_official_file, _msport_file], ids=["official", "msport"])
def converted_case(request, tmp_path_factory):
    """A converted stand-in, images, and the oracle's features on the tensors
    mapped by tests/foreign_files.py (once per layout, shared by the backends)."""
    tmp_path = tmp_path_factory.mktemp("converted")
    path, canonical = request.param(tmp_path)
    ckpt = load_checkpoint(convert(path, tmp_path / "converted.safetensors").out)
    spec = with_input_size(ckpt.spec, (64, 32))  # the weights do not depend on it
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 32, 3), dtype=np.uint8)
    want = reference_forward(spec, canonical, preprocess(spec, images))["test_feature"]
    return spec, ckpt.tensors, images, want


def test_converted_models_give_the_reference_features(backend, converted_case):
    """Every tensor placed where it acts (attention gammas, running statistics
    included): the backend's features of the converted checkpoint equal the
    oracle's on the independently mapped tensors."""
    spec, tensors, images, want = converted_case
    model = backend.build(spec, device="cpu")
    backend.set_state(model, tensors)
    got = backend.features(model, images)
    assert np.max(np.abs(got - want)) <= FEATURE_RTOL * np.max(np.abs(want))
