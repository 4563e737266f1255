"""Launcher discovery (vdreid.workflows.launch): torchrun's and msrun's
environments as they really are (msrun's captured from MindSpore 2.10's
msrun on this machine), their errors, and joining a backend's group."""

from __future__ import annotations

import types

import pytest

from vdreid.errors import ConfigError
from vdreid.workflows.launch import MSRUN, TORCHRUN, Launch, check_backend, discover, start

TORCHRUN_RANK1 = {
    "RANK": "1",
    "WORLD_SIZE": "2",
    "LOCAL_RANK": "1",
    "LOCAL_WORLD_SIZE": "2",
    "MASTER_ADDR": "127.0.0.1",
    "MASTER_PORT": "29500",
    "TORCHELASTIC_RUN_ID": "none",
}
MSRUN_SCHED = {
    "MS_ROLE": "MS_SCHED",
    "MS_SCHED_HOST": "127.0.0.1",
    "MS_SCHED_PORT": "8129",
    "MS_TOPO_TIMEOUT": "600",
    "MS_WORKER_NUM": "2",
    "RANK_ID": "0",
    "RANK_SIZE": "2",
}
MSRUN_RANK1 = {
    **MSRUN_SCHED,
    "MS_ROLE": "MS_WORKER",
    "MS_NODE_ID": "1",
    "DEVICE_ID": "1",
    "RANK_ID": "1",
}


def test_no_launcher_is_one_process():
    assert discover({"PATH": "/bin"}) == Launch(None, 0, 1, 0)
    assert discover({}).lead


def test_torchrun_worker():
    launch = discover(TORCHRUN_RANK1)
    assert launch == Launch(TORCHRUN, 1, 2, 1)
    assert not launch.lead and not launch.scheduler


def test_torchrun_with_one_process_is_not_distributed():
    assert discover({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}) == Launch(None, 0, 1, 0)


def test_msrun_worker():
    launch = discover(MSRUN_RANK1)
    assert launch == Launch(MSRUN, 1, 2, 1)
    assert discover({**MSRUN_RANK1, "RANK_ID": "0", "DEVICE_ID": "0"}).lead


def test_msrun_scheduler_has_rank_id_0_but_is_not_rank_0():
    launch = discover(MSRUN_SCHED)
    assert launch.scheduler and launch.launcher == MSRUN and launch.world == 2
    assert launch.rank is None and not launch.lead


def test_msrun_across_nodes_without_node_rank_leaves_the_rank_to_the_backend():
    env = {k: v for k, v in MSRUN_RANK1.items() if k not in ("RANK_ID", "MS_NODE_ID")}
    assert discover(env) == Launch(MSRUN, None, 2, 1)


@pytest.mark.parametrize(
    ("env", "match"),
    [
        (
            {**TORCHRUN_RANK1, "MS_ROLE": "MS_WORKER"},
            "both torchrun's .*RANK.* and msrun's .*MS_ROLE",
        ),
        ({"RANK": "two", "WORLD_SIZE": "2"}, "RANK='two' is not an integer >= 0"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, r"RANK=2 is outside 0..1 \(WORLD_SIZE=2\)"),
        ({"RANK": "0", "WORLD_SIZE": "0"}, "WORLD_SIZE='0' is not an integer >= 1"),
        ({**MSRUN_RANK1, "RANK_ID": "5"}, r"RANK_ID=5 is outside 0..1 \(MS_WORKER_NUM=2\)"),
        ({**MSRUN_RANK1, "RANK_SIZE": "4"}, "RANK_SIZE=4 differs from MS_WORKER_NUM=2"),
        ({**MSRUN_RANK1, "MS_ROLE": "MS_PSERVER"}, "MS_ROLE='MS_PSERVER'"),
        ({k: v for k, v in MSRUN_RANK1.items() if k != "MS_WORKER_NUM"}, "MS_WORKER_NUM=None"),
    ],
)
def test_malformed_environments_are_config_errors(env, match):
    with pytest.raises(ConfigError, match=match):
        discover(env)


def test_a_launcher_other_than_the_backends_is_refused_with_the_command_to_use():
    with pytest.raises(ConfigError) as err:
        check_backend(discover(MSRUN_RANK1), "torch", TORCHRUN)
    message = str(err.value)
    assert "started by msrun (rank 1 of 2 workers)" in message
    assert "torch backend trains under torchrun" in message
    assert "torchrun --nproc_per_node N -m vdreid train --backend torch" in message
    with pytest.raises(ConfigError, match="msrun --worker_num N"):
        check_backend(discover(TORCHRUN_RANK1), "mindspore", MSRUN)
    check_backend(discover(MSRUN_RANK1), "mindspore", MSRUN)
    check_backend(discover(MSRUN_RANK1), "plugin", None)  # a backend that names no launcher
    check_backend(discover({}), "torch", TORCHRUN)


