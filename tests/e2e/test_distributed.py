"""Distributed data parallel on the CPU: torchrun (2 torch processes, gloo)
and msrun (2 MindSpore workers, mccl, plus msrun's scheduler process)."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vdreid.checkpoint import load_checkpoint, model_state
from vdreid.optim import lr_at, param_group
from vdreid.spec import init_state, param_table

from backend_selection import load_backend, requested_backends
from ms_data_parallel import STEPS, WORLD, case, trainer_for

E2E = Path(__file__).parent
REPO = E2E.parents[1]


def test_two_process_torchrun(sysu_root, tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "vdreid",
        "train",
        "--backend",
        "torch",
        "--preset",
        "tiny",
        "--dataset",
        "sysu",
        "--root",
        str(sysu_root),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--seed",
        "3",
        "--set",
        "ids_per_batch=4",
        "--set",
        "instances=2",
        "--set",
        "log_interval=1",
        "--set",
        "input_size=null",  # the preset's 64x32, 4x cheaper than the recipe's 128x64
        "--no-eval",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(log) == 6 and all(math.isfinite(r["total"]) for r in log)  # rank 0 logs only
    assert all(r["processes"] == 2 for r in log)
    ckpt = load_checkpoint(out / "checkpoints" / "last.safetensors")
    assert int(ckpt.tensors["optim/step"]) == 6  # 3 global batches per epoch, split over 2 ranks
    start, trained = init_state(ckpt.spec, 3), model_state(ckpt.tensors)
    assert sum(not np.array_equal(start[k], trained[k]) for k in start) > len(start) // 2


# -- MindSpore through msrun ---------------------------------------------------


@pytest.fixture(scope="module")
def mindspore_backend():
    if "mindspore" not in requested_backends()[0]:
        pytest.skip("the mindspore backend is not among the selected test backends")
    return load_backend("mindspore")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_msrun(args: list[str], log_dir: Path, *, timeout: int) -> None:
    """``msrun`` with 2 local workers running ``python ARGS``; fails with the
    workers' logs when it does not exit cleanly."""
    cmd = [
        sys.executable,
        "-m",
        "mindspore.parallel.cluster.run",  # the `msrun` console script
        "--worker_num=2",
        "--local_worker_num=2",
        f"--master_port={_free_port()}",
        f"--log_dir={log_dir}",
        "--join=True",
        "--cluster_time_out=120",
        "python",  # msrun runs `python ARGS`: this interpreter comes first on PATH
        *args,
    ]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": path}
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # msrun kills its workers (own sessions) on SIGINT
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"msrun did not finish in {timeout} s:\n{out[-3000:]}{_logs(log_dir)}")
    assert proc.returncode == 0, out[-3000:] + _logs(log_dir)


def _logs(log_dir: Path) -> str:
    return "".join(f"\n== {p.name}\n{p.read_text()[-3000:]}" for p in sorted(log_dir.glob("*.log")))


@pytest.mark.slow  # about a minute: msrun start-up and one compile per worker
def test_two_worker_msrun(mindspore_backend, sysu_root, tmp_path):
    out = tmp_path / "run"
    args = ["-m", "vdreid", "train", "--backend", "mindspore", "--preset", "tiny"]
    args += ["--dataset", "sysu", "--root", str(sysu_root), "--out", str(out), "--epochs", "2"]
    args += ["--device", "cpu", "--seed", "3", "--set", "ids_per_batch=4", "--set", "instances=2"]
    args += ["--set", "log_interval=1", "--set", "input_size=null", "--no-eval", "--quiet"]
    run_msrun(args, tmp_path / "logs", timeout=400)

    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(log) == 6 and all(math.isfinite(r["total"]) for r in log)  # rank 0 logs only
    assert all(r["processes"] == 2 for r in log)
    ckpt = load_checkpoint(out / "checkpoints" / "last.safetensors")
    assert int(ckpt.tensors["optim/step"]) == 6  # 3 global batches per epoch, split over 2 ranks
    start, trained = init_state(ckpt.spec, 3), model_state(ckpt.tensors)
    assert all(np.isfinite(v).all() for v in trained.values())
    assert sum(not np.array_equal(start[k], trained[k]) for k in start) > len(start) // 2
    # (the workers' weights agreeing at the end is checked by the trainer's close(): a run
    # whose gradients were not averaged fails there)


