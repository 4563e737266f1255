"""torch devices: names, the default, and what an unavailable one says."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from vdreid.errors import ConfigError  # noqa: E402
from vdreid.presets import recipe  # noqa: E402
from vdreid_torch.backend import TorchBackend  # noqa: E402
from vdreid_torch.device import resolve_device  # noqa: E402

NO_CUDA = not torch.cuda.is_available()


def test_cpu_and_default_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    expected = "cpu" if NO_CUDA else "cuda"
    assert resolve_device(None).type == expected


@pytest.mark.skipif(not NO_CUDA, reason="checks the message on a machine without CUDA")
def test_unavailable_cuda_device_names_what_exists():
    with pytest.raises(ConfigError) as err:
        TorchBackend().build(recipe("tiny").model_spec(3), device="cuda:1")
    msg = str(err.value)
    assert (
        "'cuda:1' is not available" in msg and "this machine has: cpu" in msg and "--device" in msg
    )


def test_malformed_device_is_explained():
    with pytest.raises(
        ConfigError, match=r"'gpu0' is not understood; expected 'cpu', 'cuda' or 'cuda:N'"
    ):
        resolve_device("gpu0")
