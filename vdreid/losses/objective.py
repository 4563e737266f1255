"""The training objective: every term of a LossSpec on a forward's outputs.

``outputs`` is the flat dict a backend's forward returns, keyed
``"{path}.{name}"`` with path in V, I, Sx, Sg and name in feat, logits, z,
z_logits. Which outputs feed which term (docs/method.md, "Losses"):

- ce:      logits and z_logits of every path, path-weighted
- rank:    feat and z of every path (L2-normalised inside), path-weighted
- triplet: feat and z of every path (un-normalised), path-weighted
- cml:     Sinkhorn between softmax(I.logits) and softmax(V.logits) rows
- vsd:     logits -> z_logits within I, plus within V
- vcd:     0.5 (Sx.logits -> Sg.z_logits) + 0.5 (Sg.logits -> Sx.z_logits)
- vml:     JS(Sx.z_logits, Sg.z_logits)

("a -> b": a is the detached teacher, b the student.) Per-path terms are
summed over paths in the official code's order (I, V, Sg, Sx), each path's
weight times (term on the observation + term on the representation).

Pure Ops code with no Python branching on tensor values: it traces inside
``ms.jit`` and runs eagerly on numpy and torch. (Keys are joined with ``+``,
the form MindSpore's graph compiler reads.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from vdreid.errors import SpecError
from vdreid.losses.classification import cross_entropy
from vdreid.losses.distillation import js_divergence, kl_divergence, official_kl_div
from vdreid.losses.ranking import batch_hard_triplet, ranked_list_loss
from vdreid.losses.sinkhorn import sinkhorn_distance
from vdreid.losses.spec import LossSpec
from vdreid.ops import Ops, Tensor
from vdreid.spec.model import PATH_NAMES

V, I, SG, SX = PATH_NAMES  # noqa: E741 - the infrared path is called I
#: the official code's summation order of the four paths: the two modalities,
#: infrared first, then S on the grey view and on x
PATHS: tuple[str, ...] = (I, V, SG, SX)


def _keys(paths: tuple[str, ...], names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{p}.{n}" for p in paths for n in names)


# the forward outputs each term reads
OUTPUTS_BY_TERM: dict[str, tuple[str, ...]] = {
    "ce": _keys(PATHS, ("logits", "z_logits")),
    "rank": _keys(PATHS, ("feat", "z")),
    "cml": _keys((I, V), ("logits",)),
    "vsd": _keys((I, V), ("logits", "z_logits")),
    "vcd": _keys((SX, SG), ("logits", "z_logits")),
    "vml": _keys((SX, SG), ("z_logits",)),
    "triplet": _keys(PATHS, ("feat", "z")),
}


def required_outputs(loss_spec: LossSpec) -> tuple[str, ...]:
    """The ``"{path}.{name}"`` outputs the objective reads for this spec, sorted."""
    return tuple(sorted({key for term in loss_spec.terms() for key in OUTPUTS_BY_TERM[term]}))


def objective(
    ops: Ops,
    loss_spec: LossSpec,
    outputs: Mapping[str, Tensor],
    labels: Tensor,
    modality: Tensor,
) -> dict[str, Tensor]:
    """Every term of ``loss_spec`` by name (raw: unweighted by the term weight,
    path weights already applied) plus ``"total"`` = sum of weight * term.

    ``labels`` (B,) identity indices 0..C-1; ``modality`` (B,) 0 visible, 1 infrared.
    """
    _assert_outputs(loss_spec, outputs)
    pw = loss_spec.path_weights
    terms: dict[str, Tensor] = {}

    if loss_spec.ce is not None:
        eps = loss_spec.ce.label_smoothing
        acc = 0.0
        for p in PATHS:
            obs = cross_entropy(ops, outputs[p + ".logits"], labels, eps)
            rep = cross_entropy(ops, outputs[p + ".z_logits"], labels, eps)
            acc = acc + getattr(pw, p) * (obs + rep)
        terms["ce"] = acc

    if loss_spec.rank is not None:
        r = loss_spec.rank
        acc = 0.0
        for p in PATHS:
            pair = 0.0
            for name in ("feat", "z"):
                pair = pair + ranked_list_loss(
                    ops,
                    outputs[p + "." + name],
                    labels,
                    modality,
                    margin_intra=r.margin_intra,
                    margin_cross=r.margin_cross,
                    alpha_intra=r.alpha_intra,
                    alpha_cross=r.alpha_cross,
                    temperature=r.temperature,
                )
            acc = acc + getattr(pw, p) * pair
        terms["rank"] = acc

    if loss_spec.cml is not None:
        c = loss_spec.cml
        terms["cml"] = sinkhorn_distance(
            ops,
            ops.softmax(outputs[I + ".logits"], axis=1),
            ops.softmax(outputs[V + ".logits"], axis=1),
            eps=c.eps,
            max_iter=c.max_iter,
            tol=c.tol,
            variant=c.sinkhorn,
        )

    if loss_spec.vsd is not None:
        t = loss_spec.vsd.temperature
        f = official_kl_div if loss_spec.vsd.form == "official" else kl_divergence
        terms["vsd"] = f(ops, outputs[I + ".logits"], outputs[I + ".z_logits"], t) + f(
            ops, outputs[V + ".logits"], outputs[V + ".z_logits"], t
        )

    if loss_spec.vcd is not None:
        f = official_kl_div if loss_spec.vcd.form == "official" else kl_divergence
        terms["vcd"] = 0.5 * f(ops, outputs[SX + ".logits"], outputs[SG + ".z_logits"]) + 0.5 * f(
            ops, outputs[SG + ".logits"], outputs[SX + ".z_logits"]
        )

    if loss_spec.vml is not None:
        terms["vml"] = js_divergence(ops, outputs[SX + ".z_logits"], outputs[SG + ".z_logits"])

    if loss_spec.triplet is not None:
        margin = loss_spec.triplet.margin
        acc = 0.0
        for p in PATHS:
            obs = batch_hard_triplet(ops, outputs[p + ".feat"], labels, margin)
            rep = batch_hard_triplet(ops, outputs[p + ".z"], labels, margin)
            acc = acc + getattr(pw, p) * (obs + rep)
        terms["triplet"] = acc

    total = 0.0
    for name in loss_spec.terms():
        total = total + getattr(loss_spec, name).weight * terms[name]
    terms["total"] = total
    return terms


def check_outputs(loss_spec: LossSpec, output_names: Iterable[str]) -> None:
    """Raise SpecError unless ``output_names`` covers what ``loss_spec`` reads.

    For workflows and backends to call once, eagerly, before training (a
    model spec without a head cannot feed the official loss, say).
    """
    names = set(output_names)
    missing = [key for key in required_outputs(loss_spec) if key not in names]
    if missing:
        raise SpecError(
            f"the loss terms {list(loss_spec.terms())} read the model outputs {missing}, "
            f"which the model does not produce (it produces {sorted(names)}). "
            "Choose a loss preset whose terms the model supports, or a model with "
            "the missing parts."
        )


def _assert_outputs(loss_spec: LossSpec, outputs: Mapping[str, Tensor]) -> None:
    # A missing key here is a backend bug (check_outputs catches user
    # mistakes earlier): raise a builtin KeyError, the kind ms.jit can parse.
    for term in loss_spec.terms():
        for key in OUTPUTS_BY_TERM[term]:
            if key not in outputs:
                raise KeyError(
                    f"the loss term {term!r} reads the output {key!r}, which the forward "
                    "did not return; a forward returns every '{path}.{name}' "
                    "(vdreid.losses.required_outputs lists them)"
                )
