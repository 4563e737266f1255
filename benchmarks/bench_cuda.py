"""CUDA checks of the torch backend: parity with the CPU, bf16 autocast, speed.

Needs a machine with an NVIDIA GPU (torch with CUDA); `make bench` skips it
elsewhere. One process, so the speeds compare side by side:

    python benchmarks/bench_cuda.py --all --json cuda.json     # the one-shot run
    python benchmarks/bench_cuda.py [--steps 20] [--json results.json] [--e2e DIR]

1. parity (TF32 off): the tiny preset's forward on CUDA against the numpy
   oracle (eval and train mode, largest absolute difference), and one fp32
   training step on CUDA against the same step on the CPU (parameters and
   running statistics after it, largest difference relative to each
   tensor's largest value).
2. autocast: the official preset's loss terms of one step under bf16
   autocast against fp32 on the same weights and batch (relative), finite.
3. speed: the official preset (ResNet-50, 395 classes) on SYSU's batch,
   P = 16 identities x (4 visible + 4 infrared) = 128 images at 256x128:
   training images/s in fp32 (TF32 allowed, as training runs), bf16
   autocast, and with ``--compile`` bf16 autocast + torch.compile (its
   compilation took over four minutes on an H200); feature extraction
   images/s (eval mode, batch 256). Medians over ``--steps`` timed steps
   after warm-up; the only synchronisations are the ones the timer needs.

Measured on one NVIDIA H200 (torch 2.11+cu130, 2026-11-27): forward against
the oracle 1.3e-5 (eval) / 2.2e-5 (train) abs; one fp32 step CUDA vs CPU
1.7e-6 rel; bf16 vs fp32 loss terms: total 4.3e-4 rel (cml 4.2e-3), all
finite; training 378 images/s fp32, 444 images/s bf16 (1.18x).
4. profile (``--profile``, on by default in ``--all``): torch.profiler over
   a few bf16 steps of the official preset: device-kernel time against the
   wall time (the gaps the GPU waits for the host), the top operators by
   device time (the loss terms, batch norm, the optimiser), host-device
   synchronisations counted two ways (torch.cuda's sync debug mode during
   the steps, and cudaStreamSynchronize / DtoH copies in the trace), and
   the step's FLOPs (torch.utils.flop_counter) for model FLOP utilisation.
5. batch size (``--batches``): images/s, step time and peak memory at
   batch 128 and doubling until the device runs out of memory.
6. ceiling (``--ceiling``): a plain ResNet-50 (last stride 1) forward +
   backward + fused Adam at 256x128, bf16 + channels_last, the same batch:
   MVD runs four encoder passes per image, so a quarter of its images/s is
   the practical ceiling of the official preset.
7. end to end (``--e2e DIR``): `vdreid train --device cuda --preset tiny` on
   a synthetic SYSU tree in DIR, with its final evaluation.

``--all`` runs 1-6 in one go (about 8 minutes on an H200 with ``--compile``:
the compile dominates) and writes everything to ``--json``. Compile time is
reported apart from the step time; torch.compile's caches (FX graph and
AOT autograd, on by default) live in TORCHINDUCTOR_CACHE_DIR, so set it to
a persistent folder to time a cached second run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vdreid.presets import recipe
from vdreid.reference import reference_forward
from vdreid.spec import init_state, preprocess
from vdreid.trainer import TrainerOptions
from vdreid.workflows.parity import perturbed_state, warm_optimizer_state

SYSU_CLASSES = 395
#: where the checks run; ``--device cpu`` dry-runs the script's logic on a CPU
DEVICE = "cuda"
#: the preset and identities per batch (x 8 images) of items 4-6; ``--preset
#: tiny --ids 2`` dry-runs them on a CPU in a minute
PRESET, IDS = "official", 16


def sysu_batch(spec, ids: int, k: int, seed: int = 0) -> dict[str, np.ndarray]:
    """ids x (k visible + k infrared) random uint8 images, SYSU's batch layout."""
    rng = np.random.default_rng(seed)
    n = ids * 2 * k
    return {
        "images": rng.integers(0, 256, (n, spec.input.height, spec.input.width, 3), dtype=np.uint8),
        "labels": np.repeat(np.arange(ids, dtype=np.int64), 2 * k),
        "modality": np.tile(np.repeat(np.array([0, 1], dtype=np.int64), k), ids),
    }


