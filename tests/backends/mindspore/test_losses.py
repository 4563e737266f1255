"""Every loss term traces inside MindSpore's ms.jit (GRAPH mode) and gives the
numpy values there: no Python control flow on tensor values, no host sync.

One compiled function holds one call of each term (the per-path sums of
the presets repeat the same calls; tests/contract runs whole presets on
the MindSpore backend).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mindspore")
from vdreid.losses import (  # noqa: E402
    CrossEntropyTerm,
    LossSpec,
    batch_hard_triplet,
    cost_matrix,
    js_divergence,
    kl_divergence,
    l2_normalize,
    objective,
    official_kl_div,
    ranked_list_loss,
    sinkhorn_plan,
)
from vdreid.ops import NumpyOps  # noqa: E402
from vdreid_mindspore._quiet import mindspore as ms  # noqa: E402
from vdreid_mindspore.ops import MSOps  # noqa: E402

ITERS = 6  # enough to exercise the frozen updates (the official rule stops at 2-3 here)
CE_ONLY = LossSpec(ce=CrossEntropyTerm())


def all_terms(o, x, y, labels, modality, outputs):
    p, q = o.softmax(x, axis=1), o.softmax(y, axis=1)
    cost = cost_matrix(o, p, q)
    pi_official, nits = sinkhorn_plan(o, cost, max_iter=ITERS, tol=0.1, variant="official")
    pi_stable, _ = sinkhorn_plan(o, cost, max_iter=ITERS, tol=None, variant="stable")
    return (
        o.sum(pi_official * cost),
        nits,
        o.sum(pi_stable * cost),
        ranked_list_loss(o, x, labels, modality),
        batch_hard_triplet(o, x, labels),
        official_kl_div(o, x, y),
        kl_divergence(o, x, y, 2.0),
        js_divergence(o, x, y),
        objective(o, CE_ONLY, outputs, labels, modality)["total"],
    )


def test_every_term_traces_in_graph_mode_with_the_numpy_values() -> None:
    rng = np.random.default_rng(0)
    x = (2 * rng.normal(size=(8, 5))).astype(np.float32)
    y = (2 * rng.normal(size=(8, 5))).astype(np.float32)
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    modality = np.array([0, 1, 0, 1, 0, 1, 1, 0])
    outputs = {
        f"{p}.{n}": rng.normal(size=(8, 4)).astype(np.float32)
        for p in ("V", "I", "Sx", "Sg")
        for n in ("logits", "z_logits")
    }
    expected = all_terms(NumpyOps(), x, y, labels, modality, outputs)

    mops = MSOps()

    def on_mindspore(*args):  # a def, not a lambda: ms.jit parses the source
        return all_terms(mops, *args)

    got = ms.jit(on_mindspore)(
        mops.asarray(x),
        mops.asarray(y),
        mops.asarray(labels),
        mops.asarray(modality),
        {k: mops.asarray(v) for k, v in outputs.items()},
    )
    assert float(expected[1]) > 1  # the official rule applied more than one update
    for g, e in zip(got, expected, strict=True):
        assert float(g.asnumpy()) == pytest.approx(float(e), rel=2e-5, abs=1e-6)


def test_l2_normalize_has_a_finite_gradient_at_a_zero_row_in_graph_mode() -> None:
    # x / (||x|| + 1e-12), as the official code: d/dx at a zero row is I / 1e-12
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 6)).astype(np.float32)
    x[2] = 0.0
    weights = rng.normal(size=(4, 6)).astype(np.float32)
    labels = np.array([0, 0, 1, 1])
    modality = np.array([0, 1, 0, 1])
    mops = MSOps()

    def normalised(x, w):
        return mops.sum(l2_normalize(mops, x) * w)

    def ranked(x, labels, modality):
        return ranked_list_loss(mops, x, labels, modality)

    grad = ms.jit(ms.grad(normalised, grad_position=0))(mops.asarray(x), mops.asarray(weights))
    g = grad.asnumpy()
    assert np.all(np.isfinite(g))
    norm = np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    others = [0, 1, 3]  # the analytic gradient of sum(w * x / n): w / n - x (w.x) / n^3
    dots = np.sum(weights * x, axis=1, keepdims=True)
    want = weights / norm - x * dots / norm**3
    np.testing.assert_allclose(g[others], want[others], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(g[2], weights[2] / 1e-12, rtol=1e-5)

    args = (mops.asarray(x), mops.asarray(labels), mops.asarray(modality))
    assert np.all(np.isfinite(ms.jit(ms.grad(ranked, grad_position=0))(*args).asnumpy()))
