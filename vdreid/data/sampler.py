"""The identity x modality balanced sampler of the official MVD code.

One epoch is one pass over the identities: the identities are shuffled,
and each contributes K visible and K infrared images (drawn without
replacement when it has at least K in that modality, with replacement
otherwise), INTERLEAVED as the official ``CamRandomIdentitySampler``:
``v1 i1 v2 i2 ... vK iK``. The stream is cut into global batches of
P identities (P * 2K images); the incomplete tail is dropped, so an epoch
has ``floor(ids * 2K / (P * 2K)) = ids // P`` iterations (SYSU official:
395 ids, P=16, K=4 -> 24 iterations of 128).

Determinism and resumption: the batches of epoch e depend on (seed, e)
only, so (epoch, position) is the whole state; :meth:`state` and
:meth:`load_state` carry it across checkpoints and a resumed run sees
exactly the batches it would have seen.

Distributed data parallel: with ``world`` ranks, rank r takes the r-th
contiguous slice of every global batch (P / world identities); ``P`` must
be divisible by ``world`` so that no identity is split across ranks.

Identities seen in one modality only cannot give K + K images: by default
that is an error naming them; ``single_modality="drop"`` leaves them out
of sampling (they never appear in batches).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from vdreid.data.records import Modality
from vdreid.errors import ConfigError, DataError


class IdentitySampler:
    def __init__(
        self,
        labels: np.ndarray,
        modality: np.ndarray,
        *,
        ids_per_batch: int,
        instances: int,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        single_modality: str = "error",
    ):
        labels, modality = np.asarray(labels, dtype=np.int64), np.asarray(modality, dtype=np.int64)
        if labels.shape != modality.shape or labels.ndim != 1:
            raise ConfigError(
                f"labels {labels.shape} and modality {modality.shape} must be 1-D and equal length"
            )
        if ids_per_batch < 1 or instances < 1:
            raise ConfigError(
                f"ids_per_batch and instances must be >= 1, got {ids_per_batch} and {instances}"
            )
        if world < 1 or not 0 <= rank < world:
            raise ConfigError(f"rank must be in 0..world-1, got rank={rank} world={world}")
        if ids_per_batch % world:
            raise ConfigError(
                f"ids_per_batch={ids_per_batch} is not divisible by world={world}; each rank must get whole "
                f"identities: use a multiple of {world}"
            )
        if single_modality not in ("error", "drop"):
            raise ConfigError(f"single_modality must be 'error' or 'drop', got {single_modality!r}")
        self.ids_per_batch, self.instances = ids_per_batch, instances
        self.seed, self.rank, self.world = seed, rank, world
        self.ids, self.visible, self.infrared = _positions(labels, modality, single_modality)
        if len(self.ids) < ids_per_batch:
            raise DataError(
                f"only {len(self.ids)} identities have both modalities but a batch needs ids_per_batch={ids_per_batch}; "
                "lower ids_per_batch or add identities"
            )
        self.epoch, self.position = 0, 0

    @property
    def batch_size(self) -> int:
        """Global batch size P * 2K."""
        return self.ids_per_batch * 2 * self.instances

    @property
    def local_batch_size(self) -> int:
        return self.batch_size // self.world

    def __len__(self) -> int:
        """Iterations per epoch (one pass over identities, tail dropped)."""
        return len(self.ids) // self.ids_per_batch

    def epoch_batches(self, epoch: int) -> np.ndarray:
        """All global batches of ``epoch``: (iterations, P * 2K) record indices."""
        rng = np.random.default_rng([self.seed, epoch])
        k = self.instances
        order = rng.permutation(len(self.ids))[: len(self) * self.ids_per_batch]
        out = np.empty((len(order), 2 * k), dtype=np.int64)
        for row, i in enumerate(order):
            out[row, 0::2] = _draw(rng, self.visible[i], k)
            out[row, 1::2] = _draw(rng, self.infrared[i], k)
        return out.reshape(len(self), self.batch_size)

    def batch(self, epoch: int, step: int) -> np.ndarray:
        """This rank's slice of global batch ``step`` of ``epoch``."""
        if not 0 <= step < len(self):
            raise ConfigError(f"step must be in 0..{len(self) - 1}, got {step}")
        return self._slice(self.epoch_batches(epoch)[step])

    def _slice(self, global_batch: np.ndarray) -> np.ndarray:
        n = self.local_batch_size
        return global_batch[self.rank * n : (self.rank + 1) * n]

    def __iter__(self) -> Iterator[np.ndarray]:
        """This rank's batches from the current (epoch, position) to the end of that epoch.

        The position advances as batches are taken; after the last one the
        state moves to (epoch + 1, 0).
        """
        batches = self.epoch_batches(self.epoch)
        while self.position < len(batches):
            b = self._slice(batches[self.position])
            self.position += 1
            yield b
        self.epoch, self.position = self.epoch + 1, 0

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state(self, state: dict[str, int]) -> None:
        if int(state.get("seed", self.seed)) != self.seed:
            raise ConfigError(
                f"sampler state was saved with seed {state['seed']}, this sampler uses seed {self.seed}; "
                "resume with the original seed"
            )
        position = int(state["position"])
        if not 0 <= position <= len(self):
            raise ConfigError(
                f"sampler position {position} is outside 0..{len(self)} for this dataset"
            )
        self.epoch, self.position = int(state["epoch"]), position

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its first batch."""
        self.epoch, self.position = int(epoch), 0


def _draw(rng: np.random.Generator, pool: np.ndarray, k: int) -> np.ndarray:
    return rng.choice(pool, k, replace=len(pool) < k)


def _positions(
    labels: np.ndarray, modality: np.ndarray, single_modality: str
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Identities with both modalities, and per identity the record indices of each."""
    ids, visible, infrared, lonely = [], [], [], []
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    for group in np.split(order, bounds):
        if group.size == 0:
            continue
        vis = group[modality[group] == Modality.VISIBLE]
        ir = group[modality[group] == Modality.INFRARED]
        if vis.size and ir.size:
            ids.append(int(labels[group[0]]))
            visible.append(vis)
            infrared.append(ir)
        else:
            lonely.append(int(labels[group[0]]))
    if lonely and single_modality == "error":
        raise DataError(
            f"{len(lonely)} training identit{'y has' if len(lonely) == 1 else 'ies have'} images of one modality only "
            f"(labels {lonely[:8]}{'...' if len(lonely) > 8 else ''}); the sampler needs K visible and K infrared "
            "images per identity: fix the dataset, or pass single_modality='drop' to leave them out"
        )
    return np.asarray(ids, dtype=np.int64), visible, infrared
