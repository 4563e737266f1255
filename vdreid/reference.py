"""The numpy oracle: the forward pass of any ModelSpec, for tiny inputs.

Backends are tested against it (same canonical state, same images -> same
outputs). It computes in float64 and returns float32, so its own rounding
is negligible next to a float32 backend's.

Conventions a backend must match:
- Paths run in spec order (V, I, Sg, Sx): S is called twice, grey first,
  each call with its own batch statistics.
- Train mode normalises with the batch mean and the BIASED batch variance,
  and updates running statistics the torch way:
  mean <- (1 - m) mean + m batch_mean, var <- (1 - m) var + m unbiased_var,
  with m = BatchNorm.momentum (0.1). S's statistics are updated twice per
  step (after Sg, then after Sx).
- Dropout is the identity here; backends switch it off for parity tests.
- Padding ``"same"`` is resolved from each map's size
  (vdreid.spec.nodes.same_padding: the odd pixel bottom/right).
- test_feature (eval only) follows spec.test_feature
  (vdreid.losses.compose_feature, the backends' own composition).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from vdreid.checkpoint import check_state
from vdreid.errors import DataError
from vdreid.losses.geometry import compose_feature
from vdreid.ops import NumpyOps
from vdreid.spec.model import FeatureRecipe, ModelSpec
from vdreid.spec.nodes import (
    BasicBlock,
    BatchNorm,
    BNNeck,
    BottleneckBlock,
    Branch,
    Classifier,
    Conv,
    Downsample,
    HeadMLP,
    Linear,
    ResNet,
    resolve_padding,
)
from vdreid.spec.params import param_table
from vdreid.spec.preprocess import to_grey


def _padded(x: np.ndarray, padding: int | str, kernel: int, stride: int, value: float):
    top, bottom, left, right = resolve_padding(padding, kernel, stride, *x.shape[2:])
    if top or bottom or left or right:
        x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)
    return x


def conv2d(x: np.ndarray, w: np.ndarray, stride: int, padding: int | str) -> np.ndarray:
    """NCHW x OIHW cross-correlation via a strided window view and one tensordot."""
    k = w.shape[2]
    x = _padded(x, padding, k, stride, 0.0)
    # numpy's stub types axis as one int; a tuple works (numpy>=1.20)
    windows = sliding_window_view(x, (k, k), axis=(2, 3))  # type: ignore[call-overload]
    windows = windows[:, :, ::stride, ::stride]  # N C Ho Wo k k
    return np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


def max_pool(x: np.ndarray, kernel: int, stride: int, padding: int | str) -> np.ndarray:
    x = _padded(x, padding, kernel, stride, -np.inf)
    windows = sliding_window_view(x, (kernel, kernel), axis=(2, 3))  # type: ignore[call-overload]
    return windows[:, :, ::stride, ::stride].max(axis=(4, 5))


def channel_attention(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """DANet CAM: softmax over rows of (rowmax(E) - E), E = X X^T; Y = s * (A X) + X."""
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    energy = flat @ flat.transpose(0, 2, 1)
    energy = energy.max(axis=-1, keepdims=True) - energy
    attn = np.exp(energy - energy.max(axis=-1, keepdims=True))
    attn /= attn.sum(axis=-1, keepdims=True)
    return scale.reshape(()) * (attn @ flat).reshape(n, c, h, w) + x


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


class _Runner:
    """Reads canonical tensors (as float64) and keeps train-mode running statistics.

    One method per spec node, named after it, in the order the backends'
    build.py define their classes (docs/backends.md maps them).
    """

    def __init__(self, state: Mapping[str, np.ndarray], train: bool) -> None:
        self.state = {k: np.asarray(v, np.float64) for k, v in state.items()}
        self.train = train
        self.running: dict[str, np.ndarray] = {}
        self.used: set[str] = set()
        self.outputs: dict[str, np.ndarray] = {}

    def p(self, name: str) -> np.ndarray:
        self.used.add(name)
        return self.running.get(name, self.state[name])

    def conv(self, node: Conv, name: str, x: np.ndarray) -> np.ndarray:
        y = conv2d(x, self.p(f"{name}.weight"), node.stride, node.padding)
        return y + self.p(f"{name}.bias").reshape(1, -1, 1, 1) if node.bias else y

    def linear(self, node: Linear, name: str, x: np.ndarray) -> np.ndarray:
        y = x @ self.p(f"{name}.weight").T
        return y + self.p(f"{name}.bias") if node.bias else y

    def batch_norm(self, node: BatchNorm, name: str, x: np.ndarray) -> np.ndarray:
        axes = (0, 2, 3) if x.ndim == 4 else (0,)
        shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
        mean, var = self.p(f"{name}.mean"), self.p(f"{name}.var")
        if self.train:
            count = x.size // x.shape[1]
            if count < 2:
                raise DataError(
                    f"train-mode batch norm {name} needs more than 1 value per channel, got {x.shape}"
                )
            mean_b, var_b = x.mean(axis=axes), x.var(axis=axes)
            m = node.momentum
            self.running[f"{name}.mean"] = (1 - m) * mean + m * mean_b
            self.running[f"{name}.var"] = (1 - m) * var + m * var_b * count / (count - 1)
            mean, var = mean_b, var_b
        y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + node.eps)
        return y * self.p(f"{name}.scale").reshape(shape) + self.p(f"{name}.shift").reshape(shape)

    def channel_attention(self, name: str, x: np.ndarray) -> np.ndarray:
        return channel_attention(x, self.p(f"{name}.attn_scale"))

    def downsample(self, node: Downsample, name: str, x: np.ndarray) -> np.ndarray:
        return self.batch_norm(node.bn, f"{name}.bn", self.conv(node.conv, f"{name}.conv", x))

    def block(self, node: BasicBlock | BottleneckBlock, name: str, x: np.ndarray) -> np.ndarray:
        y = relu(
            self.batch_norm(node.bn1, f"{name}.bn1", self.conv(node.conv1, f"{name}.conv1", x))
        )
        y = self.batch_norm(node.bn2, f"{name}.bn2", self.conv(node.conv2, f"{name}.conv2", y))
        if isinstance(node, BottleneckBlock):
            y = self.conv(node.conv3, f"{name}.conv3", relu(y))
            y = self.batch_norm(node.bn3, f"{name}.bn3", y)
        shortcut = x
        if node.downsample is not None:
            shortcut = self.downsample(node.downsample, f"{name}.downsample", x)
        return relu(y + shortcut)

    def resnet(self, node: ResNet, name: str, x: np.ndarray) -> np.ndarray:
        stem = node.stem
        y = relu(self.batch_norm(stem.bn, f"{name}.bn1", self.conv(stem.conv, f"{name}.conv1", x)))
        y = max_pool(y, stem.pool.kernel, stem.pool.stride, stem.pool.padding)
        for k, stage in enumerate(node.stages, start=1):
            if stage.attention is not None:
                y = self.channel_attention(f"{name}.cam{k}", y)
            for i, block in enumerate(stage.blocks):
                y = self.block(block, f"{name}.layer{k}.{i}", y)
        return y.mean(axis=(2, 3))  # global average pool

    def bnneck(self, node: BNNeck, name: str, x: np.ndarray) -> np.ndarray:
        return self.batch_norm(node.bn, f"{name}.bn", x)

    def classifier(self, node: Classifier, name: str, x: np.ndarray) -> np.ndarray:
        if node.hidden is not None:
            x = self.linear(node.hidden, f"{name}.hidden", x)
            if node.norm is not None:
                x = self.batch_norm(node.norm, f"{name}.bn", x)
            x = np.where(x >= 0, x, node.negative_slope * x)
        return self.linear(node.fc, f"{name}.fc", x)  # dropout: identity in the oracle

    def head_mlp(self, node: HeadMLP, name: str, x: np.ndarray) -> np.ndarray:
        last = len(node.linears)
        for j, lin in enumerate(node.linears, start=1):
            x = self.linear(lin, f"{name}.fc{j}", x)
            if j < last:
                x = relu(self.batch_norm(node.norms[j - 1], f"{name}.bn{j}", x))
        return x

    def observe(self, node: Branch, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(global, feat): what the test feature needs."""
        pooled = self.resnet(node.backbone, f"{node.name}.backbone", x)
        feat = pooled if node.neck is None else self.bnneck(node.neck, f"{node.name}.neck", pooled)
        return pooled, feat

    def branch(self, node: Branch, x: np.ndarray) -> dict[str, np.ndarray]:
        pooled, feat = self.observe(node, x)
        z = self.head_mlp(node.head, f"{node.name}.head", feat)
        return {
            "global": pooled,
            "feat": feat,
            "logits": self.classifier(node.classifier, f"{node.name}.classifier", feat),
            "z": z,
            "z_logits": self.classifier(node.z_classifier, f"{node.name}.z_classifier", z),
        }