class FakeBackend:
    """The members of vdreid.backend.Backend that start() uses. Records the
    join; ``joined`` is what the framework reports (None: the trainer joins)."""

    def __init__(self, launcher: str, joined: tuple[int, int] | None):
        self.launcher = launcher
        self.joined = joined
        self.calls: list[str | None] = []

    def info(self):
        return types.SimpleNamespace(devices=("cpu",))

    def init_distributed(self, device=None):
        if self.joined is not None:
            self.calls.append(device)
        return self.joined


def test_start_joins_the_backends_group_once_on_the_run_device():
    backend = FakeBackend(MSRUN, (1, 2))
    launch = start("mindspore", device="cpu", backend=backend, env=MSRUN_RANK1)
    assert launch == Launch(MSRUN, 1, 2, 1, device="cpu") and backend.calls == ["cpu"]


def test_start_takes_the_rank_msrun_assigns_at_start_up():
    env = {k: v for k, v in MSRUN_RANK1.items() if k != "RANK_ID"}
    assert start("mindspore", backend=FakeBackend(MSRUN, (1, 2)), env=env).rank == 1


def test_start_refuses_a_group_that_disagrees_with_the_environment():
    with pytest.raises(ConfigError, match="joined as rank 0 of 2, but .* says msrun \\(rank 1"):
        start("mindspore", backend=FakeBackend(MSRUN, (0, 2)), env=MSRUN_RANK1)


def test_start_in_msrun_scheduler_joins_and_says_do_not_train():
    backend = FakeBackend(MSRUN, (0, 2))
    launch = start("mindspore", backend=backend, env=MSRUN_SCHED)
    assert launch.scheduler and not launch.lead and backend.calls == [None]


def test_start_leaves_joining_to_a_trainer_that_joins_itself():
    backend = FakeBackend(TORCHRUN, None)  # torch: DistributedDataParallel joins in the trainer
    assert start("torch", backend=backend, env=TORCHRUN_RANK1) == Launch(TORCHRUN, 1, 2, 1)


def test_start_of_a_single_process_loads_no_backend():
    # an unknown backend name would fail to load: nothing is loaded
    assert start("no-such-backend", env={}) == Launch()


def test_start_checks_the_launcher_before_joining():
    backend = FakeBackend(TORCHRUN, (1, 2))
    with pytest.raises(ConfigError, match="trains under torchrun"):
        start("torch", backend=backend, env=MSRUN_RANK1)
    assert backend.calls == []


def test_start_needs_a_rank_when_the_backend_cannot_ask_its_group():
    env = {k: v for k, v in MSRUN_RANK1.items() if k != "RANK_ID"}
    with pytest.raises(ConfigError, match=r"no rank .*\(msrun --node_rank\)"):
        start("plugin", backend=FakeBackend(MSRUN, None), env=env)


@pytest.mark.parametrize(
    ("requested", "devices", "want"),
    [
        ("cuda", ("cpu", "cuda:0", "cuda:1"), "cuda:1"),  # no index: the local rank's
        ("GPU", ("CPU", "GPU:0", "GPU:1"), "GPU:1"),
        (None, ("cpu", "cuda:0", "cuda:1"), "cuda:1"),  # the backend's accelerator
        (None, ("CPU", "Ascend:0", "Ascend:1"), "Ascend:1"),
        (None, ("cpu",), None),  # no accelerator: the backend's default, the CPU
        ("cpu", ("cpu", "cuda:0"), "cpu"),  # processes share the CPU
        ("cuda:0", ("cpu", "cuda:0", "cuda:1"), "cuda:0"),  # an explicit device is kept
    ],
)
def test_each_process_of_a_multi_process_run_gets_its_own_device(requested, devices, want):
    assert discover(TORCHRUN_RANK1).device_for(requested, devices) == want
    assert Launch().device_for(requested, devices) == requested  # one process: as asked


def test_start_gives_the_process_its_device_before_joining():
    backend = FakeBackend(MSRUN, (1, 2))
    backend.info = lambda: types.SimpleNamespace(devices=("CPU", "GPU:0", "GPU:1"))
    launch = start("mindspore", backend=backend, env=MSRUN_RANK1)
    assert launch.device == "GPU:1" and backend.calls == ["GPU:1"]
