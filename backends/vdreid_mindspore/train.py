"""The MindSpore Trainer: device-side preprocessing, the core's objective, Adam,
compiled into one GRAPH-mode step.

One step: uint8 NHWC batch -> device -> normalise (spec mean/std) -> the
model's paths (grey views made on the device) -> ``vdreid.losses.objective``
with MSOps -> ``ms.value_and_grad`` -> Adam, all inside one ``ms.jit``
function (``pynative=True`` runs the same code eagerly, for debugging).
Loss terms are summed on the device into a Parameter; :meth:`metrics`
fetches them: no host synchronisation per step.

Adam is written out rather than taken from nn.Adam, whose fused kernel
puts eps inside the bias correction (p -= lr sqrt(bc2)/bc1 m / (sqrt(v) +
eps)); torch's, which vdreid.optim specifies, is

    g += wd p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps),  bc_i = 1 - b_i^t

with the bias corrections computed on the host in float64 as torch does
(the host counts steps, so this costs no synchronisation) and fed to the
graph as inputs, like the learning rates: neither recompiles anything.
Frozen tensors (param_table ``trainable=False``) get no gradient, no
moments and no update; a trainable tensor the loss does not reach gets a
zero gradient and is still decayed and stepped, as in torch.

Dropout masks are drawn on the host from a numpy generator reseeded in
:meth:`set_epoch` from (seed, epoch, rank), see build.Classifier.

Distributed (``distributed=True``, one process per device, launched by
msrun; see vdreid_mindspore.distributed): the gradients are averaged over
the ranks inside the compiled step (an all-reduce sum per tensor, divided
by the world size) before weight decay and Adam, so every rank applies the
same update; the ranks must start from the same weights and are checked to
still hold them at :meth:`close` (batch-norm running statistics excepted:
each rank keeps those of its own images). :meth:`metrics` averages the
terms over ranks. ``sync_bn`` is refused: MindSpore's SyncBatchNorm is
Ascend-only.

Mixed precision (``amp``, Ascend and GPU only; MindSpore's O2 recipe):
the network runs in float16 (build.set_precision: batch norm stays
float32, parameters and Adam stay float32), the loss math in float32, with
dynamic loss scaling: a step whose gradients overflow is skipped (the
parameters and moments are left as they were) and halves the scale; 1000
clean steps double it. The CPU always computes float32.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

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
from vdreid.spec import PATH_OUTPUTS, param_table, running_names, trainable_names
from vdreid_mindspore import distributed as dist
from vdreid_mindspore import names
from vdreid_mindspore._quiet import mindspore as ms
from vdreid_mindspore.build import MVDModel, set_precision
from vdreid_mindspore.ops import MSOps

GROUPS = ("backbone", "head")
#: what MindSporeTrainer takes (the backend checks a caller's options against it)
OPTIONS = ("amp", "dropout", "seed", "pynative", "deterministic", "distributed", "sync_bn")
LOSS_SCALE = (2.0**16, 2.0, 1000)  # initial scale, factor, clean steps before growing


class TrainStep(nn.Cell):
    """Forward, objective, gradients and the Adam update of one step.

    construct(images, labels, modality, keeps, step_sizes, bc2_sqrt, scale)
    -> whether the gradients were finite; the loss terms are added to
    ``sums``. ``step_sizes`` holds lr / bc1 per parameter group (GROUPS order).

    ``params`` come sorted by group (``bounds[k]:bounds[k + 1]`` is group
    k), and each group is updated by one HyperMap with its step size bound:
    that compiles 3-5x faster than a Python loop over the tensors or a
    HyperMap over a per-tensor tuple of step sizes (measured on ``tiny``).
    With ``world`` > 1 the gradients are averaged over the ranks first.
    """

    def __init__(
        self,
        model: MVDModel,
        loss_spec: LossSpec,
        optim: OptimConfig,
        params: list[Parameter],
        bounds: tuple[int, ...],
        *,
        amp: bool,
        world: int = 1,
    ):
        super().__init__()
        self.model = model
        self.loss_spec = loss_spec
        self.msops = MSOps()
        self.output_names = model.output_names(train=True)
        self.term_names = (*loss_spec.terms(), "total")
        self.params = ParameterTuple(params)
        self.m = ParameterTuple(
            [Parameter(ops.zeros_like(p), name=f"optim.m.{p.name}") for p in params]
        )
        self.v = ParameterTuple(
            [Parameter(ops.zeros_like(p), name=f"optim.v.{p.name}") for p in params]
        )
        self.groups = tuple(
            (k, lo, hi)
            for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
            if hi > lo
        )
        self.beta1, self.beta2 = optim.betas
        self.eps, self.wd = optim.eps, optim.weight_decay
        self.amp = amp
        self.sums = Parameter(
            Tensor(np.zeros(len(self.term_names), np.float32)), name="metrics.sums"
        )
        self.grad_fn = ms.value_and_grad(self.loss, None, self.params, has_aux=True)
        self.hyper = ops.HyperMap()
        self.distributed = world > 1
        self.all_reduce = ops.AllReduce() if self.distributed else None
        self.inv_world = 1.0 / world

    def loss(self, images, labels, modality, keeps, scale):
        x = self.model.normalise(images)
        out = self.model(x, keeps)
        outputs = {}
        for i, name in enumerate(self.output_names):
            outputs[name] = out[i].astype(ms.float32) if self.amp else out[i]
        terms = objective(self.msops, self.loss_spec, outputs, labels, modality)
        stacked = ops.stack([terms[k] for k in self.term_names])
        return terms["total"] * scale, stacked

    def construct(self, images, labels, modality, keeps, step_sizes, bc2_sqrt, scale):
        (_, stacked), grads = self.grad_fn(images, labels, modality, keeps, scale)
        if self.distributed:  # before the overflow check: every rank then skips alike
            grads = self.hyper(ops.partial(_rank_mean, self.all_reduce, self.inv_world), grads)
        finite = True
        if self.amp:
            grads = self.hyper(ops.partial(_unscale, scale), grads)
            finite = ops.stack([ops.isfinite(g).all() for g in grads]).all()
        for k, lo, hi in self.groups:
            update = ops.partial(
                _adam_update,
                self.beta1,
                self.beta2,
                self.eps,
                self.wd,
                bc2_sqrt,
                finite,
                self.amp,
                step_sizes[k],
            )
            self.hyper(update, self.params[lo:hi], self.m[lo:hi], self.v[lo:hi], grads[lo:hi])
        ops.assign_add(self.sums, stacked)
        return finite


def _unscale(scale, g):
    return g / scale


def _rank_mean(all_reduce, inv_world, g):
    return all_reduce(g) * inv_world


def adam_values(p, m, v, g, step_size, bc2_sqrt, beta1, beta2, eps, wd):
    """torch's Adam with L2, one tensor: the new (p, m, v) (module docstring)."""
    g = g + wd * p
    m_new = m + (1.0 - beta1) * (g - m)  # torch's lerp: the same rounding as torch
    v_new = beta2 * v + (1.0 - beta2) * g * g
    p_new = p - step_size * m_new / (ops.sqrt(v_new) / bc2_sqrt + eps)
    return p_new, m_new, v_new


