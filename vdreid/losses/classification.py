"""Identity classification: cross entropy with label smoothing."""

from __future__ import annotations

from vdreid.ops import Ops, Tensor


def cross_entropy(ops: Ops, logits: Tensor, labels: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Mean over the batch of -sum_k t_k log softmax(logits)_k.

    Targets t = (1 - eps) one_hot(label) + eps / K (Szegedy et al.), as the
    official ``CrossEntropyLabelSmooth``; ``label_smoothing=0`` is the plain
    cross entropy the MindSpore port uses. ``logits`` (B, K), ``labels`` (B,)
    integers in 0..K-1.
    """
    num_classes = logits.shape[-1]
    log_probs = ops.log_softmax(logits, axis=-1)
    targets = ops.one_hot(labels, num_classes)
    if label_smoothing:
        targets = (1.0 - label_smoothing) * targets + label_smoothing / num_classes
    return ops.sum(ops.mean(-targets * log_probs, axis=0))
