"""The MindSpore Trainer: device-side preprocessing, the core's objective, Adam,
compiled into one GRAPH-mode step.

One step: uint8 NHWC batch -> device -> normalise (spec mean/std) -> the
model's paths (grey views made on the device) -> ``vdreid.losses.objective``
with MSOps -> ``ms.value_and_grad`` -> Adam, all inside one ``ms.jit``
function (``pynative=True`` runs the same code eagerly, for debugging).
Loss terms are summed on the device into a Parameter; ``metrics()``
fetches them: no host synchronisation per step.

Adam is written out rather than taken from nn.Adam, whose fused kernel
puts eps inside the bias correction (p -= lr sqrt(bc2)/bc1 m / (sqrt(v) +
eps)); torch's, which vdreid.optim specifies, is

    g += wd p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps),  bc_i = 1 - b_i^t

with the bias corrections computed on the host in float64 as torch does
(the host counts steps, so this costs no synchronisation) and fed to the
graph as inputs, like the learning rates: neither recompiles anything.
1 - b1 and 1 - b2 are computed on the host in float64 too and enter the
graph as constants: the graph would subtract in float32 (1 - 0.999f =
0.00099998713, every second moment 1.3e-5 too small).
Frozen tensors (param_table ``trainable=False``) get no gradient, no
moments and no update; a trainable tensor the loss does not reach gets a
zero gradient and is still decayed and stepped, as in torch.

The frame (schedule, seeds, checks, metric averaging, the shared state
layout) is vdreid.trainer.Trainer's. Dropout masks are drawn on the host
from a numpy generator reseeded every epoch, see build.Classifier.

Distributed (``distributed=True``, one process per device, launched by
msrun; see vdreid_mindspore.distributed): the gradients are averaged over
the ranks inside the compiled step (an all-reduce sum per tensor, divided
by the world size) before weight decay and Adam, so every rank applies the
same update; the ranks must start from the same weights and are checked to
still hold them at ``close()`` (batch-norm running statistics excepted:
each rank keeps those of its own images). ``sync_bn`` is refused
(MindSporeBackend.unsupported_options): MindSpore's SyncBatchNorm is
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

from vdreid.errors import ConfigError
from vdreid.losses import LossSpec, objective
from vdreid.optim import GROUPS, OptimConfig, ParamGroup
from vdreid.spec import param_table, running_names
from vdreid.trainer import Moments, Trainer, TrainerOptions
from vdreid_mindspore import distributed as dist
from vdreid_mindspore import names
from vdreid_mindspore._quiet import mindspore as ms
from vdreid_mindspore.build import MVDModel, set_precision
from vdreid_mindspore.ops import MSOps

LOSS_SCALE = (2.0**16, 2.0, 1000)  # initial scale, factor, clean steps before growing


class TrainStep(nn.Cell):
    """Forward, objective, gradients and the Adam update of one step.

    construct(images, labels, modality, keeps, step_sizes, bc2_sqrt, scale)
    -> whether the gradients were finite; the loss terms are added to
    ``sums``. ``step_sizes`` holds lr / bc1 per parameter group (GROUPS order).

    ``params`` come sorted by group (``bounds[k]:bounds[k + 1]`` is group
    k). Adam runs on one flat vector per group: the group's gradients and
    parameters concatenated, its moments held flat (``m[i]``, ``v[i]``),
    so the arithmetic is a dozen kernels per group instead of a dozen per
    tensor (246 tensors on ``tiny``; MindSpore's CPU runtime pays a fixed
    cost per kernel), and one HyperMap writes each tensor's slice back.
    With ``world`` > 1 the flat gradients are averaged over the ranks first
    (one all-reduce per group).
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
        self.groups = tuple(
            (k, lo, hi)
            for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
            if hi > lo
        )
        #: each group's tensor sizes; its moments are one flat buffer in this order
        self.sizes = tuple(
            tuple(int(np.prod(p.shape)) for p in params[lo:hi]) for _, lo, hi in self.groups
        )
        #: where each tensor starts and ends in its group's flat vector
        self.spans = tuple(
            (tuple(int(a) for a in ends - sz), tuple(int(b) for b in ends))
            for sz, ends in ((np.array(sz), np.cumsum(sz)) for sz in self.sizes)
        )
        self.m = ParameterTuple(
            [
                Parameter(Tensor(np.zeros(sum(sz), np.float32)), name=f"optim.m.{GROUPS[k]}")
                for (k, _, _), sz in zip(self.groups, self.sizes, strict=True)
            ]
        )
        self.v = ParameterTuple(
            [
                Parameter(Tensor(np.zeros(sum(sz), np.float32)), name=f"optim.v.{GROUPS[k]}")
                for (k, _, _), sz in zip(self.groups, self.sizes, strict=True)
            ]
        )
        self.beta2 = optim.betas[1]
        # float64 on the host, rounded once into the graph (module docstring)
        self.one_minus_beta1, self.one_minus_beta2 = (1.0 - b for b in optim.betas)
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
        # one flat vector per group: Adam's arithmetic then runs as a dozen
        # kernels over the group, not a dozen per tensor (module docstring)
        flat = [_flat(grads[lo:hi]) for _, lo, hi in self.groups]
        if self.distributed:  # before the overflow check: every rank then skips alike
            flat = [self.all_reduce(g) * self.inv_world for g in flat]
        finite = True
        if self.amp:
            flat = [g / scale for g in flat]
            finite = ops.stack([ops.isfinite(g).all() for g in flat]).all()
        for i, (k, lo, hi) in enumerate(self.groups):
            p_new, m_new, v_new = adam_values(
                _flat(self.params[lo:hi]),
                self.m[i],
                self.v[i],
                flat[i],
                step_sizes[k],
                bc2_sqrt,
                self.one_minus_beta1,
                self.beta2,
                self.one_minus_beta2,
                self.eps,
                self.wd,
            )
            if self.amp:  # an overflowing step leaves everything as it was
                m_new = ops.select(finite, m_new, self.m[i])
                v_new = ops.select(finite, v_new, self.v[i])
            ops.assign(self.m[i], m_new)
            ops.assign(self.v[i], v_new)
            starts, ends = self.spans[i]
            write = ops.partial(_write_back, self.amp, finite, p_new)
            self.hyper(write, self.params[lo:hi], starts, ends)
        ops.assign_add(self.sums, stacked)
        return finite


