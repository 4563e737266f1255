"""Cross entropy, the ranked-list loss and the batch-hard triplet on NumpyOps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vdreid.losses import batch_hard_triplet, cross_entropy, ranked_list_loss
from vdreid.ops import NumpyOps

ops = NumpyOps()
LN2, LN3, SQRT2 = math.log(2), math.log(3), math.sqrt(2)


def test_cross_entropy_by_hand() -> None:
    # row 0: uniform over 3 classes, label 0 -> every log-prob is -ln 3
    # row 1: softmax([ln 2, 0, 0]) = [1/2, 1/4, 1/4], label 1
    logits = np.array([[0.0, 0.0, 0.0], [LN2, 0.0, 0.0]])
    labels = np.array([0, 1])
    plain = cross_entropy(ops, logits, labels)
    assert plain == pytest.approx((LN3 + math.log(4)) / 2)
    # eps 0.3, K 3: targets (1 - 0.3) one_hot + 0.1
    # row 0: targets [0.8, 0.1, 0.1] all against -ln 3 -> ln 3
    # row 1: targets [0.1, 0.8, 0.1] -> 0.1 ln 2 + 0.8 ln 4 + 0.1 ln 4 = 1.9 ln 2
    smooth = cross_entropy(ops, logits, labels, label_smoothing=0.3)
    assert smooth == pytest.approx((LN3 + 1.9 * LN2) / 2)


def _square() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # unit vectors at 0, 90, 180, 270 degrees: neighbours sqrt(2) apart, opposites 2
    x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]], dtype=np.float32)
    labels = np.array([0, 0, 0, 1])
    modality = np.array([0, 0, 1, 1])
    return x, labels, modality


def test_ranked_list_loss_by_hand() -> None:
    x, labels, modality = _square()
    e = 1e-5
    a1, a2 = 2.2, 2.0
    pos_intra = SQRT2 - (a1 - 0.9)  # [d - (a1 - m1)]+ at d = sqrt 2: 0.1142
    cross_at = {d: max(d - (a2 - 1.0), 0.0) for d in (SQRT2, 2.0)}  # [d - (a2 - m2)]+

    def neg(alpha: float, d: float) -> float:  # one negative inside the boundary
        w = math.exp(alpha - d)
        return w * (alpha - d) / (w + e)

    # anchor 0 (id 0, visible): intra pos x1 (sqrt 2), cross pos x2 (2);
    #   cross neg x3 (sqrt 2 < a2); no intra negatives -> 0 / (0 + 1e-5) = 0
    a0 = pos_intra / (1 + e) + cross_at[2.0] / (1 + e) + neg(a2, SQRT2)
    # anchor 1 (id 0, visible): intra pos x0, cross pos x2 (sqrt 2); cross neg x3 at d = 2 is
    #   not < a2, so no negative term
    a1_loss = pos_intra / (1 + e) + cross_at[SQRT2] / (1 + e)
    # anchor 2 (id 0, infrared): cross pos x0 (2) and x1 (sqrt 2); intra neg x3 (sqrt 2 < a1)
    a2_loss = (cross_at[2.0] + cross_at[SQRT2]) / (2 + e) + neg(a1, SQRT2)
    # anchor 3 (id 1, infrared): no positives; intra neg x2 (sqrt 2), cross negs x0
    #   (sqrt 2, inside) and x1 (2, outside)
    a3 = neg(a1, SQRT2) + neg(a2, SQRT2)
    expected = (a0 + a1_loss + a2_loss + a3) / 4

    got = ranked_list_loss(ops, x, labels, modality)
    assert got == pytest.approx(expected, rel=1e-5)
    # features are L2-normalised first: scale does not matter
    assert ranked_list_loss(ops, 3.0 * x, labels, modality) == pytest.approx(expected, rel=1e-5)


def _ranked_list_per_anchor(x, labels, modality, m1=0.9, m2=1.0, a1=2.2, a2=2.0, t=1.0):
    """The official loop: one anchor at a time with boolean indexing."""
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sq = (x * x).sum(1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 1e-12))
    total = 0.0
    for i in range(len(x)):
        is_pos = labels == labels[i]
        is_pos[i] = False
        is_neg = labels != labels[i]
        intra = modality == modality[i]
        cross = ~intra
        ap_intra = np.maximum(d[i][is_pos & intra] + (m1 - a1), 0)
        ap_cross = np.maximum(d[i][is_pos & cross] + (m2 - a2), 0)
        loss = ap_intra.sum() / (ap_intra.size + 1e-5) + ap_cross.sum() / (ap_cross.size + 1e-5)
        for mask, alpha in ((is_neg & intra, a1), (is_neg & cross, a2)):
            an = d[i][mask]
            an = an[an < alpha]
            w = np.exp(t * (alpha - an))
            loss += (w * (alpha - an)).sum() / (w.sum() + 1e-5)
        total += loss
    return total / len(x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranked_list_loss_equals_the_per_anchor_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 12
    # 4 ids over both modalities, and one id seen in one modality only
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4])
    modality = np.array([0, 1, 1, 0, 0, 1, 1, 0, 1, 0, 1, 0])
    # clustered features so some distances fall inside, some outside the boundaries
    x = rng.normal(size=(n, 5)) + 1.5 * rng.normal(size=(5, 5))[labels]
    params = (
        dict(m1=0.9, m2=1.0, a1=2.2, a2=2.0, t=1.0)
        if seed
        else dict(m1=0.5, m2=0.7, a1=1.4, a2=1.2, t=2.0)
    )
    expected = _ranked_list_per_anchor(x, labels, modality, **params)
    got = ranked_list_loss(
        ops,
        x,
        labels,
        modality,
        margin_intra=params["m1"],
        margin_cross=params["m2"],
        alpha_intra=params["a1"],
        alpha_cross=params["a2"],
        temperature=params["t"],
    )
    assert got == pytest.approx(expected, rel=1e-7)


def test_batch_hard_triplet_by_hand() -> None:
    # points on a line (plus one off it): ids 0 = {x0, x1}, 1 = {x2, x3}
    x = np.array([[0.0, 0.0], [2.0, 0.0], [3.0, 0.0], [3.0, 1.0]])
    labels = np.array([0, 0, 1, 1])
    # d01 = 2, d02 = 3, d03 = sqrt 10, d12 = 1, d13 = sqrt 2, d23 = 1
    # anchor 0: [2 - min(3, sqrt 10) + 0.3]+ = 0
    # anchor 1: [2 - min(1, sqrt 2) + 0.3]+ = 1.3
    # anchor 2: [1 - min(3, 1) + 0.3]+ = 0.3
    # anchor 3: [1 - min(sqrt 10, sqrt 2) + 0.3]+ = 0
    assert batch_hard_triplet(ops, x, labels, margin=0.3) == pytest.approx(1.6 / 4)
    # features are NOT normalised: doubling them doubles distances
    # anchor 1: [4 - 2 + 0.3] = 2.3; anchor 2: [2 - 2 + 0.3] = 0.3; others stay 0
    assert batch_hard_triplet(ops, 2 * x, labels, margin=0.3) == pytest.approx(2.6 / 4)


def test_batch_hard_triplet_anchor_alone_uses_itself_as_positive() -> None:
    # id 1 has one sample: its hardest positive is itself at sqrt(1e-12) = 1e-6
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.0]])
    labels = np.array([0, 0, 1])
    # anchor 0: [1 - 0.5 + 0.3] = 0.8; anchor 1: same; anchor 2: [1e-6 - 0.5 + 0.3]+ = 0
    assert batch_hard_triplet(ops, x, labels, margin=0.3) == pytest.approx(1.6 / 3)
