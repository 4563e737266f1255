"""Every loss term of the MVD family, written once against :class:`vdreid.ops.Ops`.

The same code runs on numpy arrays (the oracle), torch tensors and
MindSpore tensors (inside ``ms.jit`` too); backends supply only an Ops.
:class:`LossSpec` says which terms a run uses.
"""

from vdreid.losses.classification import cross_entropy
from vdreid.losses.geometry import l2_normalize, pairwise_distance
from vdreid.losses.ranking import batch_hard_triplet, ranked_list_loss
from vdreid.losses.spec import (
    LOSS_PRESETS,
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
    get_loss_preset,
)

__all__ = [
    "LOSS_PRESETS",
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
    "cross_entropy",
    "get_loss_preset",
    "l2_normalize",
    "pairwise_distance",
    "ranked_list_loss",
]
