"""Sinkhorn (CML): by hand, the masked early stop against a plain breaking loop,
and the official against the stable variant."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vdreid.losses import cost_matrix, sinkhorn_distance, sinkhorn_plan
from vdreid.ops import NumpyOps

ops = NumpyOps()


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_cost_matrix_is_squared_euclidean_between_rows() -> None:
    x = np.array([[1.0, 0.0], [0.5, 0.5]])
    y = np.array([[0.0, 1.0], [1.0, 0.0], [0.25, 0.75]])
    # |x0 - y0|^2 = 1 + 1; |x0 - y1|^2 = 0; |x0 - y2|^2 = 0.5625 + 0.5625
    # |x1 - y0|^2 = 0.25 + 0.25; |x1 - y1|^2 = 0.25 + 0.25; |x1 - y2|^2 = 0.0625 * 2
    expected = [[2.0, 0.0, 1.125], [0.5, 0.5, 0.125]]
    np.testing.assert_allclose(cost_matrix(ops, x, y), expected)


@pytest.mark.parametrize("variant", ["official", "stable"])
def test_two_points_by_hand(variant: str) -> None:
    # x = y = two different distributions at cost c from each other:
    # C = [[0, c], [c, 0]]. By symmetry the entropic plan is K / sum(K) with
    # K = exp(-C / eps): diagonal 1/2 / (1 + e^{-c/eps}), off-diagonal
    # 1/2 e^{-c/eps} / (1 + e^{-c/eps}); cost = 2 c off-diagonal.
    c, eps = 0.02, 0.01
    a = math.sqrt(c / 2)  # |x0 - x1|^2 = 2 a^2 = c
    x = np.array([[a, 0.0], [0.0, a]])
    r = math.exp(-c / eps)
    expected = c * r / (1 + r)  # 0.0023840...
    got = sinkhorn_distance(ops, x, x, eps=eps, variant=variant)
    # official adds 1e-6 inside the log and 1e-8 to mu: a relative change near 1e-6
    assert got == pytest.approx(expected, rel=1e-5)


def _official_loop(cost: np.ndarray, eps: float, max_iter: int, tol: float):
    """The authors' SinkhornDistance, written as they did (float32, a real break)."""
    n, m = cost.shape
    log_mu = np.log(np.full(n, 1.0 / n, dtype=np.float32) + 1e-8)
    log_nu = np.log(np.full(m, 1.0 / m, dtype=np.float32) + 1e-8)
    u = np.zeros(n, dtype=np.float32)
    v = np.zeros(m, dtype=np.float32)

    def big_m(u, v):
        return (-cost + u[:, None] + v[None, :]) / eps

    def lse(a):
        return np.log(np.exp(a).sum(-1) + 1e-6)

    nits = 0
    for _ in range(max_iter):
        u1 = u
        u = eps * (log_mu - lse(big_m(u, v))) + u
        v = eps * (log_nu - lse(big_m(u, v).T)) + v
        err = np.abs(u - u1).sum(-1).mean()
        nits += 1
        if err < tol:
            break
    pi = np.exp(big_m(u, v))
    return pi, nits


@pytest.mark.parametrize(
    ("seed", "scale", "tol", "max_iter"),
    [
        (0, 1.0, 0.1, 100),  # the official setting
        (1, 6.0, 0.1, 100),  # peaked distributions: more iterations
        (2, 6.0, 1e-3, 100),  # tighter tolerance
        (3, 6.0, 1e-9, 30),  # never meets tol: runs all max_iter
        (4, 1.0, 10.0, 100),  # stops after the first update
    ],
)
def test_masked_early_stop_equals_a_breaking_loop(seed, scale, tol, max_iter) -> None:
    rng = np.random.default_rng(seed)
    p = _softmax(scale * rng.normal(size=(8, 5))).astype(np.float32)
    q = _softmax(scale * rng.normal(size=(8, 5))).astype(np.float32)
    cost = cost_matrix(ops, p, q)
    expected_pi, expected_nits = _official_loop(cost, 0.01, max_iter, tol)
    pi, nits = sinkhorn_plan(ops, cost, eps=0.01, max_iter=max_iter, tol=tol, variant="official")
    assert float(nits) == expected_nits
    np.testing.assert_allclose(pi, expected_pi, rtol=1e-6, atol=1e-12)
    if tol < 1e-6:
        assert expected_nits == max_iter  # the case really runs to the end
    if tol > 1:
        assert expected_nits == 1


def test_without_tolerance_every_iteration_runs() -> None:
    rng = np.random.default_rng(5)
    cost = cost_matrix(ops, _softmax(rng.normal(size=(6, 4))), _softmax(rng.normal(size=(6, 4))))
    _, nits = sinkhorn_plan(ops, cost, max_iter=17, tol=None, variant="stable")
    assert nits == 17.0


@pytest.mark.parametrize("seed", [0, 2])
def test_official_and_stable_agree_where_the_official_converges(seed: int) -> None:
    # With the official rule (tol 0.1) both stop after a few updates, far from
    # the marginals, and the naive +1e-6 shifts those first updates; run to a
    # tight tolerance instead, which the official numerics also reach here.
    rng = np.random.default_rng(seed)
    p = _softmax(rng.normal(size=(16, 10))).astype(np.float32)
    q = _softmax(rng.normal(size=(16, 10))).astype(np.float32)
    cost = cost_matrix(ops, p, q)
    pi_official, nits = sinkhorn_plan(ops, cost, variant="official", tol=1e-5, max_iter=400)
    pi_stable, _ = sinkhorn_plan(ops, cost, variant="stable", tol=1e-5, max_iter=400)
    assert nits < 400  # converged
    np.testing.assert_allclose(pi_official.sum(axis=1), 1 / 16, atol=1e-4)
    np.testing.assert_allclose(pi_official, pi_stable, atol=1e-5)
    assert float(np.sum(pi_official * cost)) == pytest.approx(
        float(np.sum(pi_stable * cost)), rel=1e-4
    )


def test_naive_logsumexp_underflows_where_stable_does_not() -> None:
    # every cost >= 1 with eps 0.01: exp(-C/eps) <= e^-100, below float32's range
    # (the naive sum is then 1e-6 alone); the stable variant keeps the marginals
    cost = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 2.5], [3.0, 1.5, 1.0]], dtype=np.float32)
    pi_stable, _ = sinkhorn_plan(ops, cost, variant="stable", tol=None)
    np.testing.assert_allclose(pi_stable.sum(axis=1), 1 / 3, rtol=1e-5)
    # the exact optimum matches each row to its own column: cost 1 * (1/3) * 3
    assert float(np.sum(pi_stable * cost)) == pytest.approx(1.0, rel=1e-5)
    # first official update: u = eps (log(1/3 + 1e-8) - log(1e-6)), no trace of C
    pi, _ = sinkhorn_plan(ops, cost, variant="official", max_iter=1)
    u1 = 0.01 * (math.log(1 / 3) - math.log(1e-6))
    assert float(np.log(pi[0, 0]) * 0.01 + cost[0, 0]) == pytest.approx(u1 + u1, rel=1e-4)
