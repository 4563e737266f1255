"""`vdreid embed` throughput vs the bare backend.features call, side by side in one process.

Both compute features of the same 1,000 synthetic JPEG files (SYSU-like,
128x64) with the same model on the torch backend (CPU):

- bare: ``backend.features`` on images decoded and resized beforehand (the
  backend's own speed, the ceiling);
- embed: ``embed_images`` from the file paths (decoding in threads one
  batch ahead of the backend, modality per image, the index).

The two alternate, ``--repeats`` times each; the best run of each is
reported, with their ratio (target: embed at 0.9x the bare call or more).
Cases: ``tiny`` at 128x64 (the demo's model); with ``--official`` also the
``official`` preset (three ResNet-50) at 288x144 on the first 64 files (on
a 2-core CPU it runs at about one image per second, so it is not in the
default run). ``--threads`` sets torch's intra-op threads (default:
torch's own choice; on a machine shared with other jobs one is steadier).

    .venv/bin/python benchmarks/bench_embed.py [--images 1000] [--repeats 3] [--threads N] [--official]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from vdreid.checkpoint import save_checkpoint
from vdreid.data.image_files import list_images
from vdreid.data.images import load_image
from vdreid.data.synth import Shape, synthesize
from vdreid.presets import recipe
from vdreid.spec import init_state
from vdreid.workflows.embed import DEFAULT_WORKERS, embed_images
from vdreid.workflows.model_source import open_model

TARGET = 0.9
BATCH = 64


def bare(model, images: np.ndarray) -> float:
    start = time.perf_counter()
    for i in range(0, len(images), BATCH):
        model.backend.features(model.model, images[i : i + BATCH], batch_size=BATCH)
    return len(images) / (time.perf_counter() - start)


def embed(model, paths: list[Path]) -> float:
    start = time.perf_counter()
    embed_images(model, paths, batch_size=BATCH, progress=False)
    return len(paths) / (time.perf_counter() - start)


def case(name: str, preset: str, size: tuple[int, int], paths: list[Path], tmp: Path, repeats: int):
    spec = recipe(preset).model_spec(10, input_size=size)
    ckpt = save_checkpoint(tmp / f"{preset}.safetensors", init_state(spec, 0), spec=spec)
    model = open_model(checkpoint=ckpt, backend="torch", device="cpu")
    images = np.stack([load_image(p, size) for p in paths])  # decoded once, outside the timing
    bare(model, images[:BATCH])  # warm up both paths
    embed(model, paths[:BATCH])
    runs = {"bare": [], "embed": []}
    for _ in range(repeats):
        runs["bare"].append(bare(model, images))
        runs["embed"].append(embed(model, paths))
    b, e = max(runs["bare"]), max(runs["embed"])
    verdict = "meets" if e >= TARGET * b else "BELOW"
    print(
        f"{name:<26} {len(paths):>5} images: bare features {b:8.1f} images/s, embed {e:8.1f} "
        f"images/s, ratio {e / b:.2f} ({verdict} the {TARGET}x target)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--official", action="store_true", help="also the ResNet-50 preset")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        synthesize("sysu", tmp / "data", shape=Shape(ids=24, test_ids=12), seed=0, progress=False)
        paths = list_images([tmp / "data"])[: args.images]
        if len(paths) < args.images:
            raise SystemExit(f"the synthetic tree has {len(paths)} images, fewer than --images")
        print(
            f"decoding threads: {DEFAULT_WORKERS}; batch {BATCH}; torch on the CPU, "
            f"{torch.get_num_threads()} thread(s)"
        )
        case("tiny 128x64", "tiny", (128, 64), paths, tmp, args.repeats)
        if args.official:
            case("official (ResNet-50) 288x144", "official", (288, 144), paths[:64], tmp, 1)


if __name__ == "__main__":
    main()
