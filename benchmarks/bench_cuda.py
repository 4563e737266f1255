"""CUDA checks of the torch backend: parity with the CPU, bf16 autocast, speed.

Needs a machine with an NVIDIA GPU (torch with CUDA); `make bench` skips it
elsewhere. One process, so the speeds compare side by side:

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
4. end to end (``--e2e DIR``): `vdreid train --device cuda --preset tiny` on
   a synthetic SYSU tree in DIR, with its final evaluation.
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
    for _ in range(3):  # warm-up: cudnn autotuning, compilation
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
    return len(batch["images"]) / statistics.median(times)


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
    args = ap.parse_args()
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
    if args.e2e:
        results["end_to_end"] = end_to_end(args.e2e, args.e2e_epochs)
        print("end to end:", json.dumps(results["end_to_end"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
