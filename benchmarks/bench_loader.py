"""Input pipeline throughput: images/s from the decoded-image cache, one process.

Writes a small synthetic SYSU-like tree, caches its training split at
256x128 (the official input size), then times sampler -> cached gather ->
flip + pad/crop for whole batches of 128 (16 ids x (4 + 4)). Target:
>= 2,000 images/s on one core. Also prints the cache build rate (decode
and resize, the one-off cost) for context.

    .venv/bin/python benchmarks/bench_loader.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from vdreid.config import AugmentConfig
from vdreid.data.batch import BatchAssembler
from vdreid.data.cache import ImageCache
from vdreid.data.readers import read_dataset
from vdreid.data.records import arrays
from vdreid.data.sampler import IdentitySampler
from vdreid.data.synth import Shape, synthesize

TARGET = 2000.0
SIZE = (256, 128)


def loader_rate(seconds: float) -> tuple[float, float, int]:
    """(cache build images/s, loader images/s, batches timed) on a synthetic SYSU tree."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sysu"
        synthesize("sysu", root, shape=Shape(ids=64, test_ids=1), seed=0, progress=False)
        index = read_dataset("sysu", root)
        labels, _ = index.train_labels()
        _, _, modality = arrays(index.train)
        t0 = time.perf_counter()
        cache = ImageCache.open(
            [r.path for r in index.train], SIZE, Path(tmp) / "cache", progress=False
        )
        build = len(cache) / (time.perf_counter() - t0)
        sampler = IdentitySampler(labels, modality, ids_per_batch=16, instances=4, seed=1)
        assemble = BatchAssembler(cache, labels, modality, AugmentConfig(flip=0.5, pad=10), seed=1)
        assemble(sampler.batch(0, 0))  # warm the page cache
        images, steps, epoch = 0, 0, 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            for step, idx in enumerate(sampler.epoch_batches(epoch)):
                images += len(assemble(idx, epoch=epoch, step=step).images)
                steps += 1
            epoch += 1
        return build, images / (time.perf_counter() - start), steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="time spent in the timed loop")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    build, rate, steps = loader_rate(args.seconds)
    verdict = "meets" if rate >= TARGET else "BELOW"
    print(f"cache build (decode + resize to {SIZE[0]}x{SIZE[1]}): {build:,.0f} images/s")
    print(
        f"loader, cached {SIZE[0]}x{SIZE[1]} + flip + pad/crop, batch 128, one process: "
        f"{rate:,.0f} images/s over {steps} batches ({verdict} the {TARGET:,.0f} images/s target, "
        f"{rate / TARGET:.1f}x)"
    )


if __name__ == "__main__":
    main()
