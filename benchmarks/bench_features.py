"""Feature extraction (what an evaluation waits for), side by side in one process.

The ``official`` preset's test features (ResNet-50, last stride 1) for a
batch of uint8 images, on the CPU in fp32, timed on:

- torch eager (``backend.features``, NCHW; ``--channels-last`` also times
  the model in channels_last);
- MindSpore (``backend.features``: its compiled feature graph);
- ONNX Runtime running the torch export of the same features
  (vdreid_torch.export.write_onnx), when onnxruntime is installed;
- a plain ResNet-50 (last stride 1) forward on torch, the floor the
  features are measured against: the official feature runs four encoder
  passes per image (paths I, Sg, V, Sx), so its floor is four of these
  (times the FLOP ratio, ``flop_ratio``: the channel attention adds 20%).

On a CPU ``backend.features`` forwards at most 8 images at a time
(vdreid.backend_inputs.CPU_FEATURE_BATCH) whatever ``--batch`` says; the
plain ResNet-50 takes the whole batch, so compare them at ``--batch 8``.

Each case is warmed up once, then timed alternately ``--repeat`` times
(best of), so a loaded machine slows every side alike. Also the cache's
decode: images/s of reading and resizing JPEGs into the decoded-image
cache (vdreid.data.cache), the one-off cost before the first evaluation.

    .venv/bin/python benchmarks/bench_features.py [--size 256x128] [--batch 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SYSU_CLASSES = 395


def feature_timers(size: tuple[int, int], batch: int, channels_last: bool) -> dict[str, Callable]:
    """One callable per runtime, each extracting the same batch's features."""
    from vdreid import registry
    from vdreid.spec import init_state, preprocess, resnet

    model = official_torch(size)
    spec = model.spec
    state = init_state(spec, 0)
    images = np.random.default_rng(0).integers(0, 256, (batch, *size, 3), dtype=np.uint8)
    timers: dict[str, Callable] = {}

    import torch

    from vdreid_torch.build import ResNet

    torch_backend = registry.get("torch")
    timers["torch"] = lambda: torch_backend.features(model, images, batch_size=batch)
    if channels_last:
        model_cl = official_torch(size).to(memory_format=torch.channels_last)
        timers["torch channels_last"] = lambda: torch_backend.features(
            model_cl, images, batch_size=batch
        )

    plain = ResNet(resnet(50, last_stride=1)).eval()
    x = torch.from_numpy(preprocess(spec, images))

    def plain_forward() -> None:
        with torch.inference_mode():
            plain(x)

    timers["plain ResNet-50 torch"] = plain_forward

    info, _ = registry.probe("mindspore")
    if info is not None:
        ms_backend = registry.get("mindspore")
        ms_model = ms_backend.build(spec, device="cpu")
        ms_backend.set_state(ms_model, state)
        timers["mindspore"] = lambda: ms_backend.features(ms_model, images, batch_size=batch)

    try:
        import onnxruntime as ort
    except ImportError:
        return timers
    from vdreid_torch.export import INPUT_NAME, OUTPUT_NAME, write_onnx

    folder = tempfile.mkdtemp(prefix="vdreid-bench-")
    path = Path(folder) / "features.onnx"
    normalised = preprocess(spec, images)
    write_onnx(model, normalised, path)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    timers["onnxruntime"] = lambda: session.run([OUTPUT_NAME], {INPUT_NAME: normalised})
    return timers


def official_torch(size: tuple[int, int]):
    """The official preset's torch model at ``size``, seeded weights, eval mode."""
    from vdreid import registry
    from vdreid.presets import recipe
    from vdreid.spec import init_state

    spec = recipe("official").model_spec(SYSU_CLASSES, input_size=size)
    backend = registry.get("torch")
    model = backend.build(spec, device="cpu")
    backend.set_state(model, init_state(spec, 0))
    return model.eval()


def flop_ratio(size: tuple[int, int]) -> float:
    """FLOPs of the official feature over four plain ResNet-50 forwards
    (torch's FLOP counter: convolutions and matmuls), per image."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from vdreid.spec import resnet
    from vdreid_torch.build import ResNet

    model = official_torch(size)
    plain = ResNet(resnet(50, last_stride=1)).eval()
    x = torch.zeros(1, 3, *size)
    counts = []
    for forward in (model.test_feature, plain):
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            forward(x)
        counts.append(counter.get_total_flops())
    return counts[0] / (4 * counts[1])


def per_image_cost(
    size: tuple[int, int], batches: tuple[int, ...], repeat: int
) -> dict[int, float]:
    """Seconds per image of one torch forward of the official feature at each
    batch size (the model called directly: ``backend.features`` chunks a CPU's
    batches, vdreid.backend_inputs.CPU_FEATURE_BATCH)."""
    import torch

    model = official_torch(size)
    x = {b: torch.randn(b, 3, *size) for b in batches}

    def forward(b: int) -> Callable:
        def run() -> None:
            with torch.inference_mode():
                model.test_feature(x[b])

        return run

    best = best_times({str(b): forward(b) for b in batches}, repeat)
    return {b: best[str(b)] / b for b in batches}


def thread_ratio(size: tuple[int, int], batch: int, repeat: int) -> float:
    """Seconds of a torch forward of the official feature with two threads
    over one (the threads taking turns); the caller's thread count is restored."""
    import torch

    model = official_torch(size)
    x = torch.randn(batch, 3, *size)
    before = torch.get_num_threads()

    def forward(threads: int) -> Callable:
        def run() -> None:
            torch.set_num_threads(threads)
            with torch.inference_mode():
                model.test_feature(x)

        return run

    try:
        best = best_times({"2": forward(2), "1": forward(1)}, repeat)
    finally:
        torch.set_num_threads(before)
    return best["2"] / best["1"]


def best_times(timers: dict[str, Callable], repeat: int) -> dict[str, float]:
    """Best seconds per call of each timer, the timers taking turns."""
    for fn in timers.values():
        fn()  # warm up: compilation, allocation
    times: dict[str, list[float]] = {k: [] for k in timers}
    for _ in range(repeat):
        for k, fn in timers.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return {k: min(v) for k, v in times.items()}


def decode_rate(count: int = 96, size: tuple[int, int] = (256, 128)) -> float:
    """Images/s of building the decoded-image cache from JPEGs (decode + resize)."""
    from vdreid.data.cache import ImageCache
    from vdreid.data.readers import read_dataset
    from vdreid.data.synth import Shape, synthesize

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sysu"
        synthesize("sysu", root, shape=Shape(ids=count // 8, test_ids=1), seed=0, progress=False)
        paths = [r.path for r in read_dataset("sysu", root).train]
        start = time.perf_counter()
        ImageCache.open(paths, size, Path(tmp) / "cache", progress=False)
        return len(paths) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="256x128", help="HxW; the official preset is 256x128")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for every runtime")
    ap.add_argument("--channels-last", action="store_true", help="also time torch channels_last")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.split("x"))
    best = best_times(feature_timers((h, w), args.batch, args.channels_last), args.repeat)
    print(f"official features, {h}x{w}, batch {args.batch}, CPU fp32, {args.threads} thread(s)")
    for k, s in best.items():
        print(
            f"  {k:24s} {s * 1e3:9.1f} ms  {args.batch / s:7.1f} images/s  "
            f"x{s / best['plain ResNet-50 torch']:.2f} of one plain ResNet-50 forward"
        )
    print(f"  cache decode + resize    {decode_rate(size=(h, w)):7.0f} images/s")


if __name__ == "__main__":
    main()
