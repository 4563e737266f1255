"""Render a :class:`~vdreid.data.synth.plan.Plan` into image files.

Every identity is one job with its own seeded generators (look, poses,
noise), so the output depends on the seed only, not on the number of
worker processes or the order jobs finish in. Files are stored as the real
datasets store them: SYSU and LLCM as 3-channel JPEG (infrared too),
RegDB as BMP with 8-bit single-channel thermal images.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from vdreid import outputs
from vdreid.data.progress import progress_bar
from vdreid.data.synth.person import appearance, camera_style, poses, render
from vdreid.data.synth.plan import Job, Plan
from vdreid.errors import DataError

JPEG_QUALITY = 90


def prepare_out(out: Path) -> Path:
    """``out`` must be new or empty: mixing two trees would corrupt both."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(
            f"--out {out} exists and is not an empty folder; choose a new folder or remove it first"
        )
    return outputs.make_folder(out, "--out")


def write_plan(plan: Plan, out: Path, seed: int, *, workers: int = 1, progress: bool = True) -> int:
    """Write every image, then every text file of ``plan`` under ``out``; returns
    the image count. The text files (split and index files) come last, so a
    tree with them is complete (the demo reuses such a tree)."""
    out = prepare_out(out)
    try:
        for folder in plan.folders:
            (out / folder).mkdir(parents=True, exist_ok=True)
        written = _write_images(plan, out, seed, workers=workers, progress=progress)
        for rel, text in plan.texts.items():
            outputs.write_text(out / rel, text, "split file")
    except OSError as exc:
        raise outputs.output_error(out, exc, "the synthetic dataset in") from None
    return written


def _write_images(plan: Plan, out: Path, seed: int, *, workers: int, progress: bool) -> int:
    written = 0
    with progress_bar(plan.n_images, f"writing {plan.layout} images", enabled=progress) as advance:
        if workers <= 1:
            for job in plan.jobs:
                written += write_job(str(out), seed, plan.size, job)
                advance(job.n_images)
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                futures = [
                    pool.submit(write_job, str(out), seed, plan.size, job) for job in plan.jobs
                ]
                for fut in as_completed(futures):
                    n = fut.result()
                    written += n
                    advance(n)
    return written


def write_job(out: str, seed: int, size: tuple[int, int], job: Job) -> int:
    """Render and save every image of one identity."""
    look = appearance(np.random.default_rng([seed, 1, job.pid]))
    shared: dict[tuple[int, int], object] = {}
    count = 0
    for shot in job.shots:
        n = len(shot.paths)
        key = (shot.pose_key, n)
        if key not in shared:
            shared[key] = poses(
                np.random.default_rng([seed, 2, job.pid, shot.pose_key]), n, look.height
            )
        style = camera_style(np.random.default_rng([seed, 3, shot.camera]), shot.infrared)
        noise = np.random.default_rng([seed, 4, job.pid, shot.camera])
        images = render(look, shared[key], style, size, infrared=shot.infrared, rng=noise)  # type: ignore[arg-type]
        os.makedirs(os.path.join(out, os.path.dirname(shot.paths[0])), exist_ok=True)
        for rel, img in zip(shot.paths, images, strict=True):
            _save(os.path.join(out, rel), img, shot.infrared)
            count += 1
    return count


def _save(path: str, img: np.ndarray, infrared: bool) -> None:
    if path.endswith(".bmp"):
        pil = Image.fromarray(img[..., 0] if infrared else img, mode="L" if infrared else "RGB")
        pil.save(path, format="BMP")
    else:
        Image.fromarray(img, mode="RGB").save(path, format="JPEG", quality=JPEG_QUALITY)
