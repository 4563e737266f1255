"""VSD / VCD / VML divergences on NumpyOps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vdreid.losses import js_divergence, kl_divergence, official_kl_div
from vdreid.ops import NumpyOps

ops = NumpyOps()
LN3 = math.log(3)
# teacher softmax([0, 0]) = P = [1/2, 1/2]; student softmax([ln 3, 0]) = q = [3/4, 1/4]
TEACHER = np.array([[0.0, 0.0]])
STUDENT = np.array([[LN3, 0.0]])


def test_official_kl_div_by_hand() -> None:
    # mean over the 2 elements of q (log q - P), P the probabilities themselves
    expected = (0.75 * (math.log(0.75) - 0.5) + 0.25 * (math.log(0.25) - 0.5)) / 2
    assert official_kl_div(ops, TEACHER, STUDENT) == pytest.approx(expected)


def test_official_kl_div_is_the_elementwise_mean_over_the_batch() -> None:
    rng = np.random.default_rng(0)
    t, s = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    temperature = 2.0
    p = np.exp(t / temperature) / np.exp(t / temperature).sum(1, keepdims=True)
    q = np.exp(s / temperature) / np.exp(s / temperature).sum(1, keepdims=True)
    expected = np.mean(q * (np.log(q) - p))  # over all 5 * 7 elements
    assert official_kl_div(ops, t, s, temperature) == pytest.approx(expected, rel=1e-12)


def test_official_kl_div_counts_a_zero_probability_as_zero() -> None:
    # student softmax underflows to exactly 0 in float32 for one class
    student = np.array([[0.0, -200.0]], dtype=np.float32)
    teacher = np.array([[0.0, 0.0]], dtype=np.float32)
    # q = [1, 0]: elements 1 * (log 1 - 1/2) and 0 (not 0 * -inf = nan)
    assert official_kl_div(ops, teacher, student) == pytest.approx(-0.25)


def test_kl_divergence_by_hand_with_temperature() -> None:
    # KL(P || q) = 1/2 ln((1/2)/(3/4)) + 1/2 ln((1/2)/(1/4)) = 1/2 ln(4/3)
    assert kl_divergence(ops, TEACHER, STUDENT) == pytest.approx(0.5 * math.log(4 / 3))
    # T = 2 on doubled logits gives the same distributions, times T^2 = 4
    assert kl_divergence(ops, 2 * TEACHER, 2 * STUDENT, 2.0) == pytest.approx(2 * math.log(4 / 3))
    # batchmean: two identical rows give the same value as one
    both = kl_divergence(ops, np.repeat(TEACHER, 2, 0), np.repeat(STUDENT, 2, 0))
    assert both == pytest.approx(0.5 * math.log(4 / 3))


def test_js_divergence_by_hand() -> None:
    # M = (P + q) / 2 = [5/8, 3/8]
    kl_pm = 0.5 * math.log(0.5 / 0.625) + 0.5 * math.log(0.5 / 0.375)
    kl_qm = 0.75 * math.log(0.75 / 0.625) + 0.25 * math.log(0.25 / 0.375)
    expected = 0.5 * (kl_pm + kl_qm)
    assert js_divergence(ops, TEACHER, STUDENT) == pytest.approx(expected)
    assert js_divergence(ops, STUDENT, TEACHER) == pytest.approx(expected)  # symmetric
    assert js_divergence(ops, STUDENT, STUDENT) == pytest.approx(0.0, abs=1e-15)


def test_js_divergence_stays_finite_for_disjoint_peaks() -> None:
    # probabilities underflow to 0 in float32; log space keeps JS at its bound ln 2
    a = np.array([[100.0, -100.0]], dtype=np.float32)
    b = np.array([[-100.0, 100.0]], dtype=np.float32)
    assert js_divergence(ops, a, b) == pytest.approx(math.log(2), rel=1e-6)
