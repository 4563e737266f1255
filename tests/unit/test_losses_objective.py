"""objective(): which outputs feed which term, path weights, the weighted total."""

from __future__ import annotations

import numpy as np
import pytest

from vdreid.errors import SpecError
from vdreid.losses import (
    CrossEntropyTerm,
    LossSpec,
    PathWeights,
    RankedListTerm,
    check_outputs,
    cross_entropy,
    objective,
    ranked_list_loss,
    required_outputs,
)
from vdreid.ops import NumpyOps
from vdreid.presets import RECIPES, recipe

ops = NumpyOps()
PATHS = ("V", "I", "Sx", "Sg")
LABELS = np.array([0, 0, 1, 1, 2, 2, 3, 3])
MODALITY = np.array([0, 1, 0, 1, 0, 1, 0, 1])


def _outputs(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for p in PATHS:
        out[f"{p}.global"] = rng.normal(size=(8, 6)).astype(np.float32)
        out[f"{p}.feat"] = rng.normal(size=(8, 6)).astype(np.float32)
        out[f"{p}.logits"] = rng.normal(size=(8, 4)).astype(np.float32)
        out[f"{p}.z"] = rng.normal(size=(8, 5)).astype(np.float32)
        out[f"{p}.z_logits"] = rng.normal(size=(8, 4)).astype(np.float32)
    out["test_feature"] = rng.normal(size=(8, 24)).astype(np.float32)
    return out


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_returns_every_term_and_the_weighted_total(name: str) -> None:
    spec = recipe(name).loss
    result = objective(ops, spec, _outputs(), LABELS, MODALITY)
    assert set(result) == set(spec.terms()) | {"total"}
    weighted = sum(spec.weights()[t] * float(result[t]) for t in spec.terms())
    assert float(result["total"]) == pytest.approx(weighted, rel=1e-6)
    assert all(np.isfinite(float(v)) for v in result.values())


def test_term_weights_scale_only_the_total() -> None:
    base = recipe("official").loss
    heavier = base.model_copy(update={"cml": base.cml.model_copy(update={"weight": 3.0})})
    a = objective(ops, base, _outputs(), LABELS, MODALITY)
    b = objective(ops, heavier, _outputs(), LABELS, MODALITY)
    assert float(b["cml"]) == float(a["cml"])
    assert float(b["total"]) == pytest.approx(float(a["total"]) - 5.0 * float(a["cml"]), rel=1e-6)


# output perturbed -> the terms that must change (every other term must not)
READS = {
    "V.feat": {"rank", "triplet"},
    "Sg.z": {"rank", "triplet"},
    "V.global": set(),
    "I.logits": {"ce", "cml", "vsd"},
    "V.logits": {"ce", "cml", "vsd"},
    "I.z_logits": {"ce", "vsd"},
    "Sx.logits": {"ce", "vcd"},
    "Sg.logits": {"ce", "vcd"},
    "Sx.z_logits": {"ce", "vcd", "vml"},
    "Sg.z_logits": {"ce", "vcd", "vml"},
    "test_feature": set(),
}


@pytest.mark.parametrize("key", sorted(READS))
def test_each_term_reads_the_outputs_the_method_names(key: str) -> None:
    spec = recipe("paper").loss.model_copy(update={"triplet": recipe("msport").loss.triplet})
    outputs = _outputs()
    before = objective(ops, spec, outputs, LABELS, MODALITY)
    changed = dict(outputs)
    changed[key] = outputs[key] + np.random.default_rng(1).normal(size=outputs[key].shape).astype(
        np.float32
    )
    after = objective(ops, spec, changed, LABELS, MODALITY)
    moved = {t for t in spec.terms() if float(after[t]) != float(before[t])}
    assert moved == READS[key]


def test_path_weights_multiply_observation_plus_representation() -> None:
    outputs = _outputs()
    # only the V path counts, with weight 2
    weights = PathWeights(V=2.0, I=0.0, Sx=0.0, Sg=0.0)
    spec = LossSpec(
        ce=CrossEntropyTerm(label_smoothing=0.1), rank=RankedListTerm(), path_weights=weights
    )
    result = objective(ops, spec, outputs, LABELS, MODALITY)
    ce_v = cross_entropy(ops, outputs["V.logits"], LABELS, 0.1) + cross_entropy(
        ops, outputs["V.z_logits"], LABELS, 0.1
    )
    rank_v = ranked_list_loss(ops, outputs["V.feat"], LABELS, MODALITY) + ranked_list_loss(
        ops, outputs["V.z"], LABELS, MODALITY
    )
    assert float(result["ce"]) == pytest.approx(2.0 * float(ce_v), rel=1e-6)
    assert float(result["rank"]) == pytest.approx(2.0 * float(rank_v), rel=1e-6)


def test_required_outputs_of_the_official_loss() -> None:
    needed = required_outputs(recipe("official").loss)
    assert needed == tuple(
        sorted(f"{p}.{n}" for p in PATHS for n in ("feat", "logits", "z", "z_logits"))
    )
    msport = required_outputs(recipe("msport").loss)
    assert "V.feat" in msport and "Sg.z_logits" in msport


def test_check_outputs_names_what_is_missing() -> None:
    spec = recipe("official").loss
    names = [k for k in _outputs() if not k.endswith(".z") and not k.endswith(".z_logits")]
    with pytest.raises(SpecError) as err:
        check_outputs(spec, names)
    message = str(err.value)
    missing = [f"{p}.{n}" for p in PATHS for n in ("z", "z_logits")]
    assert str(sorted(missing)) in message  # what is missing
    assert str(sorted(names)) in message  # what it received
    check_outputs(spec, _outputs())  # complete: no error


def test_objective_without_a_needed_output_raises_key_error() -> None:
    outputs = _outputs()
    del outputs["Sx.z_logits"]
    with pytest.raises(KeyError, match="Sx.z_logits"):
        objective(ops, recipe("official").loss, outputs, LABELS, MODALITY)
