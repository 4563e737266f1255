"""Metric-learning terms: the official modality-split ranked-list loss and the
MindSpore port's batch-hard triplet loss. Both are vectorised over anchors
with (B, B) masks; no Python loop over the batch.
"""

from __future__ import annotations

from vdreid.losses.geometry import l2_normalize, pairwise_distance, same_mask
from vdreid.ops import Ops, Tensor

COUNT_EPS = 1e-5  # the official code divides sums by (count + 1e-5)


def ranked_list_loss(
    ops: Ops,
    features: Tensor,
    labels: Tensor,
    modality: Tensor,
    *,
    margin_intra: float = 0.9,
    margin_cross: float = 1.0,
    alpha_intra: float = 2.2,
    alpha_cross: float = 2.0,
    temperature: float = 1.0,
) -> Tensor:
    """The official ``Rank_loss`` on L2-normalised ``features`` (B, D).

    For anchor i, with d the distances, positives sharing its label (self
    excluded) and negatives not sharing it, each split into same-modality
    ("intra", margin m1, boundary a1) and cross-modality ("cross", m2, a2):

        pos(i) = sum_intra [d - (a1 - m1)]+ / (n_intra + 1e-5)
               + sum_cross [d - (a2 - m2)]+ / (n_cross + 1e-5)
        neg(i) = sum w (a1 - d) / (sum w + 1e-5)   over intra negatives with d < a1
               + the same with a2 over cross negatives with d < a2,
                 w = exp(t (a - d))

    and the loss is the mean over anchors of pos(i) + neg(i).
    """
    x = l2_normalize(ops, features)
    d = pairwise_distance(ops, x)
    same_label = same_mask(ops, labels)
    intra = same_mask(ops, modality)
    cross = 1.0 - intra
    positive = same_label * (1.0 - ops.eye(d.shape[0]))
    negative = 1.0 - same_label

    def pos_term(mask: Tensor, margin: float, alpha: float) -> Tensor:
        hinge = ops.clip(d + (margin - alpha), lo=0.0)
        return ops.sum(mask * hinge, axis=1) / (ops.sum(mask, axis=1) + COUNT_EPS)

    def neg_term(mask: Tensor, alpha: float) -> Tensor:
        # d >= 0, so exp(t (alpha - d)) <= exp(t alpha): no overflow anywhere
        inside = mask * ops.to_float(d < alpha)
        w = inside * ops.exp(temperature * (alpha - d))
        return ops.sum(w * (alpha - d), axis=1) / (ops.sum(w, axis=1) + COUNT_EPS)

    loss_pos = pos_term(positive * intra, margin_intra, alpha_intra) + pos_term(
        positive * cross, margin_cross, alpha_cross
    )
    loss_neg = neg_term(negative * intra, alpha_intra) + neg_term(negative * cross, alpha_cross)
    return ops.mean(loss_pos + loss_neg)


def batch_hard_triplet(ops: Ops, features: Tensor, labels: Tensor, margin: float = 0.3) -> Tensor:
    """Mean over anchors of [d(a, hardest positive) - d(a, hardest negative) + margin]+.

    Euclidean distances on the un-normalised ``features`` (B, D), mined over
    the whole mixed-modality batch. The hardest positive is the farthest
    sample with the anchor's label (the anchor itself, at 1e-6, when it is
    alone); the hardest negative is the nearest sample with another label.

    The MindSpore port's ``MarginRankingLoss`` computes [d_an - d_ap + m]+,
    the sign flipped against torch's; this is the standard (Hermans et al.)
    direction.
    """
    d = pairwise_distance(ops, features)
    same_label = same_mask(ops, labels)
    hardest_pos = ops.max(d * same_label, axis=1)
    # lift every positive above the row's largest distance, so min finds a negative
    lifted = d + same_label * ops.max(d, axis=1, keepdims=True)
    hardest_neg = ops.min(lifted, axis=1)
    return ops.mean(ops.clip(hardest_pos - hardest_neg + margin, lo=0.0))
