"""The MindSpore Backend: the object the entry point names."""

from __future__ import annotations

from vdreid.backend import BackendInfo
from vdreid_mindspore._quiet import mindspore as ms
from vdreid_mindspore.ops import MSOps


def visible_devices() -> tuple[str, ...]:
    found = ["CPU"]
    for target in ("GPU", "Ascend"):
        try:
            if ms.hal.is_available(target):
                found += [f"{target}:{i}" for i in range(ms.hal.device_count(target))]
        except Exception:  # a missing device plugin means the device is absent
            continue
    return tuple(found)


class MindSporeBackend:
    name = "mindspore"

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, "mindspore", ms.__version__, visible_devices())

    def ops(self) -> MSOps:
        return MSOps()
