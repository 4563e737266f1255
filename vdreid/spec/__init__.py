"""What the network IS: frozen nodes, builders, the parameter table.

Typical use (the named networks are vdreid.presets' recipes)::

    spec = recipe("official").model_spec(num_classes=395)
    table = param_table(spec)          # canonical name -> ParamInfo
    state = init_state(spec, seed=1)   # canonical name -> float32 array
"""

from __future__ import annotations

from vdreid.spec.builders import (
    classifier,
    feature_recipe,
    grey,
    head_mlp,
    mvd_branch,
    mvd_paths,
    resnet,
)
from vdreid.spec.initial_state import init_state
from vdreid.spec.model import (
    PATH_NAMES,
    PATH_OUTPUTS,
    FeatureRecipe,
    GreySpec,
    InputSpec,
    ModelSpec,
    PathSpec,
    canonical_json,
    spec_from_json,
    spec_hash,
)
from vdreid.spec.nodes import (
    BasicBlock,
    BatchNorm,
    BNNeck,
    BottleneckBlock,
    Branch,
    ChannelAttention,
    Classifier,
    Conv,
    Downsample,
    HeadMLP,
    Init,
    Linear,
    Pool,
    ResNet,
    Stage,
    Stem,
)
from vdreid.spec.params import (
    ParamInfo,
    count_params,
    param_table,
    running_names,
    trainable_names,
)
from vdreid.spec.preprocess import preprocess, to_grey

__all__ = [
    "PATH_NAMES",
    "PATH_OUTPUTS",
    "BasicBlock",
    "BatchNorm",
    "BNNeck",
    "BottleneckBlock",
    "Branch",
    "ChannelAttention",
    "Classifier",
    "Conv",
    "Downsample",
    "GreySpec",
    "HeadMLP",
    "Init",
    "InputSpec",
    "Linear",
    "ModelSpec",
    "ParamInfo",
    "PathSpec",
    "Pool",
    "ResNet",
    "Stage",
    "Stem",
    "FeatureRecipe",
    "canonical_json",
    "classifier",
    "count_params",
    "feature_recipe",
    "grey",
    "head_mlp",
    "init_state",
    "mvd_branch",
    "mvd_paths",
    "param_table",
    "preprocess",
    "resnet",
    "running_names",
    "trainable_names",
    "spec_from_json",
    "spec_hash",
    "to_grey",
]