def largest_abs(got: dict, want: dict) -> float:
    return max(float(np.max(np.abs(np.asarray(got[k]) - want[k]))) for k in want)


def largest_rel(got: dict, want: dict) -> float:
    return max(
        float(np.max(np.abs(got[k].astype(np.float64) - want[k])))
        / max(float(np.max(np.abs(want[k]))), 1e-6)
        for k in want
        if want[k].size and np.issubdtype(want[k].dtype, np.floating)
    )


def parity(backend, torch) -> dict[str, object]:
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    spec = recipe("tiny").model_spec(8)
    state = perturbed_state(spec)  # no zero tensor whose "relative" change is pure noise
    batch = sysu_batch(spec, ids=4, k=2)
    images = preprocess(spec, batch["images"])
    out: dict[str, object] = {}
    for train in (False, True):
        model = backend.build(spec, device=DEVICE)
        backend.set_state(model, state)
        want = reference_forward(spec, state, images, train=train)
        got = backend.forward(model, images, train=train)
        out[f"forward_{'train' if train else 'eval'}_vs_oracle_abs"] = largest_abs(got, want)
    stepped = {}
    for device in ("cpu", DEVICE):
        model = backend.build(spec, device=device)
        backend.set_state(model, state)
        trainer = backend.trainer(
            model,
            recipe("official").loss,
            recipe("tiny").optim,
            TrainerOptions(amp=False, dropout=False),
        )
        # a warm Adam state: a fresh one moves noise-level gradients by +-lr (vdreid.workflows.parity)
        trainer.load({**state, **warm_optimizer_state(spec)})
        trainer.step(batch)
        stepped[device] = {k: v for k, v in trainer.state().items() if not k.startswith("optim/")}
    worst = max(
        (largest_rel({k: stepped[DEVICE][k]}, {k: stepped["cpu"][k]}), k)
        for k in stepped["cpu"]
        if np.issubdtype(stepped["cpu"][k].dtype, np.floating)
    )
    out["step_cuda_vs_cpu_rel"], out["step_worst_tensor"] = worst
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    return out


def autocast_terms(backend) -> dict[str, float]:
    spec = recipe("official").model_spec(SYSU_CLASSES)
    state = init_state(spec, 0)
    batch = sysu_batch(spec, ids=8, k=4)
    terms = {}
    for amp in (False, True):
        model = backend.build(spec, device=DEVICE)
        backend.set_state(model, state)
        trainer = backend.trainer(
            model,
            recipe("official").loss,
            recipe("official").optim,
            TrainerOptions(amp=amp, dropout=False),
        )
        trainer.step(batch)
        terms[amp] = trainer.metrics()
    out = {
        f"{k}_bf16_vs_fp32_rel": abs(terms[True][k] - terms[False][k])
        / max(abs(terms[False][k]), 1e-6)
        for k in terms[False]
    }
    out["all_finite"] = float(all(np.isfinite(v) for t in terms.values() for v in t.values()))
    return out


def train_speed(backend, torch, steps: int, **options) -> float:
    """Median images/s of training steps (official preset, SYSU batch of 128)."""
    spec = recipe("official").model_spec(SYSU_CLASSES)
    model = backend.build(spec, device=DEVICE)
    backend.set_state(model, init_state(spec, 0))
    trainer = backend.trainer(
        model, recipe("official").loss, recipe("official").optim, TrainerOptions(seed=0, **options)
    )
    batch = sysu_batch(spec, ids=16, k=4)
    return len(batch["images"]) / median_step(torch, trainer, batch, warmup=3, steps=steps)


