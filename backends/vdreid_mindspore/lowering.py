"""MindSpore's CPU lowerings: the convolution and max pool its CPU kernels run slowly.

``lowered`` (build_model(..., lowered=True), the CPU) selects them; GPU,
Ascend and exported graphs use the native kernels (export switches them off
with set_lowered). Both are equal to the native kernels, forward and
backward (tests/backends/mindspore/test_lowering.py).

Convolution (Conv2d). MindSpore's CPU kernel for convolutions with kernel
> 1 runs at about 1-3 GFLOP/s (forward and backward), 50-100x slower than
its matmul. On the CPU every convolution is therefore lowered to a batched
matmul: the weight (O, C*k*k) broadcast over the batch times each image's
columns (``ops.unfold``, the C*k*k values of every k x k window; the map
itself for a 1x1 projection of stride 1, which needs no unfold).
Its backward keeps only the columns. One form for every convolution: a
flat 2-D matmul over (batch * positions, C*k*k), which this module used
for small maps, and the native 1x1 kernel were both slower on the tiny
recipe's training step (128x64, batch 32: 3.5 s against 2.6 s per step,
best of 4 alternating steps on a loaded machine; benchmarks/bench_step.py
and bench_conv_ms.py measure it). The weight is OIHW, as in torch and the
canonical state.

Max pool (MaxPool). MindSpore's CPU max-pool backward takes ~8 s for one
ResNet stem map (batch 8 at 256x128), 150x its forward, and made a training
step 9x slower than torch's. The lowering pads with -inf, takes the k*k
windows as columns (ops.unfold) and ops.max over them, whose backward
routes each gradient to the first maximum of its window, as torch's max
pool does. The -inf border is concatenated: ops.pad's backward returns
different (wrong) gradients from run to run on MindSpore 2.10's CPU.
Exported graphs use the native max pool, whose dynamic batch axis the
explicit -inf border would lose.

Padding "same" (the spec's, MindSpore's pad_mode='same'): the native
kernels take it as it is; the lowerings resolve it from the static map size
(vdreid.spec.nodes.resolve_padding, the odd pixel bottom/right) and
concatenate the border (zeros, or -inf for the max pool).
"""

from __future__ import annotations

import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from vdreid.spec import nodes as sn
from vdreid.spec.nodes import resolve_padding
from vdreid_mindspore._quiet import mindspore  # noqa: F401  (quiet logging first)


def cast_like(param: Tensor, x: Tensor) -> Tensor:
    """``param`` in ``x``'s dtype (a compile-time choice; no cast when they
    agree): float32 weights on float16 maps under mixed precision (build.py's
    cells use it too)."""
    return param if param.dtype == x.dtype else param.astype(x.dtype)


