"""Initial weights, drawn once in numpy so every backend starts identical.

Each tensor gets its own generator seeded by (seed, crc32(name)): a
tensor's values depend only on the seed and its name, not on the order of
the table or on which other tensors exist.

Fans follow torch's convention: for a weight of shape (out, in, *kernel),
fan_in = in * prod(kernel) and fan_out = out * prod(kernel).
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from vdreid.errors import ConfigError
from vdreid.spec.model import ModelSpec
from vdreid.spec.nodes import Init
from vdreid.spec.params import param_table


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def draw(init: Init, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """One float32 tensor following ``init``."""
    if init.rule == "zeros":
        return np.zeros(shape, np.float32)
    if init.rule == "ones":
        return np.ones(shape, np.float32)
    if init.rule == "normal":
        mean, std = init.mean, init.std
    else:  # kaiming_normal, ReLU gain sqrt(2)
        if len(shape) < 2:
            raise ValueError(f"kaiming init needs a weight of rank >= 2, got shape {shape}")
        fan_in, fan_out = fans(shape)
        mean, std = 0.0, math.sqrt(2.0 / (fan_out if init.mode == "fan_out" else fan_in))
    values = rng.standard_normal(shape, dtype=np.float32)
    return (values * np.float32(std) + np.float32(mean)).astype(np.float32, copy=False)


def tensor_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode("utf-8"))]))


def init_state(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Canonical name -> float32 initial array for every param_table entry."""
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"the init seed must be a non-negative integer, got {seed!r}")
    return {
        name: draw(info.init, info.shape, tensor_rng(seed, name))
        for name, info in param_table(spec).items()
    }
