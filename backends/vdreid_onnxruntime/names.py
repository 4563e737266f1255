"""Canonical names <-> ONNX initializer names: the only place this backend's names live.

build.py names every weight initializer by its canonical name, batch-norm
leaves included (LEAVES is empty: ONNX's BatchNormalization takes its four
tensors by position, not by name). The model handle keeps the canonical
state on the host; the graphs read it when a session is built.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from vdreid.checkpoint import checked_float_state
from vdreid.spec import ModelSpec, param_table
from vdreid.spec.params import check_layout as check_names
from vdreid.spec.params import renamed_leaves
from vdreid_onnxruntime.ops import Graph

#: canonical batch-norm leaf -> ONNX initializer leaf (none differ)
LEAVES: dict[str, str] = {}


def framework_keys(spec: ModelSpec) -> dict[str, str]:
    """Canonical name -> initializer name, in param_table order."""
    return renamed_leaves(param_table(spec), LEAVES)


def tensors(graph: Graph) -> dict[str, tuple[int, ...]]:
    """Initializer name -> shape of every weight a graph reads."""
    return dict(graph.weights)


def check_layout(graph: Graph, spec: ModelSpec) -> None:
    """Fail loudly when the interpreter's initializers drift from the spec's names."""
    check_names(framework_keys(spec).values(), tensors(graph), "vdreid_onnxruntime.build")


def get_state(state: Mapping[str, np.ndarray], spec: ModelSpec) -> dict[str, np.ndarray]:
    """Canonical name -> float32 copy, in param_table order."""
    return {name: np.array(state[key], np.float32) for name, key in framework_keys(spec).items()}


def set_state(spec: ModelSpec, state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Initializer name -> float32 array of a canonical state; strict on names, shapes, dtype."""
    values = checked_float_state(
        param_table(spec), state, source="the state given to the onnxruntime backend"
    )
    return {key: values[name].copy() for name, key in framework_keys(spec).items()}
