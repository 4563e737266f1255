"""The whole MVD model: three branches, four paths, input and test feature.

A ModelSpec is data: it serialises to JSON and back identically
(``spec.model_dump_json()`` / ``ModelSpec.model_validate_json``), and
``spec_hash`` identifies it in checkpoints.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from vdreid.errors import SpecError
from vdreid.spec.nodes import Branch, Node

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: The four paths every training image takes, in call order (S sees grey first).
PATH_NAMES = ("V", "I", "Sg", "Sx")
#: Outputs of one path; the forward's keys are "{path}.{name}".
PATH_OUTPUTS = ("global", "feat", "logits", "z", "z_logits")


class InputSpec(Node):
    """Image size the network is trained at and the normalisation constants."""

    height: int = Field(gt=0)
    width: int = Field(gt=0)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


class GreySpec(Node):
    """grey(x) = sum_c coefficients[c] * x_c, repeated to 3 channels.

    ``space="normalised"`` applies it to the ImageNet-normalised tensor
    (official, msport); ``space="pixel"`` de-normalises first and
    re-normalises each channel afterwards (paper).
    """

    variant: Literal["official", "msport", "paper"]
    coefficients: tuple[float, float, float]
    space: Literal["normalised", "pixel"]


class PathSpec(Node):
    """One path: which branch runs on which view (``x`` or ``grey``)."""

    name: str
    branch: str
    view: Literal["x", "grey"]


class FeatureRecipe(Node):
    """How eval outputs become the retrieval (test) feature, ``ModelSpec.test_feature``.

    Concatenate ``{path}.feat`` for ``paths`` in order; ``normalise``
    ``whole`` = one L2 normalisation of the concatenation, ``per_block`` =
    L2-normalise each block first. ``distance`` is what the recipe implies
    for ranking: on unit vectors euclidean and cosine rank identically.
    """

    recipe: Literal["official", "msport"]
    paths: tuple[str, ...]
    normalise: Literal["whole", "per_block"]
    distance: Literal["euclidean", "cosine", "inner_product"]

    @property
    def per_block(self) -> bool:
        return self.normalise == "per_block"


class ModelSpec(Node):
    """Everything a backend needs to build the network (not the losses)."""

    version: int = 1
    preset: str
    num_classes: int = Field(gt=0)
    input: InputSpec
    grey: GreySpec
    branches: tuple[Branch, ...]
    paths: tuple[PathSpec, ...]
    test_feature: FeatureRecipe

    def branch(self, name: str) -> Branch:
        for b in self.branches:
            if b.name == name:
                return b
        raise SpecError(
            f"no branch named {name!r} in preset {self.preset!r} "
            f"(branches: {', '.join(b.name for b in self.branches)})"
        )

    def output_names(self) -> tuple[str, ...]:
        """Every ``"{path}.{name}"`` a forward returns, paths in call order
        (eval mode adds ``test_feature``)."""
        return tuple(f"{p.name}.{o}" for p in self.paths for o in PATH_OUTPUTS)

    @property
    def feature_dim(self) -> int:
        """Width of the test feature."""
        by_path = {p.name: self.branch(p.branch).feat_dim for p in self.paths}
        return sum(by_path[name] for name in self.test_feature.paths)

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        problems = list(_problems(self))
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _problems(spec: ModelSpec):
    names = [b.name for b in spec.branches]
    if len(set(names)) != len(names):
        yield f"branch names repeat: {names}"
    for p in spec.paths:
        if p.branch not in names:
            yield f"path {p.name!r} uses branch {p.branch!r}, expected one of {names}"
    path_names = [p.name for p in spec.paths]
    if len(set(path_names)) != len(path_names):
        yield f"path names repeat: {path_names}"
    for name in spec.test_feature.paths:
        if name not in path_names:
            yield f"test feature uses path {name!r}, expected one of {path_names}"
    for b in spec.branches:
        feat = b.feat_dim
        if b.neck is not None and b.neck.bn.channels != feat:
            yield f"branch {b.name}: neck has {b.neck.bn.channels} channels, backbone gives {feat}"
        if b.classifier.in_features != feat or b.head.in_features != feat:
            yield f"branch {b.name}: classifier/head take {b.classifier.in_features}/{b.head.in_features} features, feat has {feat}"
        if b.z_classifier.in_features != b.head.out_features:
            yield f"branch {b.name}: z classifier takes {b.z_classifier.in_features}, z has {b.head.out_features}"
        for c in (b.classifier, b.z_classifier):
            if c.num_classes != spec.num_classes:
                yield f"branch {b.name}: a classifier has {c.num_classes} outputs, num_classes is {spec.num_classes}"


def canonical_json(spec: ModelSpec) -> str:
    """Sorted-key, whitespace-free JSON: the text that spec_hash digests."""
    return json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def spec_hash(spec: ModelSpec) -> str:
    """sha256 hex digest of the canonical JSON; stable across runs and machines."""
    return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()


def spec_from_json(text: str | bytes) -> ModelSpec:
    """Parse a ModelSpec, turning validation failures into one SpecError."""
    try:
        return ModelSpec.model_validate_json(text)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in exc.errors()[:10]
        )
        raise SpecError(
            f"the model spec JSON is not a valid vdreid ModelSpec ({details}); "
            "write it with spec.model_dump_json() from this vdreid version"
        ) from None
