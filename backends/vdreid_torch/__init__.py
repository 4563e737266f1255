"""PyTorch backend for vdreid (entry point ``vdreid.backends: torch``)."""

from vdreid_torch.backend import TorchBackend

__all__ = ["TorchBackend"]
