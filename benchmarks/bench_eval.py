"""Vectorised ranking vs the per-query loop, side by side in one process.

Cases (random features, 10 trials each, distances computed beforehand and
shared by both evaluators):
- SYSU-MM01 10-shot all-search: 3,803 queries x 3,010 gallery, SYSU removal,
  identity-level CMC (target: vectorised >= 10x faster);
- SYSU-MM01 single-shot: 3,803 x 301;
- RegDB: 2,060 x 2,060, image-level CMC, no removal.
Then the time and peak traced memory of k-reciprocal re-ranking at SYSU
10-shot size (features of dimension 256).

Run: .venv/bin/python benchmarks/bench_eval.py [--quick]
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from vdreid.eval import k_reciprocal_rerank, pairwise_distance, rank  # noqa: E402

from reference_rank import loop_rank  # noqa: E402

DIM = 64


def sysu_case(rng, n_gallery):
    q_pids = rng.integers(0, 96, 3803)
    q_cams = np.where(rng.random(3803) < 1883 / 3803, 3, 6)
    g_pids = np.repeat(np.arange(96), -(-n_gallery // 96))[:n_gallery]
    g_cams = rng.choice([1, 2, 4, 5], n_gallery)
    return q_pids, g_pids, q_cams, g_cams


def regdb_case(rng, _):
    pids = np.repeat(np.arange(206), 10)
    return pids, pids.copy(), None, None


CASES = [
    # name, gallery size, case builder, cmc, removal
    ("SYSU 10-shot 3803x3010", 3010, sysu_case, "identity", "sysu"),
    ("SYSU 1-shot  3803x301 ", 301, sysu_case, "identity", "sysu"),
    ("RegDB        2060x2060", 2060, regdb_case, "image", None),
]


def run_case(name, n_gallery, build, cmc, removal, trials, quiet=False):
    rng = np.random.default_rng(0)
    fast_s = loop_s = 0.0
    worst = 0.0
    for _ in range(trials):
        q_pids, g_pids, q_cams, g_cams = build(rng, n_gallery)
        q = rng.standard_normal((len(q_pids), DIM))
        g = rng.standard_normal((len(g_pids), DIM))
        dist = pairwise_distance(q, g)
        args = (dist, q_pids, g_pids, q_cams, g_cams)
        t0 = time.perf_counter()
        fast = rank(*args, cmc=cmc, removal=removal)
        t1 = time.perf_counter()
        cmc_ref, map_ref, minp_ref, valid_ref = loop_rank(*args, cmc=cmc, removal=removal)
        t2 = time.perf_counter()
        fast_s, loop_s = fast_s + t1 - t0, loop_s + t2 - t1
        if fast.num_valid != valid_ref:
            raise SystemExit(f"{name}: valid queries differ {fast.num_valid} != {valid_ref}")
        diff = max(
            np.abs(fast.cmc - cmc_ref).max(), abs(fast.mAP - map_ref), abs(fast.mINP - minp_ref)
        )
        worst = max(worst, diff)
    equal = worst <= 1e-12
    print_ = (lambda *a: None) if quiet else print
    print_(
        f"{name}  trials {trials}  vectorised {fast_s:6.2f} s  loop {loop_s:6.2f} s  "
        f"ratio {loop_s / fast_s:5.1f}x  equal {equal} (max |diff| {worst:.1e})"
    )
    if not equal:
        raise SystemExit(f"{name}: results differ from the per-query loop")
    return loop_s / fast_s


def rerank_memory():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((3803, 256)).astype(np.float32)
    g = rng.standard_normal((3010, 256)).astype(np.float32)
    tracemalloc.start()
    t0 = time.perf_counter()
    k_reciprocal_rerank(q, g)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result_mb = 3803 * 3010 * 8 / 2**20
    print(
        f"re-ranking 3803x3010 (N=6813, dim 256)  {seconds:6.2f} s  peak traced "
        f"{peak / 2**20:6.0f} MiB (result itself {result_mb:.0f} MiB; features not counted)"
    )


def main() -> None:
    trials = 2 if "--quick" in sys.argv else 10
    ratio = [run_case(*case, trials=trials) for case in CASES][0]
    target = "met" if ratio >= 10 else "MISSED"
    print(f"target >= 10x on SYSU 10-shot: {target} ({ratio:.1f}x)")
    rerank_memory()


if __name__ == "__main__":
    main()
