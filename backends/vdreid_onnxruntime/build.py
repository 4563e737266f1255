"""The spec interpreter: a ModelSpec becomes ONNX graphs (onnx.helper), run by onnxruntime.

The spec is walked once, here, into objects named after the spec nodes, as
in the torch and MindSpore backends' build.py (docs/backends.md lists them
side by side); calling one emits its nodes into a Graph (ops.py) and
returns the name of its output. Weights are initializers named by their
canonical names (names.py: no leaf is renamed); names.set_state fills
them. Inference only, eval mode: batch norms use their running statistics
(ONNX BatchNormalization), dropout is the identity.

Two graphs per model, built on first use: ``features`` (normalised float32
NCHW ``images`` -> ``features``, the spec's test feature: the contract of
every exported file) and ``outputs`` (every ``{path}.{name}`` output plus
``test_feature``, for the contract suite). Padding ``"same"`` is ONNX's
``SAME_UPPER`` (the odd pixel bottom/right, as the spec says).
"""

from __future__ import annotations

from typing import Any, cast

from vdreid.export_metadata import INPUT_NAME, OUTPUT_NAME
from vdreid.losses.geometry import compose_feature
from vdreid.ops import Ops
from vdreid.spec import nodes as sn
from vdreid.spec.model import PATH_OUTPUTS, ModelSpec
from vdreid_onnxruntime.ops import Graph, GraphOps, Sym, float_value


# -- layers -------------------------------------------------------------------
def batch_norm(g: Graph, node: sn.BatchNorm, name: str, x: str) -> str:
    """Inference batch norm (maps or vectors) with the spec's eps; running statistics."""
    c = (node.channels,)
    leaves = [g.weight(f"{name}.{leaf}", c) for leaf in ("scale", "shift", "mean", "var")]
    return g.op("BatchNormalization", [x, *leaves], hint=name, epsilon=node.eps)


def _window(padding: int | str) -> dict[str, Any]:
    if padding == "same":
        return {"auto_pad": "SAME_UPPER"}
    return {"pads": [int(padding)] * 4}


def conv(g: Graph, node: sn.Conv, name: str, x: str) -> str:
    shape = (node.out_channels, node.in_channels, node.kernel, node.kernel)
    inputs = [x, g.weight(f"{name}.weight", shape)]
    if node.bias:
        inputs.append(g.weight(f"{name}.bias", (node.out_channels,)))
    return g.op(
        "Conv",
        inputs,
        hint=name,
        kernel_shape=[node.kernel] * 2,
        strides=[node.stride] * 2,
        **_window(node.padding),
    )


def linear(g: Graph, node: sn.Linear, name: str, x: str) -> str:
    """y = x W^T + b with W of shape (out, in)."""
    inputs = [x, g.weight(f"{name}.weight", (node.out_features, node.in_features))]
    if node.bias:
        inputs.append(g.weight(f"{name}.bias", (node.out_features,)))
    return g.op("Gemm", inputs, hint=name, transB=1)


def max_pool(g: Graph, node: sn.Pool, x: str) -> str:
    """Windowed max; ONNX's padding never wins a max, as -inf in the spec."""
    return g.op(
        "MaxPool",
        [x],
        kernel_shape=[node.kernel] * 2,
        strides=[node.stride] * 2,
        **_window(node.padding),
    )


def relu(g: Graph, x: str) -> str:
    return g.op("Relu", [x])


# -- nodes ----------------------------------------------------------------------
class ChannelAttention:
    """DANet CAM: Y = s * softmax_rows(rowmax(E) - E) X + X, E = X X^T."""

    def __init__(self, node: sn.ChannelAttention, name: str):
        self.name = name

    def __call__(self, g: Graph, x: str) -> str:
        q = g.op("Reshape", [x, g.constant([0, 0, -1], "int64")])  # (N, C, H*W)
        energy = g.op("MatMul", [q, g.op("Transpose", [q], perm=[0, 2, 1])])
        top = g.op("ReduceMax", [energy, g.constant([-1], "int64")], keepdims=1)
        attn = g.op("Softmax", [g.op("Sub", [top, energy])], axis=-1)
        out = g.op("Reshape", [g.op("MatMul", [attn, q]), g.op("Shape", [x])])
        scaled = g.op("Mul", [g.weight(f"{self.name}.attn_scale", (1,)), out])
        return g.op("Add", [scaled, x], hint=self.name)


