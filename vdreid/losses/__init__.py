"""Every loss term of the MVD family, written once against :class:`vdreid.ops.Ops`.

The same code runs on numpy arrays (the oracle), torch tensors and
MindSpore tensors (inside ``ms.jit`` too); backends supply only an Ops.
:class:`LossSpec` says which terms a run uses; :func:`objective` evaluates
them on a forward's outputs.
"""

from vdreid.losses.classification import cross_entropy
from vdreid.losses.distillation import js_divergence, kl_divergence, official_kl_div
from vdreid.losses.geometry import compose_feature, l2_normalize, pairwise_distance
from vdreid.losses.objective import PATHS, check_outputs, objective, required_outputs
from vdreid.losses.ranking import batch_hard_triplet, ranked_list_loss
from vdreid.losses.sinkhorn import cost_matrix, sinkhorn_distance, sinkhorn_plan
from vdreid.losses.spec import (
    TERM_NAMES,
    CMLTerm,
    CrossEntropyTerm,
    LossSpec,
    PathWeights,
    RankedListTerm,
    TripletTerm,
    VCDTerm,
    VMLTerm,
    VSDTerm,
)

__all__ = [
    "PATHS",
    "TERM_NAMES",
    "CMLTerm",
    "CrossEntropyTerm",
    "LossSpec",
    "PathWeights",
    "RankedListTerm",
    "TripletTerm",
    "VCDTerm",
    "VMLTerm",
    "VSDTerm",
    "batch_hard_triplet",
    "check_outputs",
    "compose_feature",
    "cost_matrix",
    "cross_entropy",
    "js_divergence",
    "kl_divergence",
    "l2_normalize",
    "objective",
    "official_kl_div",
    "pairwise_distance",
    "ranked_list_loss",
    "required_outputs",
    "sinkhorn_distance",
    "sinkhorn_plan",
]
