"""A straightforward per-query evaluator: the oracle for vdreid.eval.metrics.

It follows docs/evaluation.md literally (full stable argsort, then one
Python iteration per query) and is shared by the unit tests and by
benchmarks/bench_eval.py, which add this folder to sys.path. It is not part
of the package: the package holds only the vectorised version.
"""

from __future__ import annotations

import numpy as np


def removed_mask(removal, q_pid, q_cam, g_pids, g_cams):
    """Gallery items (in gallery order) that one query ignores."""
    if removal is None:
        return np.zeros(len(g_pids), dtype=bool)
    if removal == "sysu":
        return (g_cams == 2) & (q_cam == 3)
    if removal == "llcm":
        return (g_pids == q_pid) & (g_cams == q_cam)
    raise ValueError(removal)


def loop_rank(
    distmat, q_pids, g_pids, q_cams=None, g_cams=None, *, cmc="identity", removal=None, max_rank=20
):
    """(cmc array of max_rank, mAP, mINP, num_valid), one query at a time."""
    distmat = np.asarray(distmat, dtype=np.float64)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    order = np.argsort(distmat, axis=1, kind="stable")
    hits = np.zeros(max_rank)
    aps, inps = [], []
    for i in range(distmat.shape[0]):
        o = order[i]
        q_cam = None if q_cams is None else q_cams[i]
        cams = None if g_cams is None else g_cams[o]
        keep = ~removed_mask(removal, q_pids[i], q_cam, g_pids[o], cams)
        ranked = g_pids[o][keep]
        match = ranked == q_pids[i]
        if not match.any():
            continue
        positions = np.flatnonzero(match) + 1  # 1-based ranks of the positives
        aps.append(np.mean(np.arange(1, len(positions) + 1) / positions))
        inps.append(len(positions) / positions[-1])
        if cmc == "image":
            first = positions[0]
        else:
            _, first_index = np.unique(ranked, return_index=True)
            distinct = ranked[np.sort(first_index)]
            first = int(np.flatnonzero(distinct == q_pids[i])[0]) + 1
        if first <= max_rank:
            hits[first - 1 :] += 1
    n = len(aps)
    return hits / n, float(np.mean(aps)), float(np.mean(inps)), n
