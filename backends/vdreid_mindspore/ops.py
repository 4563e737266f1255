"""Ops on MindSpore tensors. A class (not module-level lambdas) so the same
loss code traces inside ms.jit (GRAPH mode) and runs in PYNATIVE mode."""

from __future__ import annotations

import numpy as np
from mindspore import Tensor, ops

from vdreid_mindspore._quiet import mindspore as ms


class MSOps:
    name = "mindspore"

    def __init__(self, dtype=ms.float32):
        self.dtype = dtype

    def asarray(self, x: np.ndarray) -> Tensor:
        a = np.asarray(x)
        if a.dtype.kind == "f":
            return Tensor(a.astype(np.float32), self.dtype)
        return Tensor(a.astype(np.int32) if a.dtype.kind in "iu" else a)

    def to_numpy(self, x: Tensor) -> np.ndarray:
        return x.asnumpy()

    def to_float(self, x: Tensor) -> Tensor:
        return x.astype(self.dtype) if x.dtype == ms.bool_ else x

    def one_hot(self, labels: Tensor, num_classes: int) -> Tensor:
        on, off = Tensor(1.0, self.dtype), Tensor(0.0, self.dtype)
        return ops.one_hot(labels.astype(ms.int32), num_classes, on, off)

    def eye(self, n: int) -> Tensor:
        return ops.eye(n, n, self.dtype)

    def exp(self, x: Tensor) -> Tensor:
        return ops.exp(x)

    def log(self, x: Tensor) -> Tensor:
        return ops.log(x)

    def sqrt(self, x: Tensor) -> Tensor:
        return ops.sqrt(x)

    def abs(self, x: Tensor) -> Tensor:
        return ops.abs(x)

    def clip(self, x: Tensor, lo: float | None = None, hi: float | None = None) -> Tensor:
        return ops.clamp(x, lo, hi)

    def where(self, cond: Tensor, a, b) -> Tensor:
        return ops.where(cond, a, b)

    def stop_gradient(self, x: Tensor) -> Tensor:
        return ops.stop_gradient(x)

    def sum(self, x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return ops.sum(x, axis, keepdims)

    def mean(self, x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return ops.mean(x, axis, keepdims)

    def max(self, x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return ops.amax(x, axis if axis is not None else (), keepdims)

    def min(self, x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return ops.amin(x, axis if axis is not None else (), keepdims)

    def matmul(self, a: Tensor, b: Tensor) -> Tensor:
        return ops.matmul(a, b)

    def transpose(self, x: Tensor) -> Tensor:
        return ops.swapaxes(x, -1, -2)

    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        return ops.reshape(x, shape)

    def concat(self, xs: list[Tensor], axis: int = 0) -> Tensor:
        return ops.cat(xs, axis)

    def softmax(self, x: Tensor, axis: int = -1) -> Tensor:
        return ops.softmax(x, axis)

    def log_softmax(self, x: Tensor, axis: int = -1) -> Tensor:
        return ops.log_softmax(x, axis)

    def logsumexp(self, x: Tensor, axis: int = -1, keepdims: bool = False) -> Tensor:
        return ops.logsumexp(x, axis, keepdims)
