"""What an exported model says about itself: how to feed it and what it returns.

Every exported file (ONNX ``metadata_props``, MindIR ``user_info``) carries
the same string pairs, written here once:

- ``vdreid.input``: the input tensor, say ``images: float32 NCHW (batch, 3,
  288, 144), RGB``, with ``vdreid.input_size`` (``288x144``, H x W),
  ``vdreid.colour_order`` (``RGB``), ``vdreid.normalisation``
  (``(pixel / 255 - mean) / std``), ``vdreid.mean`` and ``vdreid.std``
  (three comma-separated numbers each);
- ``vdreid.feature``: the output, say ``features: float32 (batch, 8192)``,
  with ``vdreid.feature_layout`` (the blocks, in order, and how they are
  normalised: ``V.feat 2048 + Sx.feat 2048 + ...; L2 per block``) and
  ``vdreid.distance`` (what ranks them: ``euclidean``, ``cosine``, ``inner_product``);
- ``vdreid.version`` and ``vdreid.spec_hash``, and ``vdreid.spec``: the
  ModelSpec JSON, from which :func:`read_metadata` rebuilds the spec (so a
  runtime needs nothing but the file: vdreid's ONNX Runtime backend runs
  ``--model m.onnx`` from it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from vdreid import __version__
from vdreid.errors import CheckpointError, SpecError
from vdreid.spec.model import ModelSpec, spec_from_json, spec_hash

PREFIX = "vdreid."
INPUT_NAME = "images"
OUTPUT_NAME = "features"
NORMALISATION = "(pixel / 255 - mean) / std"


def export_metadata(spec: ModelSpec) -> dict[str, str]:
    """The string pairs every exported file of ``spec``'s feature extractor carries."""
    h, w = spec.input.height, spec.input.width
    recipe = spec.test_feature
    dims = {p.name: spec.branch(p.branch).feat_dim for p in spec.paths}
    blocks = " + ".join(f"{p}.feat {dims[p]}" for p in recipe.paths)
    norm = "L2 per block" if recipe.per_block else "one L2 normalisation of the whole"
    return {
        f"{PREFIX}version": __version__,
        f"{PREFIX}spec_hash": spec_hash(spec),
        f"{PREFIX}input": f"{INPUT_NAME}: float32 NCHW (batch, 3, {h}, {w}), RGB, normalised",
        f"{PREFIX}input_size": f"{h}x{w}",
        f"{PREFIX}colour_order": "RGB",
        f"{PREFIX}normalisation": NORMALISATION,
        f"{PREFIX}mean": ",".join(repr(v) for v in spec.input.mean),
        f"{PREFIX}std": ",".join(repr(v) for v in spec.input.std),
        f"{PREFIX}feature": f"{OUTPUT_NAME}: float32 (batch, {spec.feature_dim})",
        f"{PREFIX}feature_layout": f"{blocks}; {norm}",
        f"{PREFIX}distance": recipe.distance,
        f"{PREFIX}spec": json.dumps(spec.model_dump(mode="json"), separators=(",", ":")),
    }


def read_metadata(meta: Mapping[str, str], source: str) -> ModelSpec:
    """The ModelSpec an exported file was written from (its ``vdreid.spec``),
    checked against the file's own hash and preprocessing pairs."""
    text = meta.get(f"{PREFIX}spec")
    if text is None:
        found = ", ".join(sorted(meta)[:6]) or "none"
        raise CheckpointError(
            f"{source} carries no vdreid metadata (found keys: {found}); it was not written by "
            "`vdreid export` (or by a version before exports described their input), so its "
            "input size and normalisation are unknown: export it again with `vdreid export`, "
            "or use its checkpoint (--checkpoint)"
        )
    try:
        spec = spec_from_json(text)
    except SpecError as exc:
        raise CheckpointError(f"{source}: its vdreid.spec is not a valid spec ({exc})") from None
    stored = meta.get(f"{PREFIX}spec_hash")
    if stored is not None and stored != spec_hash(spec):
        raise CheckpointError(
            f"{source}: its vdreid.spec does not match its vdreid.spec_hash; the metadata was "
            "edited or damaged: export the model again"
        )
    return spec
