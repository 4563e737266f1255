"""MindSpore CPU convolution: native kernel vs the im2col + matmul lowering
(vdreid_mindspore.lowering), with torch on the same shapes for reference.

Each case times forward + backward (input and weight gradients) of one
convolution, compiled (ms.jit), and reports GFLOP/s (3x the forward's
multiply-adds x 2) and the lowering's speed-up over the native kernel,
all measured side by side in this one process.

    .venv/bin/python benchmarks/bench_conv_ms.py [--repeat 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

# (name, N, C, H, W, O, kernel, stride, padding): ResNet-18/50 layers at 256x128
CASES = [
    ("stem 7x7/2", 8, 3, 256, 128, 64, 7, 2, 3),
    ("layer1 3x3", 8, 64, 64, 32, 64, 3, 1, 1),
    ("layer2 3x3/2", 8, 64, 64, 32, 128, 3, 2, 1),
    ("layer3 3x3", 8, 256, 16, 8, 256, 3, 1, 1),
    ("tiny 3x3", 16, 8, 16, 8, 8, 3, 1, 1),
]


def best_of(fn, repeat: int) -> float:
    fn()  # compile / warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def mindspore_step(case, lowered: bool):
    from vdreid_mindspore._quiet import mindspore as ms
    from vdreid_mindspore.lowering import Conv2d

    _, n, c, h, w, o, k, s, p = case
    rng = np.random.default_rng(0)
    conv = Conv2d(c, o, k, s, p, lowered=lowered)
    conv.weight.copy_(ms.Tensor(rng.normal(0, 0.05, (o, c, k, k)).astype(np.float32)))
    x = ms.Tensor(rng.normal(size=(n, c, h, w)).astype(np.float32))
    grad = ms.jit(ms.grad(conv, grad_position=0, weights=conv.trainable_params()))

    def run():
        gx, (gw,) = grad(x)
        gx.asnumpy(), gw.asnumpy()

    return run


def torch_step(case):
    import torch

    _, n, c, h, w, o, k, s, p = case
    conv = torch.nn.Conv2d(c, o, k, s, p, bias=False)
    x = torch.randn(n, c, h, w, requires_grad=True)

    def run():
        conv.zero_grad()
        x.grad = None
        conv(x).sum().backward()

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for both frameworks")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    print(f"forward+backward GFLOP/s, CPU fp32, {args.threads} thread(s), best of {args.repeat}")
    print(
        f"{'case':14s} {'ms native':>10s} {'ms im2col':>10s} {'torch':>8s} {'im2col/native':>14s}"
    )
    for case in CASES:
        _, n, c, h, w, o, k, s, p = case
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        gflop = 3 * 2 * n * o * c * k * k * ho * wo / 1e9
        native = best_of(mindspore_step(case, False), args.repeat)
        lowered = best_of(mindspore_step(case, True), args.repeat)
        reference = best_of(torch_step(case), args.repeat)
        print(
            f"{case[0]:14s} {gflop / native:10.1f} {gflop / lowered:10.1f} {gflop / reference:8.1f} "
            f"{native / lowered:13.1f}x"
        )


if __name__ == "__main__":
    main()
