"""Ops on torch tensors: the core's loss math runs on them unchanged."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


class TorchOps:
    name = "torch"

    def __init__(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        self.device = torch.device(device)
        self.dtype = dtype

    def asarray(self, x: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(x), device=self.device)
        return t.to(self.dtype) if t.is_floating_point() else t

    def to_numpy(self, x: torch.Tensor) -> np.ndarray:
        return (
            x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
        )

    def to_float(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.dtype) if x.dtype == torch.bool else x

    def one_hot(self, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
        return F.one_hot(labels.long(), num_classes).to(self.dtype)

    def eye(self, n: int) -> torch.Tensor:
        return torch.eye(n, device=self.device, dtype=self.dtype)

    def exp(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x)

    def log(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(x)

    def sqrt(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(x)

    def abs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.abs(x)

    def clip(
        self, x: torch.Tensor, lo: float | None = None, hi: float | None = None
    ) -> torch.Tensor:
        return torch.clamp(x, lo, hi)

    def where(self, cond: torch.Tensor, a, b) -> torch.Tensor:
        return torch.where(cond, a, b)

    def stop_gradient(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach()

    def sum(self, x: torch.Tensor, axis: int | None = None, keepdims: bool = False) -> torch.Tensor:
        return x.sum() if axis is None else x.sum(dim=axis, keepdim=keepdims)

    def mean(
        self, x: torch.Tensor, axis: int | None = None, keepdims: bool = False
    ) -> torch.Tensor:
        return x.mean() if axis is None else x.mean(dim=axis, keepdim=keepdims)

    def max(self, x: torch.Tensor, axis: int | None = None, keepdims: bool = False) -> torch.Tensor:
        return x.max() if axis is None else x.amax(dim=axis, keepdim=keepdims)

    def min(self, x: torch.Tensor, axis: int | None = None, keepdims: bool = False) -> torch.Tensor:
        return x.min() if axis is None else x.amin(dim=axis, keepdim=keepdims)

    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b

    def transpose(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(-1, -2)

    def reshape(self, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        return x.reshape(shape)

    def concat(self, xs: list[torch.Tensor], axis: int = 0) -> torch.Tensor:
        return torch.cat(xs, dim=axis)

    def softmax(self, x: torch.Tensor, axis: int = -1) -> torch.Tensor:
        return torch.softmax(x, dim=axis)

    def log_softmax(self, x: torch.Tensor, axis: int = -1) -> torch.Tensor:
        return torch.log_softmax(x, dim=axis)

    def logsumexp(self, x: torch.Tensor, axis: int = -1, keepdims: bool = False) -> torch.Tensor:
        return torch.logsumexp(x, dim=axis, keepdim=keepdims)
