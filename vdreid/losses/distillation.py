"""Distillation between class distributions: the official code's ``kl_div``
misuse (VSD/VCD as the authors ran them), and the paper's true KL and JS.

Teacher distributions are always detached; the student carries the gradient.
"""

from __future__ import annotations

import math

from vdreid.ops import Ops, Tensor


def official_kl_div(
    ops: Ops, teacher_logits: Tensor, student_logits: Tensor, temperature: float = 1.0
) -> Tensor:
    """The official ``kl_div(input=softmax(teacher / T), target=softmax(student / T))``.

    torch's ``kl_div`` expects log-probabilities as ``input`` and averages
    element-wise by default, so the code computes

        mean over all B*K elements of q * (log q - P)

    with q = softmax(student / T) (the gradient flows here) and
    P = softmax(teacher / T) detached, probabilities, not logs. This is not a
    KL divergence: it is smallest near a uniform q and about 100x weaker
    than one. As in torch (xlogy), an element with q == 0 contributes 0.
    """
    p = ops.softmax(ops.stop_gradient(teacher_logits) / temperature, axis=-1)
    q = ops.softmax(student_logits / temperature, axis=-1)
    # log(q) where q > 0; q == 0 gets log(1) = 0, so 0 * log 0 counts as 0 with a finite gradient
    q_safe = q + ops.to_float(q == 0)
    return ops.mean(q * ops.log(q_safe) - q * p)


def kl_divergence(
    ops: Ops, teacher_logits: Tensor, student_logits: Tensor, temperature: float = 1.0
) -> Tensor:
    """T^2 * batchmean KL(softmax(teacher / T) || softmax(student / T)), teacher detached.

    Computed from log-softmax (no log of a rounded probability).
    """
    log_p = ops.log_softmax(ops.stop_gradient(teacher_logits) / temperature, axis=-1)
    log_q = ops.log_softmax(student_logits / temperature, axis=-1)
    batch = teacher_logits.shape[0]
    kl = ops.sum(ops.exp(log_p) * (log_p - log_q)) / batch
    return kl * (temperature * temperature)


def js_divergence(ops: Ops, logits_a: Tensor, logits_b: Tensor) -> Tensor:
    """batchmean JS(softmax(a) || softmax(b)); both sides carry gradients.

    JS = (KL(P || M) + KL(Q || M)) / 2 with M = (P + Q) / 2, all in log space:
    log M = logsumexp(log P, log Q) - log 2.
    """
    log_p = ops.log_softmax(logits_a, axis=-1)
    log_q = ops.log_softmax(logits_b, axis=-1)
    pair_shape = tuple(log_p.shape) + (1,)
    pair = ops.concat([ops.reshape(log_p, pair_shape), ops.reshape(log_q, pair_shape)], axis=-1)
    log_m = ops.logsumexp(pair, axis=-1) - math.log(2.0)
    batch = logits_a.shape[0]
    kl_pm = ops.sum(ops.exp(log_p) * (log_p - log_m))
    kl_qm = ops.sum(ops.exp(log_q) * (log_q - log_m))
    return 0.5 * (kl_pm + kl_qm) / batch
