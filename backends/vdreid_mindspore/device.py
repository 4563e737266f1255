"""Which MindSpore device a command runs on.

MindSpore has one device per process (``mindspore.set_device``): the first
model built picks it, and later builds must ask for the same one.
Names are case-insensitive: ``cpu``, ``gpu`` (``cuda`` is accepted as
a synonym), ``ascend``, each optionally ``:N``. ``None`` picks Ascend, then
GPU, when present, else the CPU. ``OMP_NUM_THREADS`` caps the CPU kernels'
thread pool, as it does torch's.
"""

from __future__ import annotations

import os
import re

from vdreid.errors import ConfigError
from vdreid_mindspore._quiet import mindspore as ms

_PATTERN = re.compile(r"^(cpu|gpu|cuda|ascend)(?::(\d+))?$")
_TARGETS = {"cpu": "CPU", "gpu": "GPU", "cuda": "GPU", "ascend": "Ascend"}

_chosen: tuple[str, int] | None = None  # the (target, id) this process committed to


def device_count(target: str) -> int:
    if target == "CPU":
        return 1
    try:
        return ms.hal.device_count(target) if ms.hal.is_available(target) else 0
    except Exception:  # a missing device plugin means the device is absent
        return 0


def visible_devices() -> tuple[str, ...]:
    found = ["CPU"]
    for target in ("GPU", "Ascend"):
        found += [f"{target}:{i}" for i in range(device_count(target))]
    return tuple(found)


def parse_device(name: str | None) -> tuple[str, int]:
    """(target, device id) for a user's device name; ConfigError when absent."""
    if name is None:
        for target in ("Ascend", "GPU"):
            if device_count(target):
                return target, 0
        return "CPU", 0
    match = _PATTERN.match(str(name).strip().lower())
    if match is None:
        raise ConfigError(
            f"device {name!r} is not understood; expected CPU, GPU or Ascend, optionally with "
            f"':N' (this machine has: {', '.join(visible_devices())})"
        )
    target, index = _TARGETS[match.group(1)], int(match.group(2) or 0)
    if target == "CPU" and index != 0:
        raise ConfigError(f"device {name!r}: the CPU has no index; pass 'CPU'")
    if index >= device_count(target):
        raise ConfigError(
            f"device {name!r} is not available to MindSpore (this machine has: "
            f"{', '.join(visible_devices())}); pass one of those with --device, or install "
            f"the MindSpore build for {target}"
        )
    return target, index


def _limit_cpu_threads() -> None:
    """OMP_NUM_THREADS, when set, also caps MindSpore's CPU kernel thread pool
    (which ignores it and uses one thread per core by default)."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        ms.set_context(runtime_num_threads=int(value))


def resolve_device(name: str | None = None) -> str:
    """Select the device for this process and return its target (CPU, GPU, Ascend)."""
    global _chosen
    if _chosen is not None and name is None:
        return _chosen[0]
    target, index = parse_device(name)
    if _chosen is None:
        if ms.get_context("device_target") != target or index != 0:
            ms.set_device(target, index)
        _limit_cpu_threads()
        _chosen = (target, index)
    elif _chosen != (target, index):
        have = f"{_chosen[0]}:{_chosen[1]}"
        raise ConfigError(
            f"this process already runs MindSpore on {have}; MindSpore uses one device per "
            f"process, so {name!r} cannot be used as well: run it in a separate process"
        )
    return target
