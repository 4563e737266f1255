"""MindSpore devices: names and what an unavailable one says."""

from __future__ import annotations

import pytest

pytest.importorskip("mindspore")
from vdreid.errors import ConfigError  # noqa: E402
from vdreid_mindspore.device import parse_device  # noqa: E402


@pytest.mark.parametrize("name", ["tpu", "gpu:x", "cpu:1"])
def test_bad_device_names_are_config_errors(name):
    with pytest.raises(ConfigError, match="CPU"):
        parse_device(name)


def test_absent_accelerators_are_config_errors_naming_what_exists():
    if parse_device(None)[0] != "CPU":
        pytest.skip("this machine has an accelerator")
    for name in ("GPU", "Ascend:1", "cuda"):
        with pytest.raises(ConfigError, match="this machine has: CPU"):
            parse_device(name)
    assert parse_device("cpu") == ("CPU", 0)