def _flat(tensors):
    return ops.cat([t.reshape(-1) for t in tensors])


def _write_back(skippable, finite, flat, p, start, end):
    """``flat[start:end]`` (``p``'s slice of its group's updated vector) into
    ``p``, unless an overflowing amp step is being skipped."""
    new = flat[start:end].reshape(p.shape)
    if skippable:
        new = ops.select(finite, new, p)
    ops.assign(p, new)
    return finite


def adam_values(p, m, v, g, step_size, bc2_sqrt, one_minus_beta1, beta2, one_minus_beta2, eps, wd):
    """torch's Adam with L2, one tensor: the new (p, m, v) (module docstring)."""
    g = g + wd * p
    m_new = m + one_minus_beta1 * (g - m)  # torch's lerp: the same rounding as torch
    v_new = beta2 * v + one_minus_beta2 * g * g
    p_new = p - step_size * m_new / (ops.sqrt(v_new) / bc2_sqrt + eps)
    return p_new, m_new, v_new


def bias_corrections(betas: tuple[float, float], t: int) -> tuple[float, float]:
    """(1 - b1^t, sqrt(1 - b2^t)) in float64, as torch computes them on the host."""
    return 1.0 - betas[0] ** t, math.sqrt(1.0 - betas[1] ** t)


class MindSporeTrainer(Trainer):
    """vdreid.trainer.Trainer for a model from build.build_model.

    Options: ``amp`` float16 O2 with loss scaling on Ascend/GPU (ignored on
    the CPU), ``dropout=False`` switches the classifiers' dropout off,
    ``seed`` seeds the dropout masks (a random seed when None: the masks are
    drawn on the host either way), ``pynative=True`` runs the step eagerly
    instead of compiling it (debugging; slow), ``deterministic`` asks
    GPU/Ascend for deterministic kernels, ``distributed`` joins msrun's
    process group and averages the gradients over it (module docstring).
    ``target`` is the device MindSpore runs on (device.resolve_device).
    """

    def __init__(
        self,
        model: MVDModel,
        loss_spec: LossSpec,
        optim: OptimConfig,
        options: TrainerOptions,
        *,
        target: str = "CPU",
    ):
        super().__init__(model.spec, loss_spec, optim, options)
        # MindSpore's CPU kernels used here are deterministic already; on GPU
        # and Ascend ask the runtime for deterministic kernels.
        if options.deterministic and target != "CPU":
            ms.set_context(deterministic="ON")
        self.distributed = options.distributed
        if options.distributed:
            self.rank, self.world = dist.join()
        self.model = model
        self.amp = options.amp and target in ("Ascend", "GPU")
        self.dropout = options.dropout and bool(model.dropout_slots)
        if self.seed is None:
            self.seed = int(np.random.default_rng().integers(2**63 - 1))
        if self.amp:
            set_precision(model, ms.float16)

        held, keys = names.tensors(model), names.framework_keys(self.spec)
        for n, info in param_table(self.spec).items():
            held[keys[n]].requires_grad = info.trainable and not info.running
        # self.names lists the backbone group first: the step updates each
        # group with one HyperMap over its slice
        self.params = {n: held[keys[n]] for n in self.names}
        bounds = (0, len(self.groups["backbone"]), len(self.names))
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
        self._run = self.step_cell if options.pynative else ms.jit(self.step_cell.construct)
        self._scale, self._clean = LOSS_SCALE[0], 0
        self._check_in_step("start from the same weights")
        self.set_epoch(0)

    # -- schedule -----------------------------------------------------------
    def _apply_learning_rates(self, rates: Mapping[ParamGroup, float]) -> None:
        pass  # each step feeds self.lrs to the compiled graph (no recompilation)

    def _reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

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

    def _step(self, images: np.ndarray, labels: np.ndarray, modality: np.ndarray) -> bool:
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
        if not self.amp:
            return True
        return self._update_scale(bool(finite.asnumpy()))

    def _update_scale(self, finite: bool) -> bool:
        """Dynamic loss scaling from the overflow flag (one sync per step, on
        Ascend/GPU with amp only); False: the step was skipped."""
        _, factor, window = LOSS_SCALE
        if not finite:
            self._scale, self._clean = max(self._scale / factor, 1.0), 0
            return False  # a skipped step does not count for Adam
        self._clean += 1
        if self._clean >= window:
            self._scale, self._clean = self._scale * factor, 0
        return True

    def _take_sums(self) -> dict[str, float]:
        sums = self.step_cell.sums.asnumpy().astype(np.float64)
        self.step_cell.sums.copy_(Tensor(np.zeros(len(self.term_names), np.float32)))
        return dict(zip(self.term_names, sums.tolist(), strict=True))

    def _sum_over_ranks(self, values: np.ndarray) -> np.ndarray:
        return dist.sum_over_ranks(values)

    # -- state --------------------------------------------------------------
    def _model_state(self) -> dict[str, np.ndarray]:
        return names.get_state(self.model, self.spec)

    def _load_model_state(self, state: Mapping[str, np.ndarray]) -> None:
        names.set_state(self.model, self.spec, state)

    def _moments(self) -> dict[str, Moments]:
        cell, out = self.step_cell, {}
        for i, (_, lo, hi) in enumerate(cell.groups):
            m, v = cell.m[i].asnumpy(), cell.v[i].asnumpy()
            offsets = np.cumsum((0, *cell.sizes[i]))
            for j, n in enumerate(self.names[lo:hi]):
                a, b = offsets[j], offsets[j + 1]
                out[n] = (
                    m[a:b].reshape(self.shapes[n]).astype(np.float32, copy=True),
                    v[a:b].reshape(self.shapes[n]).astype(np.float32, copy=True),
                )
        return out

    def _load_moments(self, moments: Mapping[str, Moments] | None) -> None:
        # copy_ writes in place: the compiled step keeps reading these buffers
        cell = self.step_cell
        for i, (_, lo, hi) in enumerate(cell.groups):
            for slot, buf in enumerate((cell.m[i], cell.v[i])):
                if moments is None:
                    host = np.zeros(buf.shape, np.float32)
                else:
                    host = np.concatenate(
                        [
                            np.asarray(moments[n][slot], np.float32).reshape(-1)
                            for n in self.names[lo:hi]
                        ]
                    )
                buf.copy_(Tensor(host))

    def load(self, state: Mapping[str, np.ndarray]) -> None:
        super().load(state)
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
