"""The torch Trainer: device-side preprocessing, the core's objective, Adam.

One step: uint8 NHWC batch -> device -> normalise (spec mean/std) -> the
model's paths (grey views made on the device) -> ``vdreid.losses.objective``
with TorchOps -> backward -> Adam. Loss terms stay on the device, summed
until :meth:`TorchTrainer.metrics` fetches their mean: no host
synchronisation per step.

Adam is ``torch.optim.Adam(weight_decay=wd)``: L2 added to the gradient
before the moments, as vdreid.optim specifies. Two parameter groups
(backbone, head) get their learning rates from ``vdreid.optim.lr_at``.
Frozen tensors (param_table ``trainable=False``) are not given to Adam.
Every trainable tensor is stepped every step (a missing gradient counts as
zero, as in MindSpore), so one step counter serves them all.

Randomness (dropout) is reseeded in :meth:`set_epoch` from (seed, epoch,
rank), so a run resumed at an epoch boundary draws the same masks as the
uninterrupted one.

Distributed (``distributed=True``, one process per device, launched by
torchrun): the model is wrapped in DistributedDataParallel (gradients
averaged over ranks), ``sync_bn=True`` turns its batch norms into
SyncBatchNorm, and :meth:`metrics` averages the terms over ranks.

State exchanged with :meth:`state`/:meth:`load` (shared by all backends):
canonical model tensors, ``optim/m/<name>`` and ``optim/v/<name>`` (Adam
moments, float32) for every trainable tensor, ``optim/step`` (int64).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch

from vdreid.backend_inputs import checked_batch
from vdreid.checkpoint import model_state, namespace_state
from vdreid.errors import ConfigError
from vdreid.losses import LossSpec, objective
from vdreid.losses.objective import check_outputs
from vdreid.optim import (
    OPTIM,
    OptimConfig,
    epoch_seed,
    lr_at,
    optim_keys,
    optimizer_step,
    param_group,
)
from vdreid.spec import PATH_OUTPUTS, param_table, trainable_names
from vdreid_torch import names
from vdreid_torch.build import MVDModel
from vdreid_torch.ops import TorchOps

#: what TorchTrainer takes (the backend checks a caller's options against it)
OPTIONS = ("amp", "compile", "dropout", "seed", "deterministic", "distributed", "sync_bn")


def _data_parallel(
    model: MVDModel, device: torch.device, sync_bn: bool
) -> tuple[torch.nn.Module, int]:
    """Wrap ``model`` for torch.distributed (initialising it from torchrun's
    environment if needed); returns the wrapper and this process's rank."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    if not dist.is_available():
        raise ConfigError("distributed training needs a torch build with torch.distributed")
    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ:
            raise ConfigError(
                "distributed=True but torch.distributed is not initialised and no launcher "
                "environment (MASTER_ADDR, RANK, WORLD_SIZE) is set; start the run with torchrun"
            )
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if sync_bn and device.type != "cuda":
        raise ConfigError(
            f"sync_bn needs CUDA devices (torch's SyncBatchNorm); this run is on {device}"
        )
    if sync_bn:
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(
            model
        )  # swaps modules in place, keeps tensors
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids), dist.get_rank()