class Downsample:
    def __init__(self, node: sn.Downsample, name: str):
        self.node, self.name = node, name

    def __call__(self, g: Graph, x: str) -> str:
        y = conv(g, self.node.conv, f"{self.name}.conv", x)
        return batch_norm(g, self.node.bn, f"{self.name}.bn", y)


class Block:
    """Basic (2 convs) or bottleneck (3 convs) residual block."""

    def __init__(self, node: sn.BasicBlock | sn.BottleneckBlock, name: str):
        self.node, self.name = node, name
        self.downsample = (
            Downsample(node.downsample, f"{name}.downsample") if node.downsample else None
        )

    def __call__(self, g: Graph, x: str) -> str:
        n, name = self.node, self.name
        out = relu(g, batch_norm(g, n.bn1, f"{name}.bn1", conv(g, n.conv1, f"{name}.conv1", x)))
        out = batch_norm(g, n.bn2, f"{name}.bn2", conv(g, n.conv2, f"{name}.conv2", out))
        if isinstance(n, sn.BottleneckBlock):
            out = conv(g, n.conv3, f"{name}.conv3", relu(g, out))
            out = batch_norm(g, n.bn3, f"{name}.bn3", out)
        shortcut = self.downsample(g, x) if self.downsample is not None else x
        return relu(g, g.op("Add", [out, shortcut]))


class ResNet:
    """Stem, optional channel attention before layer k, layers, global average pool."""

    def __init__(self, node: sn.ResNet, name: str):
        self.node, self.name = node, name
        self.order: list[ChannelAttention | Block] = []
        for k, stage in enumerate(node.stages, start=1):
            if stage.attention is not None:
                self.order.append(ChannelAttention(stage.attention, f"{name}.cam{k}"))
            self.order += [Block(b, f"{name}.layer{k}.{i}") for i, b in enumerate(stage.blocks)]

    def __call__(self, g: Graph, x: str) -> str:
        stem = self.node.stem
        x = conv(g, stem.conv, f"{self.name}.conv1", x)
        x = max_pool(g, stem.pool, relu(g, batch_norm(g, stem.bn, f"{self.name}.bn1", x)))
        for part in self.order:
            x = part(g, x)
        return g.op("Flatten", [g.op("GlobalAveragePool", [x])], axis=1)


class BNNeck:
    def __init__(self, node: sn.BNNeck, name: str):
        self.node, self.name = node, name

    def __call__(self, g: Graph, x: str) -> str:
        return batch_norm(g, self.node.bn, f"{self.name}.bn", x)


class Classifier:
    """[hidden, bn, LeakyReLU], dropout (the identity: eval mode), fc."""

    def __init__(self, node: sn.Classifier, name: str):
        self.node, self.name = node, name

    def __call__(self, g: Graph, x: str) -> str:
        n = self.node
        if n.hidden is not None:
            x = linear(g, n.hidden, f"{self.name}.hidden", x)
        if n.norm is not None:
            x = batch_norm(g, n.norm, f"{self.name}.bn", x)
        if n.hidden is not None:
            x = g.op("LeakyRelu", [x], alpha=n.negative_slope)
        return linear(g, n.fc, f"{self.name}.fc", x)


class HeadMLP:
    """fc1 bn1 relu ... fcL (norms after every linear but the last)."""

    def __init__(self, node: sn.HeadMLP, name: str):
        self.node, self.name = node, name

    def __call__(self, g: Graph, x: str) -> str:
        last = len(self.node.linears)
        for j, lin in enumerate(self.node.linears, start=1):
            x = linear(g, lin, f"{self.name}.fc{j}", x)
            if j < last:
                x = relu(g, batch_norm(g, self.node.norms[j - 1], f"{self.name}.bn{j}", x))
        return x