# -- convolution ------------------------------------------------------------------
class Conv2d(nn.Cell):
    """Square-kernel convolution without groups or dilation.

    ``lowered`` picks the batched-matmul path (module docstring); it is read when a graph is
    compiled, so flip it only before compiling a new graph (export does).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        padding: int | str = 0,
        bias: bool = False,
        *,
        lowered: bool = False,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.lowered = lowered
        self.weight = Parameter(
            Tensor(np.zeros((out_channels, in_channels, kernel, kernel), np.float32)),
            name="weight",
        )
        self.has_bias = bias
        self.bias = (
            Parameter(Tensor(np.zeros((out_channels,), np.float32)), name="bias") if bias else None
        )

    def construct(self, x: Tensor) -> Tensor:
        weight = cast_like(self.weight, x)  # mixed precision: float32 weights, float16 maps
        if self.lowered:
            y = self._im2col_matmul(x, weight)
        elif self.padding == "same":
            y = ops.conv2d(x, weight, None, self.stride, "same")
        else:
            y = ops.conv2d(x, weight, None, self.stride, "pad", self.padding)
        if self.has_bias:
            y = y + cast_like(self.bias, x).reshape(1, -1, 1, 1)
        return y

    def _im2col_matmul(self, x: Tensor, weight: Tensor) -> Tensor:
        k, s, o = self.kernel, self.stride, self.out_channels
        pads = resolve_padding(self.padding, k, s, x.shape[2], x.shape[3])
        p = pads[0]
        if pads != (p, p, p, p):  # asymmetric ("same"): a border first, unfold pads nothing
            x, p = _pad(x, pads, 0.0), 0
        n, c, h, w = x.shape
        ho = (h + 2 * p - k) // s + 1
        wo = (w + 2 * p - k) // s + 1
        if k == 1 and s == 1 and p == 0:  # a 1x1 projection: its columns are the map itself
            cols = x.reshape(n, c, ho * wo)
        else:  # unfold also for 1x1/2: a strided slice's CPU backward fails on MindSpore 2.10
            cols = ops.unfold(x, k, 1, p, s)  # (N, C*k*k, Ho*Wo), channel-major like OIHW
        batched = ops.broadcast_to(weight.reshape(1, o, c * k * k), (n, o, c * k * k))
        return ops.bmm(batched, cols).reshape(n, o, ho, wo)

    def extend_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel={self.kernel}, stride={self.stride}, "
            f"padding={self.padding}, bias={self.has_bias}, lowered={self.lowered}"
        )


# -- max pool ---------------------------------------------------------------------
class MaxPool(nn.Cell):
    """Windowed max; padding counts as -inf (as in torch and the oracle)."""

    def __init__(self, node: sn.Pool, *, lowered: bool = False):
        super().__init__()
        self.kernel, self.stride, self.padding = node.kernel, node.stride, node.padding
        self.lowered = lowered
        self.same = node.padding == "same"
        # TensorFlow's SAME, as the spec's "same" (native kernel, exported graphs)
        self.same_pool = ops.MaxPool(kernel_size=node.kernel, strides=node.stride, pad_mode="SAME")

    def construct(self, x: Tensor) -> Tensor:
        if not self.lowered:
            if self.same:
                return self.same_pool(x)
            return ops.max_pool2d(x, self.kernel, self.stride, self.padding)
        k, s = self.kernel, self.stride
        x = _pad(x, resolve_padding(self.padding, k, s, x.shape[2], x.shape[3]), float("-inf"))
        n, c, h, w = x.shape
        ho, wo = (h - k) // s + 1, (w - k) // s + 1
        windows = ops.unfold(x, k, 1, 0, s).reshape(n, c, k * k, ho * wo)
        return ops.max(windows, 2)[0].reshape(n, c, ho, wo)


def _pad(x: Tensor, pads: tuple[int, int, int, int], value: float) -> Tensor:
    """``x`` with (top, bottom, left, right) borders of ``value``, concatenated
    (ops.pad's backward is unreliable on MindSpore 2.10's CPU: module docstring)."""
    top, bottom, left, right = pads
    n, c, h, _ = x.shape
    parts = []
    if left:
        parts.append(ops.full((n, c, h, left), value, dtype=x.dtype))
    parts.append(x)
    if right:
        parts.append(ops.full((n, c, h, right), value, dtype=x.dtype))
    if len(parts) > 1:
        x = ops.cat(parts, 3)
    w = x.shape[3]
    rows = []
    if top:
        rows.append(ops.full((n, c, top, w), value, dtype=x.dtype))
    rows.append(x)
    if bottom:
        rows.append(ops.full((n, c, bottom, w), value, dtype=x.dtype))
    return ops.cat(rows, 2) if len(rows) > 1 else x


# -- switching --------------------------------------------------------------------
def set_lowered(model: nn.Cell, lowered: bool) -> None:
    """Switch every convolution and max pool between the CPU lowering and
    the native kernel (takes effect in graphs compiled afterwards)."""
    for _, cell in model.cells_and_names():
        if isinstance(cell, Conv2d):
            cell.lowered = lowered
        elif isinstance(cell, MaxPool):
            cell.lowered = lowered


def is_lowered(model: nn.Cell) -> bool:
    return any(c.lowered for _, c in model.cells_and_names() if isinstance(c, (Conv2d, MaxPool)))
