"""Entropic optimal transport (Sinkhorn) for the CML term.

Both variants run the log-domain updates of the official ``SinkhornDistance``
with uniform marginals mu = nu = 1/n:

    M(u, v)_jk = (-C_jk + u_j + v_k) / eps
    u <- eps (log mu - lse_k M(u, v)) + u
    v <- eps (log nu - lse_j M(u, v)) + v        (with the new u)
    pi = exp(M(u, v)),  cost = sum(pi * C)

``official`` reproduces the authors' numerics: lse(A) = log(sum(exp(A)) + 1e-6)
without a max shift (it underflows to log(1e-6) once every exp(A) is below
float32's range, i.e. when costs are large against eps), and log(mu + 1e-8)
as float32 computes it. ``stable`` uses the max-shifted logsumexp and log(mu).

Stopping: after each full (u, v) update, stop when sum_j |u_new - u_old|_j
< tol (the official rule, tol 0.1, at most 100 iterations); ``tol=None``
always runs ``max_iter`` iterations. The loop is a fixed-count Python loop:
after the stop, every update is frozen with ``where``, so values and
gradients equal the early-stopped computation while the graph stays static
(no host synchronisation; it traces inside ``ms.jit``). Gradients flow
through the unrolled iterations, as in the official code.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from vdreid.ops import Ops, Tensor

SinkhornVariant = Literal["official", "stable"]

NAIVE_LSE_EPS = 1e-6  # official: log(sum(exp(A)) + 1e-6)
MARGINAL_LOG_EPS = 1e-8  # official: log(mu + 1e-8)


def cost_matrix(ops: Ops, x: Tensor, y: Tensor) -> Tensor:
    """C_jk = sum_d |x_jd - y_kd|^2 for rows of ``x`` (n, D) and ``y`` (m, D)."""
    n, dim = x.shape
    m = y.shape[0]
    diff = ops.reshape(x, (n, 1, dim)) - ops.reshape(y, (1, m, dim))
    return ops.sum(ops.abs(diff) ** 2, axis=-1)


def _log_marginal(n: int, variant: SinkhornVariant) -> float:
    if variant == "official":
        # the official code builds mu in float32 and adds 1e-8 before the log
        return float(np.log(np.float32(1.0 / n) + np.float32(MARGINAL_LOG_EPS)))
    return float(np.log(1.0 / n))


def sinkhorn_plan(
    ops: Ops,
    cost: Tensor,
    *,
    eps: float = 0.01,
    max_iter: int = 100,
    tol: float | None = 0.1,
    variant: SinkhornVariant = "official",
) -> tuple[Tensor, Tensor | float]:
    """Transport plan pi (n, m) for ``cost`` (n, m) and the number of updates applied.

    The count (the official ``actual_nits``) is a 0-d float tensor, or the
    Python float ``max_iter`` when ``tol`` is None.
    """
    n, m = cost.shape
    log_mu = _log_marginal(n, variant)
    log_nu = _log_marginal(m, variant)

    def lse(a: Tensor) -> Tensor:
        if variant == "official":
            return ops.log(ops.sum(ops.exp(a), axis=-1) + NAIVE_LSE_EPS)
        return ops.logsumexp(a, axis=-1)

    def scaled(u: Tensor | None, v: Tensor | None) -> Tensor:
        # None stands for the zero potentials the loop starts from (adding 0 is exact)
        a = -cost
        if u is not None:
            a = a + ops.reshape(u, (n, 1))
        if v is not None:
            a = a + ops.reshape(v, (1, m))
        return a / eps

    # iteration 1 always runs, from u = v = 0; it gives u and v their tensor shape
    u = eps * (log_mu - lse(scaled(None, None)))
    v = eps * (log_nu - lse(ops.transpose(scaled(u, None))))
    running = _still_running(ops, ops.sum(ops.abs(u)), tol, None)
    iterations: Tensor | float = 1.0
    for _ in tuple(range(max_iter - 1)):
        u_new = eps * (log_mu - lse(scaled(u, v))) + u
        v_new = eps * (log_nu - lse(ops.transpose(scaled(u_new, v)))) + v
        if running is None:
            u, v = u_new, v_new
            iterations = iterations + 1.0
            continue
        err = ops.sum(ops.abs(u_new - u))
        keep = running > 0.5
        u = ops.where(keep, u_new, u)
        v = ops.where(keep, v_new, v)
        iterations = iterations + running
        running = _still_running(ops, err, tol, running)

    return ops.exp(scaled(u, v)), iterations


def _still_running(
    ops: Ops, err: Tensor, tol: float | None, running: Tensor | None
) -> Tensor | None:
    """1.0 while the loop has not met ``err < tol``; None when it never stops early.

    ``err < tol`` (not ``err >= tol``) so a NaN error keeps iterating, as the
    official ``if err.item() < thresh: break`` does.
    """
    if tol is None:
        return None
    go_on = 1.0 - ops.to_float(err < tol)
    return go_on if running is None else running * go_on


def sinkhorn_distance(
    ops: Ops,
    x: Tensor,
    y: Tensor,
    *,
    eps: float = 0.01,
    max_iter: int = 100,
    tol: float | None = 0.1,
    variant: SinkhornVariant = "official",
) -> Tensor:
    """sum(pi * C) between the rows of ``x`` (n, D) and ``y`` (m, D), C = |x_j - y_k|^2."""
    cost = cost_matrix(ops, x, y)
    pi, _ = sinkhorn_plan(ops, cost, eps=eps, max_iter=max_iter, tol=tol, variant=variant)
    return ops.sum(pi * cost)
