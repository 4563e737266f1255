"""Which launcher started this process, and its place in the run.

A distributed run is one process per device, started by the backend's
launcher, which tells each process who it is through environment variables:

- torchrun (torch): ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``.
- msrun (MindSpore 2.x): ``MS_ROLE`` (``MS_WORKER``, or ``MS_SCHED`` for the
  one extra process that coordinates the workers), ``MS_WORKER_NUM``,
  ``RANK_ID``, ``RANK_SIZE``, ``DEVICE_ID`` (the local index). msrun runs the
  whole command in its scheduler too, with ``RANK_ID=0``: that process must
  join the cluster as scheduler and never train, or it would take rank 0's
  place. Across several nodes without ``--node_rank`` msrun gives no
  ``RANK_ID`` before the workers have met; the rank is then known only after
  the backend has joined (:func:`start`).

Read here once for every command; nothing here imports a framework.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from vdreid.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from vdreid.backend import Backend

TORCHRUN, MSRUN = "torchrun", "msrun"
MS_WORKER, MS_SCHED = "MS_WORKER", "MS_SCHED"
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
_MSRUN_VARS = ("MS_ROLE", "MS_WORKER_NUM")

#: what to run instead, per launcher (error messages)
USAGE = {
    TORCHRUN: "torchrun --nproc_per_node N -m vdreid train --backend torch ...",
    MSRUN: "msrun --worker_num N --local_worker_num N --join True python -m vdreid train --backend mindspore ...",
}


@dataclasses.dataclass(frozen=True)
class Launch:
    """This process's place in a run. ``launcher`` None: a single process.

    ``rank`` is None only before an msrun worker whose rank msrun assigns at
    start-up has joined. ``scheduler``: msrun's coordinating process, which
    runs the command but never trains.
    """

    launcher: str | None = None
    rank: int | None = 0
    world: int = 1
    local_rank: int = 0
    scheduler: bool = False
    #: the device this process runs on (set by :func:`start`; None: the backend's default)
    device: str | None = None

    def device_for(self, requested: str | None, devices: Sequence[str]) -> str | None:
        """This process's device: one process per device, so in a multi-process
        run an accelerator named without an index (``cuda``, ``GPU``, ``Ascend``),
        or none named where the backend sees one (``devices``, as in
        BackendInfo), becomes that accelerator's device number ``local_rank``."""
        if self.world == 1 or self.scheduler or (requested is not None and ":" in requested):
            return requested
        if requested is None:
            accelerators = [d for d in devices if d.split(":")[0].lower() != "cpu"]
            if not accelerators:
                return None
            requested = accelerators[0].split(":")[0]
        if requested.strip().lower() == "cpu":
            return requested
        return f"{requested.strip()}:{self.local_rank}"

    @property
    def lead(self) -> bool:
        """The one process that writes the run folder and prints results."""
        return self.rank == 0 and not self.scheduler

    def describe(self) -> str:
        if self.launcher is None:
            return "a single process"
        role = "scheduler" if self.scheduler else f"rank {self.rank}"
        return f"{self.launcher} ({role} of {self.world} workers)"


def discover(env: Mapping[str, str] | None = None) -> Launch:
    """The launch described by ``env`` (default: this process's environment)."""
    env = os.environ if env is None else env
    torch_like = [k for k in _TORCHRUN_VARS if k in env]
    ms_like = [k for k in _MSRUN_VARS if k in env]
    if torch_like and ms_like:
        raise ConfigError(
            f"this process has both torchrun's ({', '.join(torch_like)}) and msrun's "
            f"({', '.join(ms_like)}) environment variables; a run has one launcher: unset the "
            "other launcher's variables, or start the run from a clean shell"
        )
    if ms_like:
        return _msrun(env)
    if torch_like:
        return _torchrun(env)
    return Launch()


def _torchrun(env: Mapping[str, str]) -> Launch:
    world = _int(env, "WORLD_SIZE", "1", least=1)
    rank = _int(env, "RANK", "0", least=0)
    local = _int(env, "LOCAL_RANK", str(rank), least=0)
    _check_rank(rank, world, "RANK", "WORLD_SIZE")
    return Launch(TORCHRUN if world > 1 else None, rank, world, local)