def _adam_update(beta1, beta2, eps, wd, bc2_sqrt, finite, skippable, step_size, p, m, v, g):
    """adam_values written into p, m, v in place."""
    p_new, m_new, v_new = adam_values(p, m, v, g, step_size, bc2_sqrt, beta1, beta2, eps, wd)
    if skippable:  # an overflowing amp step leaves everything as it was
        m_new = ops.select(finite, m_new, m)
        v_new = ops.select(finite, v_new, v)
        p_new = ops.select(finite, p_new, p)
    ops.assign(m, m_new)
    ops.assign(v, v_new)
    ops.assign(p, p_new)
    return step_size


def bias_corrections(betas: tuple[float, float], t: int) -> tuple[float, float]:
    """(1 - b1^t, sqrt(1 - b2^t)) in float64, as torch computes them on the host."""
    return 1.0 - betas[0] ** t, math.sqrt(1.0 - betas[1] ** t)


class MindSporeTrainer:
    """Implements vdreid.backend.Trainer for a model from build.build_model.

    Options: ``amp`` float16 O2 with loss scaling on Ascend/GPU (ignored on
    the CPU), ``dropout=False`` switches the classifiers' dropout off
    (parity runs against the oracle), ``seed`` seeds the dropout masks
    (reseeded per epoch and rank), ``pynative=True`` runs the step eagerly
    instead of compiling it (debugging; slow), ``deterministic`` asks
    GPU/Ascend for deterministic kernels, ``distributed`` joins msrun's
    process group and averages the gradients over it (module docstring).
    """

    def __init__(
        self,
        model: MVDModel,
        loss_spec: LossSpec,
        optim: OptimConfig,
        *,
        target: str = "CPU",
        amp: bool = True,
        dropout: bool = True,
        seed: int | None = None,
        pynative: bool = False,
        deterministic: bool = False,
        distributed: bool = False,
        sync_bn: bool = False,
    ):
        # MindSpore's CPU kernels used here are deterministic already; on GPU
        # and Ascend ask the runtime for deterministic kernels.
        if deterministic and target != "CPU":
            ms.set_context(deterministic="ON")
        if sync_bn:
            raise ConfigError(
                "sync_bn=True: the mindspore backend has no synchronised batch norm "
                "(MindSpore's SyncBatchNorm runs on Ascend only); leave sync_bn off, so that "
                "each rank normalises over its own images, or train with --backend torch on CUDA"
            )
        self.distributed = distributed
        self.rank, self.world = dist.join() if distributed else (0, 1)
        self.model = model
        self.spec = model.spec
        self.loss_spec = loss_spec
        self.optim_config = optim
        self.amp = amp and target in ("Ascend", "GPU")
        check_outputs(loss_spec, [f"{p.name}.{o}" for p in self.spec.paths for o in PATH_OUTPUTS])
        self.dropout = dropout and bool(model.dropout_slots)
        self.seed = seed if seed is not None else int(np.random.SeedSequence().entropy % 2**63)
        if self.amp:
            set_precision(model, ms.float16)

        keys = names.framework_keys(self.spec)
        params = names.tensors(model)
        self.names = trainable_names(param_table(self.spec))
        frozen = [n for n, info in param_table(self.spec).items() if not info.trainable]
        for n in frozen:
            params[keys[n]].requires_grad = False
        self.params = {n: params[keys[n]] for n in self.names}
        for p in self.params.values():
            p.requires_grad = True
        # backbone group first: the step updates each group with one HyperMap
        self.names.sort(key=lambda n: GROUPS.index(param_group(n)))
        self.params = {n: self.params[n] for n in self.names}
        bounds = (0, sum(param_group(n) == "backbone" for n in self.names), len(self.names))
        self.step_cell = TrainStep(
            model,
            loss_spec,
            optim,
            list(self.params.values()),
            bounds,
            amp=self.amp,
            world=self.world,
        )
        self.term_names = self.step_cell.term_names
        self._run = self.step_cell if pynative else ms.jit(self.step_cell.construct)
        self.steps = 0
        self._count = 0
        self._scale, self._clean = LOSS_SCALE[0], 0
        self._finite: list[Tensor] = []
        self._check_in_step("start from the same weights")
        self.set_epoch(0)

    # -- schedule -----------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Learning rates for ``epoch``; reseeds the dropout masks from (seed, epoch, rank)."""
        self.lrs = {g: lr_at(self.optim_config, epoch, g) for g in GROUPS}
        self.rng = np.random.default_rng(epoch_seed(self.seed, epoch, self.rank))

    def learning_rates(self) -> dict[str, float]:
        return dict(self.lrs)

    # -- one step -----------------------------------------------------------
    def _keeps(self, n: int) -> tuple[Tensor, ...] | None:
        if not self.dropout:
            return None
        keeps = []
        for slot in self.model.dropout_slots:
            mask = self.rng.random((n, slot.width), dtype=np.float32) >= np.float32(slot.p)
            keeps.append(Tensor(mask.astype(np.float32) / np.float32(1.0 - slot.p)))
        # mutable: a plain tuple of tensors is a compile-time constant for
        # ms.jit, so every new mask would recompile the step
        return ms.mutable(tuple(keeps))

    def step(self, batch: Mapping[str, np.ndarray]) -> None:
        images, labels, modality = checked_batch(batch, self.spec.num_classes)
        bc1, bc2_sqrt = bias_corrections(self.optim_config.betas, self.steps + 1)
        step_sizes = Tensor(np.array([self.lrs[g] / bc1 for g in GROUPS], np.float32))
        self.model.set_train(True)
        self.step_cell.set_train(True)
        finite = self._run(
            Tensor(np.ascontiguousarray(images)),
            Tensor(labels.astype(np.int32)),
            Tensor(modality.astype(np.int32)),
            self._keeps(len(images)),
            step_sizes,
            Tensor(np.float32(bc2_sqrt)),
            Tensor(np.float32(self._scale if self.amp else 1.0)),
        )
        self.steps += 1
        self._count += 1
        if self.amp:
            self._update_scale(bool(finite.asnumpy()))

    def _update_scale(self, finite: bool) -> None:
        # dynamic loss scaling needs the overflow flag: one sync per step, on
        # Ascend/GPU with amp only
        _, factor, window = LOSS_SCALE
        if not finite:
            self._scale, self._clean = max(self._scale / factor, 1.0), 0
            self.steps -= 1  # a skipped step does not count for Adam
            return
        self._clean += 1
        if self._clean >= window:
            self._scale, self._clean = self._scale * factor, 0

    def metrics(self) -> dict[str, float]:
        """Mean of each loss term over the steps since the last call (one host sync)."""
        if not self._count:
            return {}
        sums = self.step_cell.sums
        if self.distributed:
            sums = dist.mean_over_ranks(sums, self.world)
        sums = sums.asnumpy().astype(np.float64) / self._count
        self.step_cell.sums.copy_(Tensor(np.zeros(len(self.term_names), np.float32)))
        self._count = 0
        return {k: float(v) for k, v in zip(self.term_names, sums, strict=True)}

    # -- state --------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        out = names.get_state(self.model, self.spec)
        for i, n in enumerate(self.names):
            mk, vk = optim_keys(n)
            out[mk] = self.step_cell.m[i].asnumpy().astype(np.float32, copy=True)
            out[vk] = self.step_cell.v[i].asnumpy().astype(np.float32, copy=True)
        out[f"{OPTIM}/step"] = np.array(self.steps, dtype=np.int64)
        return out

    def load(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore model and optimiser. A state without ``optim/`` entries
        (a model-only checkpoint) starts a fresh optimiser."""
        names.set_state(self.model, self.spec, model_state(state))
        optim = namespace_state(state, OPTIM)
        shapes = {n: tuple(p.shape) for n, p in self.params.items()}
        steps = optimizer_step(optim, shapes) if optim else 0
        # copy_ writes in place: the compiled step keeps reading these buffers
        for i, n in enumerate(self.names):
            for buf, key in ((self.step_cell.m[i], f"m/{n}"), (self.step_cell.v[i], f"v/{n}")):
                value = optim[key] if optim else np.zeros(buf.shape, np.float32)
                buf.copy_(Tensor(np.asarray(value, np.float32)))
        self.steps = steps
        self._check_in_step("load the same state")

    # -- distributed --------------------------------------------------------
    def _shared_state(self) -> dict[str, np.ndarray]:
        """What every rank holds alike: all but the batch-norm running statistics."""
        running = set(running_names(param_table(self.spec)))
        return {k: v for k, v in self.state().items() if k not in running}

    def _check_in_step(self, when: str) -> None:
        if not self.distributed:
            return
        bad = dist.differing(self._shared_state(), self.world)
        if bad:
            raise ConfigError(
                f"the {self.world} ranks must {when}, but {len(bad)} tensor(s) differ between them "
                f"({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}); give every rank the same "
                "--seed, --pretrained and --resume files"
            )

    def close(self) -> None:
        """End a distributed run: check that the ranks still hold the same
        weights (a bug otherwise: the averaged gradients keep them equal), then
        release the process group. Nothing to do for a single process."""
        if not self.distributed:
            return
        bad = dist.differing(self._shared_state(), self.world)
        dist.leave()
        self.distributed = False
        if bad:
            raise RuntimeError(
                f"after training, {len(bad)} tensor(s) differ between the {self.world} ranks "
                f"({', '.join(bad[:5])}); the gradient all-reduce did not keep them in step"
            )
