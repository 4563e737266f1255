"""Feature extraction on the CPU: ONNX Runtime vs torch eager, side by side.

Two models, each run by both backends in this one process, alternating, on
the same weights and the same uint8 images:
- ``official``: the official preset (ResNet-50 x 3 branches, four paths,
  8192-d feature) at 288x144, the input the authors' evaluation uses;
- ``tiny``: the tiny preset at 64x32.
Each backend's ``features`` is called as ``vdreid eval`` calls it (uint8
in, the test feature out: normalisation included); the first call (graph
building, session creation) is excluded. Prints images/s per backend, the
ratio ORT / torch and the largest feature difference.

    .venv/bin/python benchmarks/bench_onnxruntime.py [--images 16] [--repeats 3] [--threads 2]

``--threads`` (OMP_NUM_THREADS, set before either runtime loads) caps both
runtimes' intra-op threads alike.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

MODELS = {"official": (288, 144), "tiny": (64, 32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", choices=[*MODELS, "all"], default="all")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    from vdreid import registry
    from vdreid.errors import first_line
    from vdreid.presets import recipe
    from vdreid.spec.builders import with_input_size
    from vdreid.workflows.parity import perturbed_state

    backends = {}
    for name in ("torch", "onnxruntime"):
        try:
            backends[name] = registry.get(name)
        except Exception as exc:  # a missing backend is reported, not fatal
            print(f"{name}: not available ({first_line(exc)})")
    if len(backends) < 2:
        return
    import torch

    torch.set_num_threads(args.threads)
    print(f"{args.images} images per call, best of {args.repeats}, {args.threads} threads")
    print(f"{'model':<10} {'torch img/s':>12} {'ORT img/s':>10} {'ORT/torch':>10} {'max diff':>9}")
    for model_name, size in MODELS.items():
        if args.model not in ("all", model_name):
            continue
        spec = with_input_size(recipe(model_name).model_spec(395), size)
        state = perturbed_state(spec)
        images = np.random.default_rng(0).integers(0, 256, (args.images, *size, 3), np.uint8)
        models = {}
        for name, b in backends.items():
            models[name] = b.build(spec, device="cpu")
            b.set_state(models[name], state)
        feats = {name: b.features(models[name], images[:2]) for name, b in backends.items()}
        best = dict.fromkeys(backends, float("inf"))
        for _ in range(args.repeats):
            for name, b in backends.items():
                start = time.perf_counter()
                feats[name] = b.features(models[name], images, batch_size=args.images)
                best[name] = min(best[name], time.perf_counter() - start)
        rate = {name: args.images / t for name, t in best.items()}
        diff = float(np.max(np.abs(feats["torch"] - feats["onnxruntime"])))
        print(
            f"{model_name:<10} {rate['torch']:>12.1f} {rate['onnxruntime']:>10.1f} "
            f"{rate['onnxruntime'] / rate['torch']:>9.2f}x {diff:>9.1e}"
        )


if __name__ == "__main__":
    main()
