"""Feature geometry, written once against Ops: L2 normalisation, the
retrieval feature built from normalised blocks, pairwise Euclidean distances
and "same value" masks between batch entries.

The metric-learning terms, the numpy oracle, evaluation and every backend's
model use these (the models run them on their own tensors, inside compiled
graphs and exported files too). The formulas follow the official code
(``x / (torch.norm(x) + 1e-12)`` and the ``xx + yy - 2 x y^T`` distance clamped at
1e-12 before the square root), so the ranked-list loss sees the same
distances the authors' code did.
"""

from __future__ import annotations

from collections.abc import Sequence

from vdreid.ops import Ops, Tensor

NORM_EPS = 1e-12  # the official code: x / (||x|| + 1e-12)
DIST2_FLOOR = 1e-12  # squared distances clamped here before sqrt (finite gradient at 0)


def l2_normalize(ops: Ops, x: Tensor) -> Tensor:
    """Rows of ``x`` (B, D) scaled to unit L2 norm: x / (||x|| + 1e-12), as
    the official code does. An all-zero row stays zero, with a finite
    gradient (:func:`row_norm`)."""
    return x / (row_norm(ops, x) + NORM_EPS)


def row_norm(ops: Ops, x: Tensor) -> Tensor:
    """(B, 1) L2 norms of the rows of ``x``, with the gradient ``torch.norm``
    gives: 0 at an all-zero row. sqrt's derivative is infinite at 0 (and
    inf x 0 is NaN), so a zero row takes the root of 1 instead and is masked
    to 0; every other row's value is sqrt(sum x^2), bit for bit."""
    squares = ops.sum(x * x, axis=1, keepdims=True)
    zero = ops.to_float(squares <= 0.0)
    return ops.sqrt(squares + zero) * (1.0 - zero)


def compose_feature(ops: Ops, blocks: Sequence[Tensor], per_block: bool) -> Tensor:
    """The retrieval feature from the ``{path}.feat`` blocks, in the recipe's
    order (FeatureRecipe): concatenated and L2-normalised as a whole, or each
    block normalised first (``per_block``)."""
    if per_block:
        return ops.concat([l2_normalize(ops, b) for b in blocks], axis=1)
    return l2_normalize(ops, ops.concat(list(blocks), axis=1))


def pairwise_distance(ops: Ops, x: Tensor) -> Tensor:
    """(B, B) Euclidean distances between the rows of ``x`` (B, D).

    sqrt(clamp(|x_i|^2 + |x_j|^2 - 2 x_i.x_j, 1e-12)): the diagonal is
    1e-6, not 0, exactly as in the official code.
    """
    sq = ops.sum(x * x, axis=1, keepdims=True)
    d2 = sq + ops.transpose(sq) - 2.0 * ops.matmul(x, ops.transpose(x))
    return ops.sqrt(ops.clip(d2, lo=DIST2_FLOOR))


def same_mask(ops: Ops, values: Tensor) -> Tensor:
    """(B, B) float mask, 1 where ``values[i] == values[j]`` (labels or modality)."""
    n = values.shape[0]
    return ops.to_float(ops.reshape(values, (n, 1)) == ops.reshape(values, (1, n)))
