"""`make bench`: one table of ratios, each measured side by side in this process.

Every row compares two things timed in turns (best of a few) on the same
machine at the same moment, so a loaded machine slows both sides alike;
the ratio is the first over the second, and the goal says which way is
good. Rows (CPU, fp32, ``--threads`` threads per framework, default 1):

- training step, MindSpore / torch: the tiny recipe (128x64, 8 x (2 + 2))
  and the official routing on ResNet-18 at 256x128, batch 8
  (benchmarks/bench_step.py); MindSpore's first step (its graph compile)
  and the process's peak RSS after MindSpore's ResNet-18 steps, which run
  before any torch step (upper bound of MindSpore's own peak);
- torch's tiny step with two threads against one (the thread default);
- the official features at 256x128 and 288x144, batch 8 (what a CPU
  forwards at a time): MindSpore and ONNX Runtime against torch; torch
  against four plain ResNet-50 forwards (the feature's four encoder passes
  per image: paths I, Sg, V, Sx), its FLOPs against theirs and the two
  divided (time per FLOP); torch channels_last, two threads and one forward
  of 32 images against 8 (benchmarks/bench_features.py);
- the evaluator against the per-query loop at SYSU 10-shot size
  (benchmarks/bench_eval.py) and the cached loader against its target
  (benchmarks/bench_loader.py).

    .venv/bin/python benchmarks/bench.py [--threads 1] [--only step,features,eval,loader]

About 7 minutes on an idle 2-core machine; the individual scripts take
options for other sizes. benchmarks/bench_cuda.py (a GPU) and
bench_conv_ms.py (one convolution) stay separate.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


@dataclasses.dataclass
class Row:
    name: str
    compared: str
    value: float
    goal: str
    met: bool
    unit: str = "x"


def at_most(limit: float) -> tuple[str, object]:
    return f"<= {limit:g}", lambda v: v <= limit


def at_least(limit: float) -> tuple[str, object]:
    return f">= {limit:g}", lambda v: v >= limit


#: a row measured for the record, with no goal to meet
REPORTED = ("(reported)", lambda v: True)


def row(name: str, compared: str, value: float, goal: tuple[str, object], unit: str = "x") -> Row:
    text, check = goal
    return Row(name, compared, value, text, bool(check(value)), unit)  # type: ignore[operator]


def step_rows(threads: int) -> list[Row]:
    from bench_step import CASES, make_batch, step_times, trainer_for

    rows = []
    for case, steps in (("r18", 2), ("tiny", 3)):  # r18 first: the RSS row is MindSpore's
        make_spec, size = CASES[case]
        spec = make_spec()
        batch = make_batch(spec, size)
        best = step_times(["mindspore", "torch"], spec, batch, steps)
        label = f"train step {case} ({spec.input.height}x{spec.input.width}, b{size})"
        rows.append(row(label, "mindspore / torch", best["mindspore"] / best["torch"], at_most(2)))
        rows.append(
            row(
                f"  {case}: MindSpore first step (compile)",
                "seconds",
                best["mindspore first step"],
                REPORTED,
                "s",
            )
        )
        if case == "r18":
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            rows.append(row("  peak RSS after MindSpore r18", "GiB", peak, at_most(4), " GiB"))
    if threads == 1:
        import torch

        spec = CASES["tiny"][0]()
        batch = make_batch(spec, CASES["tiny"][1])
        trainer = trainer_for("torch", spec)
        trainer.step(batch)
        times: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(4):
            for n in (2, 1):
                torch.set_num_threads(n)
                start = time.perf_counter()
                trainer.step(batch)
                trainer.metrics()
                times[n].append(time.perf_counter() - start)
        torch.set_num_threads(1)
        rows.append(
            row(
                "torch tiny step, thread count",
                "2 threads / 1 thread",
                min(times[2]) / min(times[1]),
                REPORTED,
            )
        )
    return rows


def feature_rows() -> list[Row]:
    from bench_features import (
        best_times,
        decode_rate,
        feature_timers,
        flop_ratio,
        per_image_cost,
        thread_ratio,
    )

    rows = []
    for size in ((256, 128), (288, 144)):
        name = f"features {size[0]}x{size[1]} b8"
        first = size == (256, 128)
        timers = feature_timers(size, 8, channels_last=first)
        # torch and the plain ResNet-50 alternate on their own: in the rotation with
        # MindSpore and ONNX Runtime, torch (next after ONNX Runtime) measured 1.40x four
        # plain forwards at 288x144, against 1.23-1.29x alone (2026-11-30)
        pair = best_times({k: timers[k] for k in ("torch", "plain ResNet-50 torch")}, repeat=3)
        best = best_times(timers, repeat=2)
        torch_s = best["torch"]
        plain = pair["plain ResNet-50 torch"]
        # the official feature runs four encoder passes per image (paths I, Sg, V, Sx),
        # each with channel attention before layers 2-4: more arithmetic than four plain ones
        time_ratio, flops = pair["torch"] / (4 * plain), flop_ratio(size)
        rows += [
            row(name, "torch / 4 plain ResNet-50s", time_ratio, REPORTED),
            row("  its arithmetic", "FLOPs / 4 plain ResNet-50s", flops, REPORTED),
            row("  its time per FLOP", "torch / plain ResNet-50", time_ratio / flops, at_most(1.1)),
        ]
        others = [("mindspore", at_most(2.0)), ("onnxruntime", at_most(1.0))]
        if first:
            others.append(("torch channels_last", REPORTED))
        for other, goal in others:
            if other in best:
                rows.append(row(f"  {name}", f"{other} / torch", best[other] / torch_s, goal))
            else:
                rows.append(Row(f"  {name}", f"{other}: not installed", float("nan"), "-", False))
    if (os.cpu_count() or 1) >= 2:
        rows.append(
            row(
                "features 256x128 b8, torch threads",
                "2 threads / 1 thread",
                thread_ratio((256, 128), 8, repeat=2),
                REPORTED,
            )
        )
    cost = per_image_cost((256, 128), (8, 32), repeat=1)
    rows.append(
        row(
            "features 256x128, torch, per image",
            "one forward of 32 / of 8",
            cost[32] / cost[8],
            REPORTED,
        )
    )
    rows.append(row("cache decode + resize", "images/s", decode_rate(), REPORTED, "/s"))
    return rows


def eval_rows() -> list[Row]:
    import bench_eval

    ratio = bench_eval.run_case(*bench_eval.CASES[0], trials=2, quiet=True)
    return [row("evaluator SYSU 10-shot", "per-query loop / vectorised", ratio, at_least(10))]


def loader_rows() -> list[Row]:
    import bench_loader

    _, rate, _ = bench_loader.loader_rate(seconds=2.0)
    return [
        row(
            "loader cached 256x128 b128",
            f"images/s / {bench_loader.TARGET:,.0f}",
            rate / bench_loader.TARGET,
            at_least(1),
        )
    ]


PARTS = {"step": step_rows, "features": feature_rows, "eval": eval_rows, "loader": loader_rows}


def print_table(rows: list[Row], threads: int, seconds: float) -> None:
    load = os.getloadavg()[0]
    print(
        f"\nvdreid benchmarks: {platform.machine()}, {os.cpu_count()} cores, {threads} thread(s) "
        f"per framework, load {load:.1f} at the end, {seconds / 60:.1f} min"
    )
    print(f"{'row':38s} {'compared':28s} {'value':>8s} {'goal':>7s}  met")
    for r in rows:
        value = f"{r.value:.2f}{r.unit}" if r.unit != "/s" else f"{r.value:,.0f}/s"
        met = "yes" if r.met else "NO"
        print(f"{r.name[:38]:38s} {r.compared[:28]:28s} {value:>8s} {r.goal:>7s}  {met}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for the frameworks")
    ap.add_argument("--only", default=",".join(PARTS), help="comma-separated: " + ", ".join(PARTS))
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows: list[Row] = []
    for part in args.only.split(","):
        rows += PARTS[part](args.threads) if part == "step" else PARTS[part]()
        print(f"[{part} done, {time.perf_counter() - start:.0f} s]", flush=True)
    print_table(rows, args.threads, time.perf_counter() - start)


if __name__ == "__main__":
    main()
