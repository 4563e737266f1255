"""Canonical names <-> torch state_dict keys: the only place torch's names live.

build.py lays modules out so that a module's attribute path IS its
canonical prefix (``V.backbone.layer1.0.conv1``); only batch norm's leaf
names differ (LEAVES). torch also keeps one counter per batch norm
(``num_batches_tracked``) that the canonical state drops: it only matters
with ``momentum=None``, which no spec uses; loading resets it to zero.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from vdreid.checkpoint import checked_float_state
from vdreid.spec import ModelSpec, param_table
from vdreid.spec.params import check_layout as check_names
from vdreid.spec.params import renamed_leaves

#: canonical batch-norm leaf -> torch's
LEAVES = {"scale": "weight", "shift": "bias", "mean": "running_mean", "var": "running_var"}
#: torch bookkeeping that has no canonical counterpart
DROPPED_LEAF = "num_batches_tracked"


def framework_keys(spec: ModelSpec) -> dict[str, str]:
    """Canonical name -> torch state_dict key, in param_table order (allocates nothing)."""
    return renamed_leaves(param_table(spec), LEAVES)


def tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """torch key -> the model's parameter or running statistic (not detached)."""
    sd = model.state_dict(keep_vars=True)
    return {k: v for k, v in sd.items() if not k.endswith("." + DROPPED_LEAF)}


def check_layout(model: nn.Module, spec: ModelSpec) -> None:
    """Fail loudly when the interpreter's module layout drifts from the spec's names."""
    check_names(framework_keys(spec).values(), tensors(model), "vdreid_torch.build")


def get_state(model: nn.Module, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Canonical name -> float32 numpy copy (on the host), in param_table order."""
    held = tensors(model)
    return {
        name: held[key].detach().float().cpu().numpy().copy()
        for name, key in framework_keys(spec).items()
    }


def set_state(model: nn.Module, spec: ModelSpec, state: Mapping[str, np.ndarray]) -> None:
    """Copy a canonical state into ``model``; strict on names, shapes and dtype kind."""
    values = checked_float_state(
        param_table(spec), state, source="the state given to the torch backend"
    )
    held = tensors(model)
    with torch.no_grad():
        for name, key in framework_keys(spec).items():
            host = values[name]
            if not host.flags.writeable:  # torch.from_numpy refuses read-only memory
                host = host.copy()
            held[key].copy_(torch.from_numpy(host))
        for key, value in model.state_dict().items():
            if key.endswith("." + DROPPED_LEAF):
                value.zero_()
