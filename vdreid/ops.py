"""The array primitives the loss math needs, and their numpy implementation.

Every loss term in :mod:`vdreid.losses` is written once against :class:`Ops`.
A backend supplies an Ops for its tensors; :class:`NumpyOps` makes the
numpy oracle. Arithmetic (``+ - * /``, unary ``-``, ``**``) and comparisons
(``< <= > >= ==``) use the tensor types' own operators, which numpy, torch
and MindSpore share; everything else goes through an Ops method.

Rules for implementations:
- Methods are plain instance methods (a class-based Ops works inside
  ``ms.jit``; module-level lambdas do not).
- Reductions take ``axis`` (int or None) and ``keepdims``.
- Comparison results are boolean tensors; use :meth:`Ops.to_float` to
  turn them into 0/1 floats of the working dtype.
- ``stop_gradient`` is the identity on values.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

Tensor = Any


class Ops(Protocol):
    """About twenty primitives; see the module docstring for conventions."""

    name: str

    # conversion
    def asarray(self, x: np.ndarray) -> Tensor: ...
    def to_numpy(self, x: Tensor) -> np.ndarray: ...
    def to_float(self, x: Tensor) -> Tensor: ...
    def one_hot(self, labels: Tensor, num_classes: int) -> Tensor: ...
    def eye(self, n: int) -> Tensor: ...

    # elementwise
    def exp(self, x: Tensor) -> Tensor: ...
    def log(self, x: Tensor) -> Tensor: ...
    def sqrt(self, x: Tensor) -> Tensor: ...
    def abs(self, x: Tensor) -> Tensor: ...
    def clip(self, x: Tensor, lo: float | None = None, hi: float | None = None) -> Tensor: ...
    def where(self, cond: Tensor, a: Tensor, b: Tensor) -> Tensor: ...
    def stop_gradient(self, x: Tensor) -> Tensor: ...

    # reductions
    def sum(self, x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor: ...
    def mean(self, x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor: ...
    def max(self, x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor: ...
    def min(self, x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor: ...

    # shapes and linear algebra
    def matmul(self, a: Tensor, b: Tensor) -> Tensor: ...
    def transpose(self, x: Tensor) -> Tensor: ...
    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor: ...
    def concat(self, xs: list[Tensor], axis: int = 0) -> Tensor: ...

    # composites that frameworks provide fused and numerically careful
    def softmax(self, x: Tensor, axis: int = -1) -> Tensor: ...
    def log_softmax(self, x: Tensor, axis: int = -1) -> Tensor: ...
    def logsumexp(self, x: Tensor, axis: int = -1, keepdims: bool = False) -> Tensor: ...


class NumpyOps:
    """Ops on numpy arrays: the oracle. Works in the input's dtype."""

    name = "numpy"

    def asarray(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x)

    def to_numpy(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x)

    def to_float(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32) if np.asarray(x).dtype == bool else np.asarray(x)

    def one_hot(self, labels: np.ndarray, num_classes: int) -> np.ndarray:
        return np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]

    def eye(self, n: int) -> np.ndarray:
        return np.eye(n, dtype=np.float32)

    def exp(self, x: np.ndarray) -> np.ndarray:
        return np.exp(x)

    def log(self, x: np.ndarray) -> np.ndarray:
        return np.log(x)

    def sqrt(self, x: np.ndarray) -> np.ndarray:
        return np.sqrt(x)

    def abs(self, x: np.ndarray) -> np.ndarray:
        return np.abs(x)

    def clip(self, x: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
        return np.clip(x, lo, hi).astype(np.asarray(x).dtype, copy=False)

    def where(self, cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(cond, a, b)

    def stop_gradient(self, x: np.ndarray) -> np.ndarray:
        return x

    def sum(self, x: np.ndarray, axis: int | None = None, keepdims: bool = False) -> np.ndarray:
        return np.sum(x, axis=axis, keepdims=keepdims)

    def mean(self, x: np.ndarray, axis: int | None = None, keepdims: bool = False) -> np.ndarray:
        return np.mean(x, axis=axis, keepdims=keepdims)

    def max(self, x: np.ndarray, axis: int | None = None, keepdims: bool = False) -> np.ndarray:
        return np.max(x, axis=axis, keepdims=keepdims)

    def min(self, x: np.ndarray, axis: int | None = None, keepdims: bool = False) -> np.ndarray:
        return np.min(x, axis=axis, keepdims=keepdims)

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a @ b

    def transpose(self, x: np.ndarray) -> np.ndarray:
        return np.swapaxes(x, -1, -2)

    def reshape(self, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return np.reshape(x, shape)

    def concat(self, xs: list[np.ndarray], axis: int = 0) -> np.ndarray:
        return np.concatenate(xs, axis=axis)

    def softmax(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)

    def log_softmax(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        return x - self.logsumexp(x, axis=axis, keepdims=True)

    def logsumexp(self, x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
        m = np.max(x, axis=axis, keepdims=True)
        out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
        return out if keepdims else np.squeeze(out, axis=axis)
