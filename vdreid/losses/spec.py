"""LossSpec: which loss terms a training run uses, their weights and parameters.

A LossSpec is a frozen pydantic model, so it travels as JSON (configs,
checkpoint metadata) and compares by value. A term set to ``None`` is off.
Every term's ``weight`` multiplies its raw value in the total; path weights
(V, I, Sx, Sg) are applied inside the per-path terms (CE, RANK, TRIPLET),
to the observation and the representation alike.

The named loss of each preset lives in vdreid.presets.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vdreid.errors import SpecError

# The order terms are reported in and summed into the total (the official
# code's order: CE, rank, CML, VSD, VCD; then the paper's VML and the port's
# triplet).
TERM_NAMES: tuple[str, ...] = ("ce", "rank", "cml", "vsd", "vcd", "vml", "triplet")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CrossEntropyTerm(_Frozen):
    """Label-smoothed cross entropy on ``logits`` and ``z_logits`` of every path."""

    weight: float = Field(1.0, ge=0)
    label_smoothing: float = Field(0.1, ge=0, lt=1, description="0 = plain cross entropy")


class RankedListTerm(_Frozen):
    """The official modality-split ranked-list loss on ``feat`` and ``z`` of every path."""

    weight: float = Field(1.0, ge=0)
    margin_intra: float = Field(0.9, description="m1: same-modality positives")
    margin_cross: float = Field(1.0, description="m2: cross-modality positives")
    alpha_intra: float = Field(2.2, gt=0, description="a1: same-modality boundary")
    alpha_cross: float = Field(2.0, gt=0, description="a2: cross-modality boundary")
    temperature: float = Field(1.0, gt=0, description="negatives weighted by exp(t (a - d))")


class TripletTerm(_Frozen):
    """Batch-hard triplet on un-normalised ``feat`` and ``z`` of every path."""

    weight: float = Field(1.0, ge=0)
    margin: float = Field(0.3, ge=0)


class CMLTerm(_Frozen):
    """Sinkhorn cost between softmax(I.logits) and softmax(V.logits) rows."""

    weight: float = Field(8.0, ge=0)
    sinkhorn: Literal["official", "stable"] = Field(
        "official",
        description="official: naive log(sum(exp) + 1e-6); stable: max-shifted logsumexp",
    )
    eps: float = Field(0.01, gt=0, description="entropic regularisation")
    max_iter: int = Field(100, ge=1)
    tol: float | None = Field(
        0.1, gt=0, description="stop when sum |du| < tol; None = always max_iter iterations"
    )


class VSDTerm(_Frozen):
    """Variational self-distillation: obs -> z within I and within V."""

    weight: float = Field(2.0, ge=0)
    form: Literal["official", "kl"] = Field(
        "official", description="official: the code's kl_div misuse; kl: T^2 batchmean KL"
    )
    temperature: float = Field(1.0, gt=0)


class VCDTerm(_Frozen):
    """Variational cross-distillation: Sx obs -> Sg z and Sg obs -> Sx z."""

    weight: float = Field(2.0, ge=0)
    form: Literal["official", "kl"] = "official"


class VMLTerm(_Frozen):
    """Variational mutual learning: batchmean JS(P_z of Sx || P_z of Sg)."""

    weight: float = Field(2.0, ge=0)


class PathWeights(_Frozen):
    V: float = Field(0.5, ge=0)
    I: float = Field(0.5, ge=0)  # noqa: E741 - the path is called I
    Sx: float = Field(0.25, ge=0)
    Sg: float = Field(0.25, ge=0)


class LossSpec(_Frozen):
    ce: CrossEntropyTerm | None = None
    rank: RankedListTerm | None = None
    cml: CMLTerm | None = None
    vsd: VSDTerm | None = None
    vcd: VCDTerm | None = None
    vml: VMLTerm | None = None
    triplet: TripletTerm | None = None
    path_weights: PathWeights = PathWeights()

    @model_validator(mode="after")
    def _at_least_one_term(self) -> LossSpec:
        if not self.terms():
            raise ValueError(f"a loss spec needs at least one of the terms {list(TERM_NAMES)}")
        return self

    def terms(self) -> tuple[str, ...]:
        """Names of the terms that are on, in :data:`TERM_NAMES` order."""
        return tuple(name for name in TERM_NAMES if getattr(self, name) is not None)

    def weights(self) -> dict[str, float]:
        return {name: getattr(self, name).weight for name in self.terms()}

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> LossSpec:
        try:
            return cls.model_validate_json(text)
        except ValidationError as err:
            raise SpecError(
                f"the loss spec JSON is not valid ({err.error_count()} problem(s)):\n{err}\n"
                "Write it with LossSpec.to_json() or start from vdreid.presets.recipe(name).loss."
            ) from None
