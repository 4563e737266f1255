"""LossSpec: presets, JSON round trip, validation."""

from __future__ import annotations

import pydantic
import pytest

from vdreid.errors import SpecError
from vdreid.losses import LossSpec, TripletTerm
from vdreid.presets import RECIPES, recipe


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_json_round_trip_keeps_every_preset(name: str) -> None:
    spec = recipe(name).loss
    text = spec.to_json()
    back = LossSpec.from_json(text)
    assert back == spec
    assert back.to_json() == text


def test_official_preset_is_the_authors_weights_and_forms() -> None:
    spec = recipe("official").loss
    assert spec.terms() == ("ce", "rank", "cml", "vsd", "vcd")
    assert spec.weights() == {"ce": 1.0, "rank": 1.0, "cml": 8.0, "vsd": 2.0, "vcd": 2.0}
    assert spec.ce.label_smoothing == 0.1
    r = spec.rank
    assert (r.margin_intra, r.margin_cross, r.alpha_intra, r.alpha_cross) == (0.9, 1.0, 2.2, 2.0)
    c = spec.cml
    assert (c.sinkhorn, c.eps, c.max_iter, c.tol) == ("official", 0.01, 100, 0.1)
    assert spec.vsd.form == "official" and spec.vcd.form == "official"
    pw = spec.path_weights
    assert (pw.V, pw.I, pw.Sx, pw.Sg) == (0.5, 0.5, 0.25, 0.25)


def test_paper_preset_adds_vml_true_kl_and_stable_sinkhorn() -> None:
    spec = recipe("paper").loss
    assert spec.terms() == ("ce", "rank", "cml", "vsd", "vcd", "vml")
    assert spec.weights()["vml"] == 2.0
    assert spec.vsd.form == "kl" and spec.vcd.form == "kl"
    assert spec.cml.sinkhorn == "stable"


def test_msport_preset_is_plain_ce_and_triplet_without_distillation() -> None:
    spec = recipe("msport").loss
    assert spec.terms() == ("ce", "triplet")
    assert spec.ce.label_smoothing == 0.0
    assert spec.triplet.margin == 0.3
    assert spec.path_weights == recipe("official").loss.path_weights


def test_tiny_preset_uses_the_official_terms() -> None:
    assert recipe("tiny").loss == recipe("official").loss


def test_unknown_preset_names_the_valid_ones() -> None:
    with pytest.raises(SpecError) as err:
        recipe("offical")
    message = str(err.value)
    assert "'offical'" in message
    for name in RECIPES:
        assert name in message


def test_bad_json_is_a_spec_error_saying_what_is_wrong() -> None:
    with pytest.raises(SpecError, match="label_smoothing"):
        LossSpec.from_json('{"ce": {"label_smoothing": 1.5}}')
    with pytest.raises(SpecError, match="extra"):
        LossSpec.from_json('{"ce": {}, "focal": {}}')


def test_a_spec_needs_a_term_and_is_frozen() -> None:
    with pytest.raises(pydantic.ValidationError, match="at least one"):
        LossSpec()
    spec = LossSpec(triplet=TripletTerm())
    with pytest.raises(pydantic.ValidationError):
        spec.triplet = None  # type: ignore[misc]