def median_step(torch, trainer, batch, *, warmup: int, steps: int) -> float:
    """Median seconds of ``steps`` synchronised training steps after ``warmup``
    (cudnn autotuning, compilation)."""
    for _ in range(warmup):
        trainer.step(batch)
    trainer.metrics()
    times = []
    for _ in range(steps):
        _sync(torch)
        start = time.perf_counter()
        trainer.step(batch)
        _sync(torch)
        times.append(time.perf_counter() - start)
    trainer.metrics()
    return statistics.median(times)


def _sync(torch) -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def feature_speed(backend, torch, steps: int) -> float:
    spec = recipe("official").model_spec(SYSU_CLASSES)
    model = backend.build(spec, device=DEVICE)
    backend.set_state(model, init_state(spec, 0))
    images = sysu_batch(spec, ids=32, k=4)["images"]  # 256 images
    backend.features(model, images, batch_size=256)
    times = []
    for _ in range(max(steps // 4, 3)):
        start = time.perf_counter()
        backend.features(model, images, batch_size=256)  # returns numpy: synchronised
        times.append(time.perf_counter() - start)
    return len(images) / statistics.median(times)


#: dense bf16 / fp32 (TF32) peak FLOP/s of the GPUs this script has met
PEAK_FLOPS = {"H100": (989e12, 494e12), "H200": (989e12, 494e12), "A100": (312e12, 156e12)}


def official_trainer(backend, ids: int, **options):
    spec = recipe(PRESET).model_spec(SYSU_CLASSES)
    model = backend.build(spec, device=DEVICE)
    backend.set_state(model, init_state(spec, 0))
    trainer = backend.trainer(
        model, recipe("official").loss, recipe("official").optim, TrainerOptions(seed=0, **options)
    )
    return trainer, sysu_batch(spec, ids=ids, k=4)


def step_flops(trainer, batch) -> float:
    """FLOPs of one training step (forward, backward; Adam's are negligible)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        trainer.step(batch)
    trainer.metrics()
    return float(counter.get_total_flops())


def profile(backend, torch, steps: int = 5) -> dict[str, object]:
    """torch.profiler summary of ``steps`` bf16 steps (module docstring, item 4)."""
    import warnings

    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    trainer, batch = official_trainer(backend, ids=IDS, amp=True)
    for _ in range(3):
        trainer.step(batch)
    trainer.metrics()
    _sync(torch)
    syncs = 0
    if DEVICE.startswith("cuda"):
        torch.cuda.set_sync_debug_mode("warn")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.step(batch)
        torch.cuda.set_sync_debug_mode(0)
        syncs = sum("synchroniz" in str(w.message) for w in caught)
    activities = [ProfilerActivity.CPU]
    if DEVICE.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    _sync(torch)
    start = time.perf_counter()
    with torch_profile(activities=activities) as prof:
        for _ in range(steps):
            trainer.step(batch)
        _sync(torch)
    wall = time.perf_counter() - start
    trainer.metrics()
    events = prof.key_averages()
    device_us = sum(getattr(e, "self_device_time_total", 0.0) for e in events)
    top = sorted(events, key=lambda e: getattr(e, "self_device_time_total", 0.0), reverse=True)
    waits = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")
    flops = step_flops(trainer, batch)
    out: dict[str, object] = {
        "steps": steps,
        "step_ms": round(wall / steps * 1e3, 2),
        "device_busy_fraction": round(device_us / 1e6 / wall, 3),
        "sync_debug_warnings_in_one_step": syncs,
        "trace_syncs": sum(e.count for e in events if e.key in waits),
        "trace_dtoh_copies": sum(
            e.count for e in events if "DtoH" in e.key or e.key == "aten::item"
        ),
        "top_ops_device_ms": {
            e.key[:60]: round(e.self_device_time_total / 1e3 / steps, 2) for e in top[:15]
        },
        "step_gflop": round(flops / 1e9, 1),
    }
    name = torch.cuda.get_device_name(0) if DEVICE.startswith("cuda") else ""
    peak = next((v[0] for k, v in PEAK_FLOPS.items() if k in name), None)
    if peak:
        out["mfu_bf16"] = round(flops / (wall / steps) / peak, 3)
    print(
        prof.key_averages().table(
            sort_by="self_device_time_total"
            if DEVICE.startswith("cuda")
            else "self_cpu_time_total",
            row_limit=20,
        ),
        flush=True,
    )
    return out


def batch_scaling(backend, torch, steps: int, **options) -> list[dict[str, object]]:
    """images/s, step time and peak memory at batch 128, doubling until out of memory."""
    rows = []
    ids = IDS
    while ids <= (IDS * 16 if DEVICE.startswith("cuda") else IDS):
        try:
            trainer, batch = official_trainer(backend, ids=ids, **options)
            if DEVICE.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            step = median_step(torch, trainer, batch, warmup=2, steps=max(steps // 2, 3))
        except torch.cuda.OutOfMemoryError:
            rows.append({"batch": ids * 8, "fits": False})
            break
        peak = torch.cuda.max_memory_allocated() / 2**30 if DEVICE.startswith("cuda") else 0.0
        rows.append(
            {
                "batch": ids * 8,
                "fits": True,
                "step_ms": round(step * 1e3, 1),
                "images_per_s": round(ids * 8 / step, 1),
                "peak_gib": round(peak, 2),
            }
        )
        print("batch", rows[-1], flush=True)
        del trainer
        if DEVICE.startswith("cuda"):
            torch.cuda.empty_cache()
        ids *= 2
    return rows


def compile_time(backend, torch) -> dict[str, float]:
    """Seconds of the first (compiling) step and of the next one, bf16 + torch.compile."""
    trainer, batch = official_trainer(backend, ids=IDS, amp=True, compile=True)
    out = {}
    for label in ("first_step_s", "second_step_s"):
        _sync(torch)
        start = time.perf_counter()
        trainer.step(batch)
        _sync(torch)
        out[label] = round(time.perf_counter() - start, 1)
    trainer.metrics()
    return out


def ceiling(torch, steps: int, batch: int = 128) -> float:
    """images/s of a plain ResNet-50 (last stride 1) + linear classifier
    training step with fused Adam, bf16 autocast and channels_last."""
    from vdreid.spec import resnet
    from vdreid_torch.build import ResNet

    net = torch.nn.Sequential(
        ResNet(resnet(50, last_stride=1)), torch.nn.Linear(2048, SYSU_CLASSES)
    )
    net = net.to(DEVICE, memory_format=torch.channels_last)
    cuda = DEVICE.startswith("cuda")
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, fused=cuda or None)
    x = torch.randn(batch, 3, 256, 128, device=DEVICE).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, SYSU_CLASSES, (batch,), device=DEVICE)

    def step() -> None:
        with torch.autocast(DEVICE.split(":")[0], dtype=torch.bfloat16, enabled=cuda):
            loss = torch.nn.functional.cross_entropy(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    _sync(torch)
    times = []
    for _ in range(max(steps // 2, 3)):
        start = time.perf_counter()
        step()
        _sync(torch)
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def end_to_end(folder: Path, epochs: int | None) -> dict[str, object]:
    data, run = folder / "data", folder / "run"
    vdreid = [sys.executable, "-m", "vdreid"]
    subprocess.run(
        [*vdreid, "data", "synth", "--layout", "sysu", "--out", str(data), "--json"],
        check=True,
        capture_output=True,
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [
            *vdreid,
            "train",
            "--backend",
            "torch",
            "--preset",
            "tiny",
            "--dataset",
            "sysu",
            "--root",
            str(data),
            "--out",
            str(run),
            "--device",
            DEVICE,
            "--quiet",
            *(["--epochs", str(epochs)] if epochs else []),
        ],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        return {"ok": False, "error": (proc.stdout + proc.stderr)[-2000:]}
    report = json.loads((run / "eval.json").read_text())
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["images_per_s"] for r in log if "images_per_s" in r]
    return {
        "ok": True,
        "seconds": round(seconds, 1),
        "R1": report["summary"]["R1"]["mean"],
        "mAP": report["summary"]["mAP"]["mean"],
        "images_per_s_median": statistics.median(speeds),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per setting")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--e2e", type=Path, help="run the end-to-end check in this folder")
    ap.add_argument("--e2e-epochs", type=int, help="epochs of that run (default: the recipe's)")
    ap.add_argument("--device", default="cuda", help="cpu: dry-run the logic without a GPU")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed measurements")
    ap.add_argument(
        "--compile", action="store_true", help="also time torch.compile (minutes of compiling)"
    )
    ap.add_argument("--profile", action="store_true", help="torch.profiler summary of a few steps")
    ap.add_argument("--batches", action="store_true", help="batch 128 and doubling until OOM")
    ap.add_argument("--ceiling", action="store_true", help="a plain ResNet-50 step, same batch")
    ap.add_argument("--all", action="store_true", help="--compile --profile --batches --ceiling")
    ap.add_argument("--preset", default="official", help="items 4-6 (tiny: a CPU dry run)")
    ap.add_argument("--ids", type=int, default=16, help="identities per batch of items 4-6 (x 8)")
    args = ap.parse_args()
    global PRESET, IDS
    PRESET, IDS = args.preset, args.ids
    if args.all:
        args.compile = args.profile = args.batches = args.ceiling = True
    global DEVICE
    DEVICE = args.device
    import torch

    if DEVICE.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: nothing to check (run this on a machine with an NVIDIA GPU)")
        return
    from vdreid_torch import TorchBackend

    backend = TorchBackend()
    results: dict[str, object] = {
        "device": torch.cuda.get_device_name(0) if DEVICE.startswith("cuda") else DEVICE,
        "torch": torch.__version__,
    }
    results["parity"] = parity(backend, torch)
    print("parity:", json.dumps(results["parity"]), flush=True)
    if DEVICE.startswith("cuda"):  # autocast is CUDA-only in the trainer
        results["autocast"] = autocast_terms(backend)
        print("autocast:", json.dumps(results["autocast"]), flush=True)
    settings = [("fp32", {"amp": False}), ("bf16", {"amp": True})]
    if args.compile:
        results["compile"] = compile_time(backend, torch)
        print("compile:", json.dumps(results["compile"]), flush=True)
        settings.append(("bf16+compile", {"amp": True, "compile": True}))
    speed: dict[str, float] = {}
    for label, options in [] if args.no_speed else settings:
        speed[f"train_{label}_images_per_s"] = round(
            train_speed(backend, torch, args.steps, **options), 1
        )
        print(label, speed[f"train_{label}_images_per_s"], "images/s", flush=True)
    if speed:
        speed["features_fp32_images_per_s"] = round(feature_speed(backend, torch, args.steps), 1)
        base = speed["train_fp32_images_per_s"]
        for label, _ in settings[1:]:
            speed[f"train_{label}_vs_fp32"] = round(speed[f"train_{label}_images_per_s"] / base, 2)
        results["speed"] = speed
        print("speed:", json.dumps(speed), flush=True)
    if args.profile:
        results["profile"] = profile(backend, torch)
        print("profile:", json.dumps(results["profile"]), flush=True)
    if args.batches:
        results["batches"] = batch_scaling(backend, torch, args.steps, amp=True)
    if args.ceiling:
        results["ceiling_resnet50_images_per_s"] = round(ceiling(torch, args.steps, IDS * 8), 1)
        print("ceiling (plain ResNet-50):", results["ceiling_resnet50_images_per_s"], flush=True)
    if args.e2e:
        results["end_to_end"] = end_to_end(args.e2e, args.e2e_epochs)
        print("end to end:", json.dumps(results["end_to_end"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