def _msrun(env: Mapping[str, str]) -> Launch:
    role = env.get("MS_ROLE", "")
    if role not in (MS_WORKER, MS_SCHED):
        raise ConfigError(
            f"MS_ROLE={role!r}: vdreid runs as msrun's {MS_WORKER} or {MS_SCHED} only "
            "(no parameter-server roles); start the run with msrun"
        )
    world = _int(env, "MS_WORKER_NUM", None, least=1)
    if "RANK_SIZE" in env and _int(env, "RANK_SIZE", None, least=1) != world:
        raise ConfigError(
            f"RANK_SIZE={env['RANK_SIZE']} differs from MS_WORKER_NUM={world}; both come from "
            "msrun's --worker_num: do not set RANK_SIZE yourself"
        )
    local = _int(env, "DEVICE_ID", "0", least=0)
    if role == MS_SCHED:
        return Launch(MSRUN, None, world, 0, scheduler=True)
    rank = _int(env, "RANK_ID", None, least=0) if "RANK_ID" in env else None
    if rank is not None:
        _check_rank(rank, world, "RANK_ID", "MS_WORKER_NUM")
    return Launch(MSRUN, rank, world, local)


def _int(env: Mapping[str, str], key: str, default: str | None, *, least: int) -> int:
    raw = env.get(key, default)
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = least - 1
    if value < least:
        raise ConfigError(
            f"environment variable {key}={raw!r} is not an integer >= {least}; it is set by the "
            "launcher (torchrun or msrun): start the run with the launcher rather than by hand"
        )
    return value


def _check_rank(rank: int, world: int, rank_key: str, world_key: str) -> None:
    if rank >= world:
        raise ConfigError(
            f"{rank_key}={rank} is outside 0..{world - 1} ({world_key}={world}); "
            "the launcher sets both: start the run with the launcher rather than by hand"
        )


def check_backend(launch: Launch, backend: str, launcher: str | None) -> None:
    """ConfigError when ``launch`` came from another launcher than the one
    ``backend`` trains under (``launcher``; None: the backend names none)."""
    if launch.launcher is None or launcher is None or launch.launcher == launcher:
        return
    raise ConfigError(
        f"this process was started by {launch.describe()}, but the {backend} backend trains "
        f"under {launcher}: start it with `{USAGE.get(launcher, launcher)}`, or pick the "
        f"backend {launch.launcher} is for"
    )


def start(
    backend_name: str,
    *,
    device: str | None = None,
    backend: Backend | None = None,
    env: Mapping[str, str] | None = None,
) -> Launch:
    """This process's launch, checked against the backend, after joining the
    backend's process group where the backend joins before anything is built
    (``init_distributed``: MindSpore under msrun). ``device`` is the run's
    device; the launch's own (``Launch.device``) is this process's one of them.

    In msrun's scheduler the backend serves the workers until they finish
    (MindSpore ends the process there); a returned launch with
    ``scheduler=True`` must not train.
    """
    launch = discover(env)
    if launch.launcher is None:
        return launch
    if backend is None:
        from vdreid import registry

        backend = registry.get(backend_name)
    check_backend(launch, backend_name, backend.launcher)
    device = launch.device_for(device, backend.info().devices)
    launch = dataclasses.replace(launch, device=device)
    joined = backend.init_distributed(device)
    if joined is None:  # the trainer joins (torch: DistributedDataParallel)
        if launch.rank is None and not launch.scheduler:
            raise ConfigError(
                f"{launch.launcher} gave this process no rank and the {backend_name} backend "
                "cannot ask its process group for one; pass the launcher's node rank "
                "(msrun --node_rank)"
            )
        return launch
    rank, world = joined
    if launch.scheduler:
        return launch
    if world != launch.world or launch.rank not in (None, rank):
        raise ConfigError(
            f"the {backend_name} backend joined as rank {rank} of {world}, but the launcher's "
            f"environment says {launch.describe()}; restart the run with the launcher"
        )
    return dataclasses.replace(launch, rank=rank)
