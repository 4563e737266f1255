"""Devices: onnxruntime's execution providers under vdreid's device names."""

from __future__ import annotations

import onnxruntime as ort

from vdreid.errors import ConfigError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def visible_devices() -> tuple[str, ...]:
    """``cpu``, and ``cuda`` when this onnxruntime build has the CUDA provider."""
    return ("cpu", "cuda") if CUDA in ort.get_available_providers() else ("cpu",)


def providers(device: str | None) -> list[str | tuple[str, dict[str, str]]]:
    """The provider list for ``device`` (cpu, cuda, cuda:N; default cpu)."""
    name = (device or "cpu").lower()
    if name == "cpu":
        return [CPU]
    kind, _, index = name.partition(":")
    if kind == "cuda" and (index.isdigit() or not index):
        if CUDA not in ort.get_available_providers():
            raise ConfigError(
                f"device {device!r}: this onnxruntime has no CUDA provider (it has "
                f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu or use "
                "--device cpu"
            )
        return [(CUDA, {"device_id": index or "0"}), CPU]
    raise ConfigError(f"device {device!r} is not one of cpu, cuda, cuda:N (onnxruntime backend)")
