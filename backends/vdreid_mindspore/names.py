"""Canonical names <-> MindSpore parameter names, and MindSpore's batch-norm
conventions. The only module that spells MindSpore's framework names.

The Cell tree that build.py makes has attribute paths equal to the
canonical names, so a name differs only in its last component, and only
for batch norm (nn.BatchNorm1d/2d call their tensors gamma, beta,
moving_mean, moving_variance).

Batch-norm conventions (measured on MindSpore 2.10 CPU, tested in
tests/unit/test_ms_build.py):
- ``nn.BatchNorm*d(momentum=m)`` weights the OLD running value:
  running = m * running + (1 - m) * batch. The spec (and torch) weight the
  batch value, so the builder passes ``1 - spec.momentum``.
- The running variance is updated with the UNBIASED batch variance
  (n / (n - 1) times the biased one), as torch does; normalisation in
  train mode uses the biased variance, as torch does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from mindspore import Tensor, nn

from vdreid.checkpoint import check_state
from vdreid.errors import CheckpointError
from vdreid.spec import ModelSpec, param_table
from vdreid_mindspore._quiet import mindspore as ms

# canonical last component -> MindSpore's
_TO_FRAMEWORK = {"scale": "gamma", "shift": "beta", "mean": "moving_mean", "var": "moving_variance"}
_TO_CANONICAL = {v: k for k, v in _TO_FRAMEWORK.items()}


def to_framework(name: str) -> str:
    """``V.neck.bn.scale`` -> ``V.neck.bn.gamma``; other names unchanged."""
    head, _, last = name.rpartition(".")
    return f"{head}.{_TO_FRAMEWORK[last]}" if last in _TO_FRAMEWORK else name


def to_canonical(name: str) -> str:
    """``V.neck.bn.moving_variance`` -> ``V.neck.bn.var``; other names unchanged."""
    head, _, last = name.rpartition(".")
    return f"{head}.{_TO_CANONICAL[last]}" if last in _TO_CANONICAL else name


def framework_names(canonical: Iterable[str]) -> dict[str, str]:
    """canonical -> framework for every name."""
    return {n: to_framework(n) for n in canonical}


def ms_keys(spec: ModelSpec) -> dict[str, str]:
    """Canonical name -> MindSpore parameter name, in param_table order (allocates nothing)."""
    return framework_names(param_table(spec))


def parameters(model: nn.Cell) -> dict[str, ms.Parameter]:
    """MindSpore parameter name -> Parameter, by attribute path."""
    return dict(model.parameters_and_names())


def check_layout(model: nn.Cell, spec: ModelSpec) -> None:
    """Fail loudly when the interpreter's Cell layout drifts from the spec's names."""
    expected = set(ms_keys(spec).values())
    have = set(parameters(model))
    if have != expected:
        raise AssertionError(
            "vdreid_mindspore.build laid out cells that do not match param_table: "
            f"missing {sorted(expected - have)[:5]}, extra {sorted(have - expected)[:5]}"
        )


def get_state(model: nn.Cell, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Canonical name -> float32 numpy copy, in param_table order."""
    params = parameters(model)
    return {
        name: params[key].asnumpy().astype(np.float32, copy=True)
        for name, key in ms_keys(spec).items()
    }


def set_state(model: nn.Cell, spec: ModelSpec, state: Mapping[str, np.ndarray]) -> None:
    """Copy a canonical state into ``model``; strict on names, shapes and dtype kind."""
    check_state(param_table(spec), state, source="the state given to the mindspore backend")
    params = parameters(model)
    for name, key in ms_keys(spec).items():
        value = np.asarray(state[name])
        if not np.issubdtype(value.dtype, np.floating):
            raise CheckpointError(
                f"tensor {name!r} has dtype {value.dtype}, expected a float array; re-save the checkpoint with vdreid"
            )
        # copy_ writes into the parameter's buffer; set_data would swap the
        # buffer and leave graphs compiled earlier reading the old one
        params[key].copy_(Tensor(np.ascontiguousarray(value, dtype=np.float32)))


def bn_momentum(spec_momentum: float) -> float:
    """The spec's (torch's) batch-norm momentum as nn.BatchNorm*d's argument."""
    return 1.0 - spec_momentum