@pytest.mark.slow  # about a minute: msrun start-up and one compile per worker
def test_msrun_workers_step_as_one_process_averaging_their_gradients(mindspore_backend, tmp_path):
    """Two workers, each on its own half of a batch (one identity each), end
    where one process gets by averaging the two halves' gradients: Adam's first
    moment is affine in the gradient, so the mean of two one-process steps'
    moments IS the averaged step's, and v and the weights follow from it."""
    run_msrun([str(E2E / "ms_data_parallel.py"), str(tmp_path)], tmp_path / "logs", timeout=300)
    reference, terms, first_steps = _averaged_reference(mindspore_backend, max(STEPS.values()))
    spec = case()[0]
    running = {n for n, info in param_table(spec).items() if info.running}
    shared = [k for k in reference[0] if k not in running]
    for mode, steps in STEPS.items():
        ranks = [dict(np.load(tmp_path / f"{mode}-rank{r}.npz")) for r in range(WORLD)]
        want = reference[steps - 1]
        for k in shared:  # the ranks hold the same weights and moments...
            np.testing.assert_array_equal(ranks[1][k], ranks[0][k], err_msg=f"{mode} {k}")
        # ...but each rank's batch norm saw only its own images
        assert all(not np.array_equal(ranks[0][k], ranks[1][k]) for k in running)
        for k in shared:
            _assert_close(ranks[0][k], want[k], f"{mode} {k}")
        for k in running:  # rank 0's running statistics come from its half alone
            np.testing.assert_allclose(ranks[0][k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)
        logged = json.loads((tmp_path / f"{mode}-rank0.json").read_text())
        for got, mean in zip(logged, terms, strict=False):  # metrics(): the mean over ranks
            assert got == pytest.approx(mean, rel=1e-5)
    # the comparison can fail: each half's own gradient is far from the average
    # (in all but the tensors both halves leave at zero gradient)
    moments = [k for k in shared if k.startswith("optim/m/")]
    for single in first_steps:
        far = [
            np.abs(single[k] - reference[0][k]).max() > 50 * _tolerance(reference[0][k])
            for k in moments
        ]
        assert sum(far) > 0.75 * len(moments)


def _tolerance(want: np.ndarray) -> float:
    """Measured: 2e-6 of the largest value after one step, 1.1e-4 after two
    (float32 differences of the first step, grown by the second)."""
    return 1e-3 * float(np.abs(want).max()) + 1e-9


def _assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    worst = float(np.abs(got.astype(np.float64) - want).max()) if got.size else 0.0
    assert worst <= _tolerance(want), f"{what}: max |2 workers - reference| = {worst:.3g}"


def _averaged_reference(backend, steps: int):
    """The data-parallel run computed in one process: the states after each
    of ``steps`` steps, the mean logged terms, and each rank's own first step.
    Per step: one ordinary step on each rank's half from the same state; their
    mean first moment (= b1 m + (1 - b1) mean(g + wd p)) gives the averaged
    gradient, and v and the weights follow from Adam's formula (vdreid.optim)."""
    spec, start, halves, loss, optim = case()
    trainer = trainer_for(backend, spec, start, loss, optim)
    b1, b2 = optim.betas
    trainable = [n for n, info in param_table(spec).items() if info.trainable and not info.running]
    state, states, terms, first_steps = start, [], [], None
    for _ in range(steps):
        after, logged = [], []
        for r in range(WORLD):
            trainer.load(state)
            trainer.step(halves[r])
            after.append(trainer.state())
            logged.append(trainer.metrics())
        first_steps = first_steps or after
        t = int(state["optim/step"]) + 1
        bc1, bc2 = 1.0 - b1**t, math.sqrt(1.0 - b2**t)
        new = {k: v.astype(np.float64) for k, v in after[0].items()}  # rank 0's running stats
        for n in trainable:
            m_key, v_key = f"optim/m/{n}", f"optim/v/{n}"
            m0 = state[m_key].astype(np.float64)
            m = np.mean([a[m_key].astype(np.float64) for a in after], axis=0)
            g = m0 + (m - m0) / (1.0 - b1)  # the averaged gradient, weight decay included
            v = b2 * state[v_key].astype(np.float64) + (1.0 - b2) * g * g
            lr = lr_at(optim, 0, param_group(n))
            p = state[n].astype(np.float64) - lr / bc1 * m / (np.sqrt(v) / bc2 + optim.eps)
            new.update({n: p, m_key: m, v_key: v})
        new["optim/step"] = np.array(t, np.int64)
        states.append(new)
        terms.append({k: float(np.mean([x[k] for x in logged])) for k in logged[0]})
        state = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in new.items()}
    return states, terms, first_steps
