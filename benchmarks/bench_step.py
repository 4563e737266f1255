"""Training step time (forward + backward + Adam, all four paths) per backend.

Two models, each timed on every requested backend in this one process, the
backends taking turns step by step, so the numbers compare side by side:
- ``tiny``: the tiny recipe as it trains, batch 32 (8 x (2 + 2)) at 128x64;
- ``r18``: the official routing (CAM before layers 2-4, last stride 1,
  BNNeck, heads) on a ResNet-18 backbone, 256x128, batch 8, 395 classes.
Loss: the official objective. Same initial weights (init_state) and the
same uint8 batch for every backend; fp32 on the CPU.

    .venv/bin/python benchmarks/bench_step.py [--backend torch|mindspore|all] [--steps 3] [--threads 1]

Prints ms per step and images/s per backend, and each backend's time as
a ratio of the first one's. ``--threads`` (OMP_NUM_THREADS, default 1)
is set before any framework loads: on a machine shared with other work,
two spinning OpenMP threads on two cores can make small models 100x
slower, which would measure the neighbours rather than the backend.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from vdreid import registry
from vdreid.errors import first_line
from vdreid.presets import recipe
from vdreid.spec import (
    InputSpec,
    ModelSpec,
    feature_recipe,
    grey,
    init_state,
    mvd_branch,
    mvd_paths,
    resnet,
)
from vdreid.trainer import TrainerOptions

SYSU_CLASSES = 395


def official_r18(num_classes: int = SYSU_CLASSES) -> ModelSpec:
    """The official preset's structure with a ResNet-18 trunk (512-d feat)."""
    branches = tuple(
        mvd_branch(
            name,
            resnet(18, last_stride=1, cam_positions=(2, 3, 4)),
            num_classes,
            neck_shift_trainable=False,
            head_hidden=(1000, 500),
            z_width=512,
            z_hidden=256,
            z_dropout=0.5,
        )
        for name in ("V", "I", "S")
    )
    return ModelSpec(
        preset="official-r18",
        num_classes=num_classes,
        input=InputSpec(height=256, width=128),
        grey=grey("official"),
        branches=branches,
        paths=mvd_paths(),
        test_feature=feature_recipe("official"),
    )


CASES = {
    # the tiny recipe as it trains: 128x64, P = 8 identities x (2 + 2) images
    "tiny": (lambda: recipe("tiny").model_spec(8, input_size=(128, 64)), 32),
    "r18": (official_r18, 8),
}


def make_batch(spec: ModelSpec, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Half the identities' images visible, half infrared, two per identity and modality."""
    rng = np.random.default_rng(seed)
    ids = size // 4
    return {
        "images": rng.integers(
            0, 256, (size, spec.input.height, spec.input.width, 3), dtype=np.uint8
        ),
        "labels": np.repeat(np.arange(ids, dtype=np.int64), 4),
        "modality": np.tile(np.array([0, 0, 1, 1], dtype=np.int64), ids),
    }


def trainer_for(name: str, spec: ModelSpec):
    """A CPU fp32 trainer of ``spec`` on backend ``name``, the official loss, seeded weights."""
    backend = registry.get(name)
    model = backend.build(spec, device="cpu")
    backend.set_state(model, init_state(spec, 0))
    return backend.trainer(
        model, recipe("official").loss, recipe("official").optim, TrainerOptions(amp=False, seed=0)
    )


def step_times(
    names: list[str], spec: ModelSpec, batch: dict[str, np.ndarray], steps: int
) -> dict[str, float]:
    """Best seconds per training step of each backend: every trainer is built
    and warmed up (compiled) first, then they take turns, one step each, so
    a loaded machine slows every side alike. ``compile_s`` per backend: its
    first step (MindSpore's graph compile)."""
    trainers, compile_s = {}, {}
    for n in names:
        trainers[n] = trainer_for(n, spec)
        start = time.perf_counter()
        trainers[n].step(batch)
        trainers[n].metrics()
        compile_s[n] = time.perf_counter() - start
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(steps):
        for n, trainer in trainers.items():
            start = time.perf_counter()
            trainer.step(batch)
            trainer.metrics()  # the step's only synchronisation
            times[n].append(time.perf_counter() - start)
    return {n: min(t) for n, t in times.items()} | {
        f"{n} first step": s for n, s in compile_s.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--backend", default="all", help="torch, mindspore or all (every registered one)"
    )
    ap.add_argument(
        "--steps", type=int, default=3, help="timed steps per model and backend (best of)"
    )
    ap.add_argument("--models", default="tiny,r18", help="comma-separated: " + ", ".join(CASES))
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for the frameworks")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    names = sorted(registry.registered()) if args.backend == "all" else [args.backend]
    usable = []
    for n in names:
        info, status = registry.probe(n)
        if info is None:
            print(f"skipping {n}: {status}")
        else:
            usable.append(n)
    failed: list[str] = []
    for model_name in args.models.split(","):
        make_spec, size = CASES[model_name]
        spec = make_spec()
        batch = make_batch(spec, size)
        h, w = spec.input.height, spec.input.width
        print(
            f"== {model_name}: batch {size} at {h}x{w}, 4 paths, official loss, "
            f"CPU fp32, {args.threads} thread(s)"
        )
        try:
            best = step_times(usable, spec, batch, args.steps)
        except Exception as exc:  # report and go on: the other models still compare
            failed.append(model_name)
            print(f"  FAILED: {type(exc).__name__}: {first_line(exc)}")
            continue
        first = best[usable[0]]
        for n in usable:
            seconds = best[n]
            print(
                f"  {n:10s} {seconds * 1e3:9.1f} ms/step  {size / seconds:8.1f} images/s  "
                f"x{seconds / first:.2f} of the first  (first step {best[n + ' first step']:.1f} s)"
            )
    if failed:
        raise SystemExit(f"the step failed on: {', '.join(failed)}")


if __name__ == "__main__":
    main()