def compose_test_feature(recipe: FeatureRecipe, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The retrieval feature from eval outputs, following ``recipe``."""
    blocks = [np.asarray(outputs[f"{p}.feat"], np.float64) for p in recipe.paths]
    return compose_feature(NumpyOps(), blocks, recipe.per_block)


def _run(
    spec: ModelSpec, state: Mapping[str, np.ndarray], images: np.ndarray, train: bool
) -> _Runner:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 3 or not np.issubdtype(images.dtype, np.floating):
        raise DataError(
            f"expected normalised float NCHW images (N, 3, H, W), got {images.dtype} {images.shape}; "
            "run vdreid.spec.preprocess on uint8 NHWC batches first"
        )
    table = param_table(spec)
    check_state(table, state, source="the state given to the reference forward")
    runner = _Runner(state, train)
    x = images.astype(np.float64)
    views = {"x": x, "grey": to_grey(spec, x)}
    for path in spec.paths:
        for key, value in runner.branch(spec.branch(path.branch), views[path.view]).items():
            runner.outputs[f"{path.name}.{key}"] = value
    if not train:
        runner.outputs["test_feature"] = compose_test_feature(spec.test_feature, runner.outputs)
    assert runner.used == set(table), "the oracle and param_table disagree on names"
    return runner


def _float32(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, np.float32) for k, v in arrays.items()}


def reference_forward(
    spec: ModelSpec, state: Mapping[str, np.ndarray], images: np.ndarray, *, train: bool = False
) -> dict[str, np.ndarray]:
    """Outputs ``"{path}.{name}"`` (+ ``test_feature`` in eval mode), float32.

    ``images``: normalised float NCHW (see vdreid.spec.preprocess).
    ``state``: every param_table tensor, nothing else (CheckpointError otherwise).
    """
    return _float32(_run(spec, state, images, train).outputs)


def reference_forward_with_stats(
    spec: ModelSpec, state: Mapping[str, np.ndarray], images: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Train-mode outputs and the running statistics after the step
    (canonical ``*.mean`` / ``*.var`` names, every one in param_table)."""
    runner = _run(spec, state, images, True)
    return _float32(runner.outputs), _float32(runner.running)
