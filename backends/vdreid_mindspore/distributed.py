"""MindSpore's process group under msrun: joining it, averaging over it,
and checking that the ranks hold the same weights.

msrun starts one worker per device plus one scheduler process, all running
the same command (vdreid.workflows.launch reads their environment).
``mindspore.communication.init`` joins the group (mccl on the CPU, nccl on
GPU, hccl on Ascend); in the scheduler it serves the workers and MindSpore
ends the process when they are done. Only sum all-reduces exist on the CPU
(``ReduceOp.MAX`` raises "AllReduce only support reduce sum on CPU"), and
only for float32, so means are sums divided by the world size and the
weight check all-gathers float32 digests.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

import numpy as np
from mindspore import Tensor, ops
from mindspore.communication import get_group_size, get_rank, init, release
from mindspore.communication.management import GlobalComm

from vdreid.errors import ConfigError
from vdreid_mindspore.device import resolve_device

_DIGEST_WORDS = 3  # 16-bit words of each tensor's sha256 kept (exact in float32)
_joined = False


def join(device: str | None = None) -> tuple[int, int]:
    """Join msrun's process group (once; later calls only read it) on
    ``device``; returns (rank, world). Never returns in msrun's scheduler."""
    global _joined
    if not (_joined or GlobalComm.INITED):
        if "MS_ROLE" not in os.environ:
            raise ConfigError(
                "distributed=True but this process was not started by msrun (no MS_ROLE in its "
                "environment); start the run with `msrun --worker_num N --local_worker_num N "
                "--join True python -m vdreid train --backend mindspore ...`"
            )
        resolve_device(device)  # init picks its collective library from the device
        init()
    _joined = True
    return get_rank(), get_group_size()


def leave() -> None:
    """Release the process group (after the last collective of the run)."""
    global _joined
    if _joined:
        release()
        _joined = False


def sum_over_ranks(values: np.ndarray) -> np.ndarray:
    """Element-wise sum of a host vector over the ranks (eager; the CPU
    collectives take float32 only)."""
    return ops.AllReduce()(Tensor(np.asarray(values, np.float32))).asnumpy().astype(np.float64)


def digests(state: Mapping[str, np.ndarray]) -> np.ndarray:
    """(tensors, words) float32: the leading 16-bit words of each tensor's sha256."""
    rows = []
    for name in sorted(state):
        value = np.ascontiguousarray(state[name])
        digest = hashlib.sha256(value.tobytes() + str(value.dtype).encode()).digest()
        rows.append(np.frombuffer(digest[: 2 * _DIGEST_WORDS], dtype="<u2"))
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), _DIGEST_WORDS)


def differing(state: Mapping[str, np.ndarray], world: int) -> list[str]:
    """Names of the tensors of ``state`` some rank holds differently (every
    rank calls this with the same names and gets the same answer)."""
    if not state:
        return []
    mine = digests(state)
    everyone = ops.AllGather()(Tensor(mine)).asnumpy().reshape(world, *mine.shape)
    same = (everyone == everyone[:1]).all(axis=(0, 2))
    return [name for name, ok in zip(sorted(state), same, strict=True) if not ok]