class Branch:
    """Encoder + neck (the observation) + classifier, head and z classifier."""

    def __init__(self, node: sn.Branch):
        b = node.name
        self.backbone = ResNet(node.backbone, f"{b}.backbone")
        self.neck = BNNeck(node.neck, f"{b}.neck") if node.neck is not None else None
        self.classifier = Classifier(node.classifier, f"{b}.classifier")
        self.head = HeadMLP(node.head, f"{b}.head")
        self.z_classifier = Classifier(node.z_classifier, f"{b}.z_classifier")

    def observe(self, g: Graph, x: str) -> tuple[str, str]:
        """(global, feat): what the test feature needs."""
        pooled = self.backbone(g, x)
        return pooled, (self.neck(g, pooled) if self.neck is not None else pooled)

    def __call__(self, g: Graph, x: str) -> tuple[str, ...]:
        pooled, feat = self.observe(g, x)
        z = self.head(g, feat)
        return pooled, feat, self.classifier(g, feat), z, self.z_classifier(g, z)


# -- inputs ---------------------------------------------------------------------
class Grey:
    """The spec's grey view of a normalised NCHW batch (mirrors vdreid.spec.to_grey).

    The uint8 -> normalised step (torch's and MindSpore's ``Normalise``) is
    vdreid.spec.preprocess on the host: every graph here takes what an
    exported file takes, normalised float32 NCHW."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def __call__(self, g: Graph, x: str) -> str:
        channel = (1, 3, 1, 1)
        k = g.constant(self.spec.grey.coefficients, hint="grey_k")
        axis = g.constant([1], "int64")
        if self.spec.grey.space == "pixel":
            mean = g.constant(self.spec.input.mean, hint="mean")
            std = g.constant(self.spec.input.std, hint="std")
            mean, std = (g.op("Reshape", [v, g.constant(channel, "int64")]) for v in (mean, std))
            k = g.op("Reshape", [k, g.constant(channel, "int64")])
            pixels = g.op("Add", [g.op("Mul", [x, std]), mean])
            y = g.op("ReduceSum", [g.op("Mul", [pixels, k]), axis], keepdims=1)
            return g.op("Div", [g.op("Sub", [y, mean]), std], hint="grey")
        k = g.op("Reshape", [k, g.constant(channel, "int64")])
        y = g.op("ReduceSum", [g.op("Mul", [x, k]), axis], keepdims=1)
        return g.op("Concat", [y, y, y], hint="grey", axis=1)


# -- the model --------------------------------------------------------------------
class MVDModel:
    """Every branch, called once per path in the spec's order (S twice, grey first).

    ``features_graph()``: images -> the test feature only (what exports hold);
    ``outputs_graph()``: every ``{path}.{name}`` output and ``test_feature``.
    """

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.branches = {b.name: Branch(b) for b in spec.branches}
        self.grey = Grey(spec)
        self.routes = tuple((p.name, p.branch, p.view) for p in spec.paths)
        self.feature_routes = tuple(
            r for name in spec.test_feature.paths for r in self.routes if r[0] == name
        )
        self.per_block = spec.test_feature.per_block

    def _views(self, g: Graph) -> dict[str, str]:
        return {"x": INPUT_NAME, "grey": self.grey(g, INPUT_NAME)}

    def compose(self, g: Graph, blocks: list[str]) -> str:
        """The spec's retrieval feature (vdreid.losses.compose_feature, on graph nodes)."""
        # GraphOps has only the Ops methods compose_feature and l2_normalize call
        ops = cast(Ops, GraphOps(g))
        feature = compose_feature(ops, [Sym(g, b) for b in blocks], self.per_block)
        return feature.name

    def features_graph(self) -> tuple[Graph, list[str]]:
        g = Graph()
        views = self._views(g)
        feats = [self.branches[b].observe(g, views[v])[1] for _, b, v in self.feature_routes]
        return g, [g.output(self.compose(g, feats), OUTPUT_NAME)]

    def outputs_graph(self) -> tuple[Graph, list[str]]:
        g = Graph()
        views = self._views(g)
        named: dict[str, str] = {}
        for path, branch, view in self.routes:
            outs = self.branches[branch](g, views[view])
            named.update({f"{path}.{o}": v for o, v in zip(PATH_OUTPUTS, outs, strict=True)})
        blocks = [named[f"{p}.feat"] for p in self.spec.test_feature.paths]
        named["test_feature"] = self.compose(g, blocks)
        return g, [g.output(value, out) for out, value in named.items()]

    @staticmethod
    def input(height: int | str = "height", width: int | str = "width"):
        return float_value(INPUT_NAME, ["batch", 3, height, width])
