"""The torch Backend: the object the entry point names."""

from __future__ import annotations

import torch

from vdreid.backend import BackendInfo
from vdreid_torch.ops import TorchOps


def visible_devices() -> tuple[str, ...]:
    cuda = tuple(f"cuda:{i}" for i in range(torch.cuda.device_count())) if torch.cuda.is_available() else ()
    return ("cpu", *cuda)


class TorchBackend:
    name = "torch"

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, "torch", torch.__version__, visible_devices())

    def ops(self) -> TorchOps:
        return TorchOps()
