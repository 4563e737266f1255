"""The torch Trainer: device-side preprocessing, the core's objective, Adam.

The frame (schedule, seeds, checks, metric averaging, the shared state
layout) is vdreid.trainer.Trainer's; this module fills in what touches
torch. One step: uint8 NHWC batch -> device -> normalise (spec mean/std) ->
the model's paths (grey views made on the device) ->
``vdreid.losses.objective`` with TorchOps -> backward -> Adam. Loss terms
stay on the device, summed until ``metrics()`` fetches their mean: no host
synchronisation per step.

Adam is ``torch.optim.Adam(weight_decay=wd)``: L2 added to the gradient
before the moments, as vdreid.optim specifies, one parameter group per
vdreid.optim group (backbone, head). Frozen tensors (param_table
``trainable=False``) are not given to Adam. Every trainable tensor is
stepped every step (a missing gradient counts as zero, as in MindSpore), so
one step counter serves them all. Dropout draws from torch's generator,
reseeded every epoch.

Distributed (``distributed=True``, one process per device, launched by
torchrun): the model is wrapped in DistributedDataParallel (gradients
averaged over ranks) and ``sync_bn=True`` turns its batch norms into
SyncBatchNorm.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch

from vdreid.errors import ConfigError
from vdreid.losses import LossSpec, objective
from vdreid.optim import OptimConfig, ParamGroup
from vdreid.trainer import Moments, Trainer, TrainerOptions
from vdreid_torch import names
from vdreid_torch.build import MVDModel
from vdreid_torch.ops import TorchOps


def _data_parallel(
    model: MVDModel, device: torch.device, sync_bn: bool
) -> tuple[torch.nn.Module, int, int]:
    """Wrap ``model`` for torch.distributed (initialising it from torchrun's
    environment if needed); returns the wrapper, this process's rank and the
    world size."""
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
        # swaps modules in place, keeps tensors
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids), dist.get_rank(), dist.get_world_size()


class TorchTrainer(Trainer):
    """vdreid.trainer.Trainer for a model from build.build_model.

    Options: ``amp`` bf16 autocast (CUDA only; the CPU computes fp32),
    ``compile`` wraps forward + loss in torch.compile, ``dropout=False``
    switches the classifiers' dropout off, ``seed`` seeds torch's generator,
    ``deterministic`` asks torch for deterministic kernels, ``distributed``
    and ``sync_bn`` (module docstring).
    """

    def __init__(
        self, model: MVDModel, loss_spec: LossSpec, optim: OptimConfig, options: TrainerOptions
    ):
        super().__init__(model.spec, loss_spec, optim, options)
        self.model = model
        self.device = next(model.parameters()).device
        self.cuda = self.device.type == "cuda"
        self.amp = options.amp and self.cuda
        self.ops = TorchOps(self.device)
        if options.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        elif self.cuda:
            torch.backends.cudnn.benchmark = True
        if self.cuda:
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        model.set_dropout(options.dropout)

        held, keys = names.tensors(model), names.framework_keys(self.spec)
        self.params = {n: held[keys[n]] for n in self.names}
        for p in self.params.values():
            p.requires_grad_(True)
        self.fused = self.cuda
        self.optimizer = torch.optim.Adam(
            [
                {"params": [self.params[n] for n in ns], "name": g}
                for g, ns in self.groups.items()
                if ns
            ],
            lr=optim.lr,
            betas=optim.betas,
            eps=optim.eps,
            weight_decay=optim.weight_decay,
            fused=self.fused or None,
        )
        self.net: torch.nn.Module = model  # what the forward calls: the model or its DDP wrapper
        if options.distributed:
            self.net, self.rank, self.world = _data_parallel(model, self.device, options.sync_bn)
        self._sums: dict[str, torch.Tensor] = {}
        self._forward_loss = (
            torch.compile(self._loss_terms) if options.compile else self._loss_terms
        )
        self.set_epoch(0)

    # -- schedule -----------------------------------------------------------
    def _apply_learning_rates(self, rates: Mapping[ParamGroup, float]) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = rates[group["name"]]

    def _reseed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def learning_rates(self) -> dict[str, float]:
        """What Adam's parameter groups hold."""
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

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        """A host array on the device. On CUDA it goes through pinned memory
        (torch's caching host allocator reuses the blocks) so the copy is
        asynchronous: the host goes on queueing the step."""
        host = torch.from_numpy(np.ascontiguousarray(array))
        if self.cuda:
            host = host.pin_memory()
        return host.to(self.device, non_blocking=True)

    def _step(self, images: np.ndarray, labels: np.ndarray, modality: np.ndarray) -> bool:
        self.model.train()
        terms = self._forward_loss(
            self._to_device(images),
            self._to_device(labels.astype(np.int64)),
            self._to_device(modality.astype(np.int64)),
        )
        self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        for p in self.params.values():
            if p.grad is None:  # unused by this loss: step it with a zero gradient
                p.grad = torch.zeros_like(p)
        self.optimizer.step()
        with torch.no_grad():
            for k, v in terms.items():
                v = v.detach().float()
                self._sums[k] = self._sums[k] + v if k in self._sums else v
        return True

    def _take_sums(self) -> dict[str, float]:
        keys = list(self._sums)
        values = torch.stack([self._sums[k] for k in keys]).double().cpu().tolist()
        self._sums = {}
        return dict(zip(keys, values, strict=True))

    def _sum_over_ranks(self, values: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(values, dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return t.cpu().numpy()

    def close(self) -> None:
        """End a distributed run cleanly: wait for every rank, then tear the
        process group down (a rank exiting with gloo threads alive aborts)."""
        dist = torch.distributed
        if self.options.distributed and dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

    # -- state --------------------------------------------------------------
    def _model_state(self) -> dict[str, np.ndarray]:
        return names.get_state(self.model, self.spec)

    def _load_model_state(self, state: Mapping[str, np.ndarray]) -> None:
        names.set_state(self.model, self.spec, state)

    def _moments(self) -> dict[str, Moments]:
        out = {}
        for n, p in self.params.items():
            st = self.optimizer.state.get(p, {})
            m, v = (st.get(slot) for slot in ("exp_avg", "exp_avg_sq"))
            out[n] = (
                _host(m) if m is not None else np.zeros(p.shape, np.float32),
                _host(v) if v is not None else np.zeros(p.shape, np.float32),
            )
        return out

    def _load_moments(self, moments: Mapping[str, Moments] | None) -> None:
        self.optimizer.state.clear()
        if moments is None or self.steps == 0:
            return
        for n, p in self.params.items():
            m, v = moments[n]
            self.optimizer.state[p] = {
                "step": torch.tensor(
                    float(self.steps), dtype=torch.float32, device=p.device if self.fused else "cpu"
                ),
                "exp_avg": _like(p, m),
                "exp_avg_sq": _like(p, v),
            }


def _host(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy().copy()


def _like(p: torch.Tensor, value: np.ndarray) -> torch.Tensor:
    """A tensor with ``p``'s device and memory format holding ``value``."""
    out = torch.empty_like(p, requires_grad=False)
    with torch.no_grad():
        out.copy_(torch.from_numpy(np.array(value, dtype=np.float32)))
    return out
