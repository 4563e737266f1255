"""Torch-specific pieces: devices, the name map, the exporters."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vdreid.errors import CheckpointError, ConfigError, ExportError  # noqa: E402
from vdreid.presets import recipe  # noqa: E402
from vdreid.spec import init_state, param_table  # noqa: E402
from vdreid.workflows.export import example_batch  # noqa: E402
from vdreid_torch import names  # noqa: E402
from vdreid_torch.backend import TorchBackend  # noqa: E402
from vdreid_torch.build import build_model  # noqa: E402
from vdreid_torch.device import resolve_device  # noqa: E402
from vdreid_torch.export import export_model  # noqa: E402

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def spec():
    return recipe("tiny").model_spec(3)


def test_cpu_and_default_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    expected = "cpu" if NO_CUDA else "cuda"
    assert resolve_device(None).type == expected


@pytest.mark.skipif(not NO_CUDA, reason="checks the message on a machine without CUDA")
def test_unavailable_cuda_device_names_what_exists(spec):
    with pytest.raises(ConfigError) as err:
        TorchBackend().build(spec, device="cuda:1")
    msg = str(err.value)
    assert (
        "'cuda:1' is not available" in msg and "this machine has: cpu" in msg and "--device" in msg
    )


def test_malformed_device_is_explained():
    with pytest.raises(
        ConfigError, match=r"'gpu0' is not understood; expected 'cpu', 'cuda' or 'cuda:N'"
    ):
        resolve_device("gpu0")


def test_state_has_canonical_names_only(spec):
    model = build_model(spec)
    torch_side = set(model.state_dict())
    assert any(k.endswith("num_batches_tracked") for k in torch_side)
    state = names.get_state(model, spec)
    assert list(state) == list(param_table(spec))
    assert names.torch_key("V.neck.bn.scale", "bn_scale") == "V.neck.bn.weight"
    assert (
        names.torch_key("S.backbone.layer1.0.bn2.var", "bn_var")
        == "S.backbone.layer1.0.bn2.running_var"
    )
    assert names.torch_key("I.backbone.cam2.attn_scale", "scalar") == "I.backbone.cam2.attn_scale"


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


@pytest.mark.slow
@pytest.mark.parametrize("exporter", ["dynamo"])
def test_the_other_exporter_also_verifies(spec, tmp_path, exporter):
    """The default (torchscript) runs in the contract suite; this is the fallback."""
    model = build_model(spec)
    names.set_state(model, spec, init_state(spec, 0))
    path = tmp_path / "m.onnx"
    report = export_model(
        model, "onnx", path, example=example_batch(spec, 3), tolerance=1e-4, exporter=exporter
    )
    assert report.ok and path.is_file(), report


def test_export_refuses_unknown_formats(spec, tmp_path):
    with pytest.raises(ExportError, match=r"exports onnx; got format 'tflite'"):
        TorchBackend().export(
            build_model(spec), "tflite", str(tmp_path / "m"), example=example_batch(spec, 2)
        )
