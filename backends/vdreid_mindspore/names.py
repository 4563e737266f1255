"""Canonical names <-> MindSpore parameter names: the only place MindSpore's
names live.

build.py lays Cells out so that a Cell's attribute path IS its canonical
prefix (``V.backbone.layer1.0.conv1``); only batch norm's leaf names differ
(LEAVES: nn.BatchNorm1d/2d call their tensors gamma, beta, moving_mean,
moving_variance). MindSpore keeps no extra bookkeeping tensors.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from mindspore import Parameter, Tensor, nn

from vdreid.checkpoint import checked_float_state
from vdreid.spec import ModelSpec, param_table
from vdreid.spec.params import check_layout as check_names
from vdreid.spec.params import renamed_leaves
from vdreid_mindspore._quiet import mindspore  # noqa: F401  (quiet logging first)

#: canonical batch-norm leaf -> MindSpore's
LEAVES = {"scale": "gamma", "shift": "beta", "mean": "moving_mean", "var": "moving_variance"}


def framework_keys(spec: ModelSpec) -> dict[str, str]:
    """Canonical name -> MindSpore parameter name, in param_table order (allocates nothing)."""
    return renamed_leaves(param_table(spec), LEAVES)


def tensors(model: nn.Cell) -> dict[str, Parameter]:
    """MindSpore name -> the model's parameter or running statistic."""
    return dict(model.parameters_and_names())


def check_layout(model: nn.Cell, spec: ModelSpec) -> None:
    """Fail loudly when the interpreter's Cell layout drifts from the spec's names."""
    check_names(framework_keys(spec).values(), tensors(model), "vdreid_mindspore.build")


def get_state(model: nn.Cell, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Canonical name -> float32 numpy copy, in param_table order."""
    held = tensors(model)
    return {
        name: held[key].asnumpy().astype(np.float32, copy=True)
        for name, key in framework_keys(spec).items()
    }


def set_state(model: nn.Cell, spec: ModelSpec, state: Mapping[str, np.ndarray]) -> None:
    """Copy a canonical state into ``model``; strict on names, shapes and dtype kind."""
    values = checked_float_state(
        param_table(spec), state, source="the state given to the mindspore backend"
    )
    held = tensors(model)
    for name, key in framework_keys(spec).items():
        # copy_ writes into the parameter's buffer; set_data would swap the
        # buffer and leave graphs compiled earlier reading the old one
        held[key].copy_(Tensor(values[name]))
