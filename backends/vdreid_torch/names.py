"""Canonical names <-> torch state_dict keys: the only place torch's names live.

build.py lays modules out so that a module's attribute path IS its
canonical prefix (``V.backbone.layer1.0.conv1``); only batch norm's leaf
names differ, and torch keeps one extra counter per batch norm
(``num_batches_tracked``) that the canonical state drops: it only matters
with ``momentum=None``, which no spec uses; loading resets it to zero.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from vdreid.checkpoint import check_state
from vdreid.errors import CheckpointError
from vdreid.spec import ModelSpec, param_table

#: canonical batch-norm leaf -> torch batch-norm leaf
BN_LEAVES = {"scale": "weight", "shift": "bias", "mean": "running_mean", "var": "running_var"}
BN_ROLES = {"bn_scale": "scale", "bn_shift": "shift", "bn_mean": "mean", "bn_var": "var"}
#: torch bookkeeping that has no canonical counterpart
DROPPED_LEAF = "num_batches_tracked"


def torch_key(canonical: str, role: str) -> str:
    """The state_dict key holding the canonical tensor ``canonical`` of ``role``."""
    if role in BN_ROLES:
        prefix, _, leaf = canonical.rpartition(".")
        return f"{prefix}.{BN_LEAVES[leaf]}"
    return canonical


def torch_keys(spec: ModelSpec) -> dict[str, str]:
    """Canonical name -> torch state_dict key, in param_table order."""
    return {name: torch_key(name, info.role) for name, info in param_table(spec).items()}


def check_layout(model: nn.Module, spec: ModelSpec) -> None:
    """Fail loudly when the interpreter's module layout drifts from the spec's names."""
    expected = set(torch_keys(spec).values())
    have = {k for k in model.state_dict() if not k.endswith("." + DROPPED_LEAF)}
    if have != expected:
        raise AssertionError(
            "vdreid_torch.build laid out modules that do not match param_table: "
            f"missing {sorted(expected - have)[:5]}, extra {sorted(have - expected)[:5]}"
        )


def get_state(model: nn.Module, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Canonical name -> numpy copy (float32, on the host), in param_table order."""
    sd = model.state_dict()
    return {
        name: sd[key].detach().float().cpu().numpy().copy()
        for name, key in torch_keys(spec).items()
    }


def set_state(model: nn.Module, spec: ModelSpec, state: Mapping[str, np.ndarray]) -> None:
    """Copy a canonical state into ``model``; strict on names and shapes."""
    table = param_table(spec)
    check_state(table, state, source="the state given to the torch backend")
    sd = model.state_dict()
    with torch.no_grad():
        for name, info in table.items():
            target = sd[torch_key(name, info.role)]
            value = np.asarray(state[name])
            if not np.issubdtype(value.dtype, np.floating):
                raise CheckpointError(
                    f"tensor {name!r} has dtype {value.dtype}, expected a float array; "
                    "re-save the checkpoint with vdreid"
                )
            host = np.ascontiguousarray(value, dtype=np.float32)
            if not host.flags.writeable:  # torch.from_numpy refuses read-only memory
                host = host.copy()
            target.copy_(torch.from_numpy(host))
        for key, value in sd.items():
            if key.endswith("." + DROPPED_LEAF):
                value.zero_()