class TorchTrainer:
    """Implements vdreid.backend.Trainer for a model from build.build_model.

    Options: ``amp`` bf16 autocast (CUDA only; CPU always computes fp32),
    ``compile`` wraps forward + loss in torch.compile, ``dropout=False``
    switches the classifiers' dropout off (parity runs against the oracle),
    ``seed`` seeds torch's generator (dropout) for reproducible CPU runs,
    ``deterministic`` asks torch for deterministic kernels.
    """

    def __init__(
        self,
        model: MVDModel,
        loss_spec: LossSpec,
        optim: OptimConfig,
        *,
        amp: bool = True,
        compile: bool = False,
        dropout: bool = True,
        seed: int | None = None,
        deterministic: bool = False,
        distributed: bool = False,
        sync_bn: bool = False,
    ):
        self.model = model
        self.spec = model.spec
        self.loss_spec = loss_spec
        self.optim_config = optim
        self.device = next(model.parameters()).device
        self.cuda = self.device.type == "cuda"
        self.amp = amp and self.cuda
        self.ops = TorchOps(self.device)
        check_outputs(loss_spec, [f"{p.name}.{o}" for p in self.spec.paths for o in PATH_OUTPUTS])
        self.seed = seed
        self.rank = 0
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        elif self.cuda:
            torch.backends.cudnn.benchmark = True
        if self.cuda:
            self.model.to(memory_format=torch.channels_last)
        model.set_dropout(dropout)

        keys = names.framework_keys(self.spec)
        held = names.tensors(model)
        self.names = trainable_names(param_table(self.spec))
        self.params = {n: held[keys[n]] for n in self.names}
        for p in self.params.values():
            p.requires_grad_(True)
        groups = {"backbone": [], "head": []}
        for n in self.names:
            groups[param_group(n)].append(self.params[n])
        self.fused = self.cuda
        self.optimizer = torch.optim.Adam(
            [{"params": ps, "name": g} for g, ps in groups.items() if ps],
            lr=optim.lr,
            betas=optim.betas,
            eps=optim.eps,
            weight_decay=optim.weight_decay,
            fused=self.fused or None,
        )
        self.net: torch.nn.Module = model  # what the forward calls: the model or its DDP wrapper
        self.distributed = distributed
        if distributed:
            self.net, self.rank = _data_parallel(model, self.device, sync_bn)
        elif sync_bn:
            raise ConfigError(
                "sync_bn=True needs distributed=True (several processes, e.g. torchrun)"
            )
        self.steps = 0
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0
        self._forward_loss = torch.compile(self._loss_terms) if compile else self._loss_terms
        self.set_epoch(0)

    # -- schedule -----------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Learning rates for ``epoch``; reseeds torch's generator (dropout)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.optim_config, epoch, group["name"])
        if self.seed is not None:
            torch.manual_seed(epoch_seed(self.seed, epoch, self.rank))

    def learning_rates(self) -> dict[str, float]:
        return {g["name"]: float(g["lr"]) for g in self.optimizer.param_groups}

    # -- one step -----------------------------------------------------------
    def _loss_terms(
        self, images: torch.Tensor, labels: torch.Tensor, modality: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        x = self.model.normalise(images)
        if self.cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            outputs = self.net(x)
        outputs = {k: v.float() for k, v in outputs.items()}  # the loss math runs in fp32
        return objective(self.ops, self.loss_spec, outputs, labels, modality)

    def _device_batch(self, batch: Mapping[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
        images, labels, modality = checked_batch(batch, self.spec.num_classes)
        move = {"device": self.device, "non_blocking": True}
        return (
            torch.from_numpy(np.ascontiguousarray(images)).to(**move),
            torch.from_numpy(labels.astype(np.int64)).to(**move),
            torch.from_numpy(modality.astype(np.int64)).to(**move),
        )

    def step(self, batch: Mapping[str, np.ndarray]) -> None:
        images, labels, modality = self._device_batch(batch)
        self.model.train()
        terms = self._forward_loss(images, labels, modality)
        self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        for p in self.params.values():
            if p.grad is None:  # unused by this loss: step it with a zero gradient
                p.grad = torch.zeros_like(p)
        self.optimizer.step()
        self.steps += 1
        with torch.no_grad():
            for k, v in terms.items():
                v = v.detach().float()
                self._sums[k] = self._sums[k] + v if k in self._sums else v
        self._count += 1

    def metrics(self) -> dict[str, float]:
        """Mean of each loss term over the steps since the last call (one host sync)."""
        if not self._count:
            return {}
        keys = list(self._sums)
        means = torch.stack([self._sums[k] for k in keys]) / self._count
        if self.distributed:
            torch.distributed.all_reduce(means)
            means = means / torch.distributed.get_world_size()
        values = means.cpu().tolist()
        self._sums, self._count = {}, 0
        return dict(zip(keys, values, strict=True))

    def close(self) -> None:
        """End a distributed run cleanly: wait for every rank, then tear the
        process group down (a rank exiting with gloo threads alive aborts)."""
        dist = torch.distributed
        if self.distributed and dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

    # -- state --------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        out = names.get_state(self.model, self.spec)
        for n, p in self.params.items():
            st = self.optimizer.state.get(p, {})
            mk, vk = optim_keys(n)
            for key, slot in ((mk, "exp_avg"), (vk, "exp_avg_sq")):
                t = st.get(slot)
                out[key] = (
                    t.detach().float().cpu().numpy().copy()
                    if t is not None
                    else np.zeros(p.shape, np.float32)
                )
        out[f"{OPTIM}/step"] = np.array(self.steps, dtype=np.int64)
        return out

    def load(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore model and optimiser. A state without ``optim/`` entries
        (a model-only checkpoint) starts a fresh optimiser."""
        names.set_state(self.model, self.spec, model_state(state))
        optim = namespace_state(state, OPTIM)
        self.optimizer.state.clear()
        self.steps = 0
        if not optim:
            return
        self.steps = optimizer_step(optim, {n: tuple(p.shape) for n, p in self.params.items()})
        if self.steps == 0:
            return
        for n, p in self.params.items():
            self.optimizer.state[p] = {
                "step": torch.tensor(
                    float(self.steps), dtype=torch.float32, device=p.device if self.fused else "cpu"
                ),
                "exp_avg": _like(p, optim[f"m/{n}"]),
                "exp_avg_sq": _like(p, optim[f"v/{n}"]),
            }


def _like(p: torch.Tensor, value: np.ndarray) -> torch.Tensor:
    """A tensor with ``p``'s device and memory format holding ``value``."""
    out = torch.empty_like(p, requires_grad=False)
    with torch.no_grad():
        out.copy_(torch.from_numpy(np.array(value, dtype=np.float32)))
    return out
