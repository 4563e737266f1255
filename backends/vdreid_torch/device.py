"""Which torch device a command runs on: CUDA when present, else the CPU."""

from __future__ import annotations

import re

import torch

from vdreid.errors import ConfigError

_PATTERN = re.compile(r"^(cpu|cuda)(?::(\d+))?$")


def visible_devices() -> tuple[str, ...]:
    cuda = (
        tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))
        if torch.cuda.is_available()
        else ()
    )
    return ("cpu", *cuda)


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """``None`` -> the first CUDA device if there is one, else the CPU.

    ``name`` is ``cpu``, ``cuda`` or ``cuda:N``; a device this machine does
    not have raises ConfigError listing the ones it has.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name is None:
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    match = _PATTERN.match(name.strip().lower())
    if match is None:
        raise ConfigError(
            f"device {name!r} is not understood; expected 'cpu', 'cuda' or 'cuda:N' "
            f"(this machine has: {', '.join(visible_devices())})"
        )
    kind, index = match.group(1), match.group(2)
    if kind == "cpu":
        if index not in (None, "0"):
            raise ConfigError(f"device {name!r}: the CPU has no index; pass 'cpu'")
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    i = int(index or 0)
    if i >= count:
        have = ", ".join(visible_devices())
        raise ConfigError(
            f"device {name!r} is not available (this machine has: {have}); "
            "pass one of those with --device, or install a CUDA build of torch"
        )
    return torch.device("cuda", i)
