"""Graph building: ONNX nodes emitted by symbolic tensors, and the Ops the
core's feature composition runs on.

:class:`Graph` collects nodes and initializers (onnx.helper). A
:class:`Sym` names one value of the graph; its arithmetic operators emit
Add/Sub/Mul/Div nodes, and :class:`GraphOps` gives it the few Ops methods
(vdreid.ops) that ``vdreid.losses.compose_feature`` and ``l2_normalize``
use, so the test feature inside an ONNX graph is the core's code, as it is
in the other backends' models.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: ONNX opset of every graph this backend builds (the torch exporter's too)
OPSET = 18
#: ONNX IR version written: 9 is read by every onnxruntime since 1.15
IR_VERSION = 9


class Graph:
    """Nodes, initializers and unique value names of one graph under construction."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.constants: list[onnx.TensorProto] = []
        #: canonical tensor name -> shape: weights filled in by set_state
        self.weights: dict[str, tuple[int, ...]] = {}
        self._ids = itertools.count()

    def name(self, hint: str) -> str:
        return f"{hint}__{next(self._ids)}"

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        """Emit one node with one output; returns the output's name."""
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def output(self, value: str, name: str) -> str:
        """Publish ``value`` as the graph output ``name``."""
        self.nodes.append(helper.make_node("Identity", [value], [name]))
        return name

    def weight(self, name: str, shape: tuple[int, ...]) -> str:
        """A model tensor (an initializer named by its canonical name)."""
        self.weights[name] = tuple(shape)
        return name

    def constant(self, value: Any, dtype: Any = np.float32, hint: str = "const") -> str:
        """A constant initializer (the graph's own numbers, not model state)."""
        name = self.name(hint)
        self.constants.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def model(
        self,
        inputs: list[onnx.ValueInfoProto],
        outputs: list[onnx.ValueInfoProto],
        state: dict[str, np.ndarray],
        metadata: dict[str, str] | None = None,
    ) -> onnx.ModelProto:
        """The ModelProto with ``state`` (canonical name -> array) as its weights."""
        weights = [
            numpy_helper.from_array(np.asarray(state[n], np.float32), n) for n in self.weights
        ]
        graph = helper.make_graph(self.nodes, "vdreid", inputs, outputs, weights + self.constants)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        model.producer_name = "vdreid"
        for key, value in (metadata or {}).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        return model


def float_value(name: str, shape: list[Any] | None = None) -> onnx.ValueInfoProto:
    """A float32 graph input or output (``shape`` None: whatever the graph gives)."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


class Sym:
    """One value of a Graph; + - * / emit nodes (numbers become constants)."""

    __array_priority__ = 1000  # numpy scalars defer to these operators

    def __init__(self, graph: Graph, name: str):
        self.graph, self.name = graph, name

    def _other(self, other: Any) -> str:
        return other.name if isinstance(other, Sym) else self.graph.constant(other)

    def _binary(self, op_type: str, a: str, b: str) -> Sym:
        return Sym(self.graph, self.graph.op(op_type, [a, b]))

    def __add__(self, other: Any) -> Sym:
        return self._binary("Add", self.name, self._other(other))

    def __radd__(self, other: Any) -> Sym:
        return self._binary("Add", self._other(other), self.name)

    def __sub__(self, other: Any) -> Sym:
        return self._binary("Sub", self.name, self._other(other))

    def __rsub__(self, other: Any) -> Sym:
        return self._binary("Sub", self._other(other), self.name)

    def __mul__(self, other: Any) -> Sym:
        return self._binary("Mul", self.name, self._other(other))

    def __rmul__(self, other: Any) -> Sym:
        return self._binary("Mul", self._other(other), self.name)

    def __truediv__(self, other: Any) -> Sym:
        return self._binary("Div", self.name, self._other(other))

    def __rtruediv__(self, other: Any) -> Sym:
        return self._binary("Div", self._other(other), self.name)

    def __neg__(self) -> Sym:
        return Sym(self.graph, self.graph.op("Neg", [self.name]))

    def __le__(self, other: Any) -> Sym:  # a boolean value: GraphOps.to_float makes it 0/1
        return self._binary("LessOrEqual", self.name, self._other(other))


class GraphOps:
    """The Ops methods the core's test-feature code uses, as graph nodes.

    Only what ``vdreid.losses.geometry`` (compose_feature, l2_normalize)
    needs; the loss math is not run here (this backend does not train)."""

    name = "onnx"

    def __init__(self, graph: Graph):
        self.graph = graph

    def _sym(self, name: str) -> Sym:
        return Sym(self.graph, name)

    def _axes(self, axis: int | None) -> list[str]:
        return [] if axis is None else [self.graph.constant([axis], np.int64, "axes")]

    def sqrt(self, x: Sym) -> Sym:
        return self._sym(self.graph.op("Sqrt", [x.name]))

    def to_float(self, x: Sym) -> Sym:
        return self._sym(self.graph.op("Cast", [x.name], to=TensorProto.FLOAT))

    def clip(self, x: Sym, lo: float | None = None, hi: float | None = None) -> Sym:
        bounds = [self.graph.constant(v) if v is not None else "" for v in (lo, hi)]
        return self._sym(self.graph.op("Clip", [x.name, *bounds]))

    def sum(self, x: Sym, axis: int | None = None, keepdims: bool = False) -> Sym:
        return self._sym(
            self.graph.op("ReduceSum", [x.name, *self._axes(axis)], keepdims=int(keepdims))
        )

    def concat(self, xs: list[Sym], axis: int = 0) -> Sym:
        return self._sym(self.graph.op("Concat", [x.name for x in xs], axis=axis))
