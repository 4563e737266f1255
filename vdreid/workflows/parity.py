"""Cross-backend parity: the same canonical weights and batch give the same
numbers on every backend and on the numpy oracle.

Runs through the Backend protocol only (no framework is imported here) and
returns one row per (check, backend, reference) with the largest
difference found and the tensor or term where it occurs. Used by
``vdreid doctor --parity`` and tests/contract/test_parity.py.

The case is data: the ``tiny`` spec, ``init_state`` with perturbed
batch-norm statistics, shifts, biases, channel-attention scalars and
larger classifier weights (nothing trivially zero), and a seeded uint8
batch of two identities in both modalities. Checks:

- ``outputs (eval)`` / ``outputs (train)``: every forward output against
  the oracle (train mode: batch statistics, dropout off); ``running stats``:
  the batch-norm statistics that train-mode forward leaves.
- ``features``: ``backend.features`` on uint8 images against the oracle's
  test feature.
- ``loss terms``: the terms of a training step (computed before its
  update) against the objective on the oracle's outputs with NumpyOps.
- ``one step: parameters``: every parameter and running statistic after
  one step against the first backend's, from the same WARM trainer state
  (``warm_optimizer_state``: step 10, non-zero moments). From a fresh
  optimiser (v = 0) Adam's first update is lr * g / (|g| + eps), i.e.
  +-lr for any |g| >> eps, so an element whose gradient is float32 noise
  (|g| ~ 1e-7 where the median is 1e-2: a dead unit, a bias followed by
  batch norm, whose exact gradient is zero) moves by +-lr depending on
  rounding, and two correct backends differ there by up to 2 lr (measured:
  7e-4 with lr 3.5e-3 in 2 of 46k elements). With warm moments the update
  is continuous in g. Loading the same trainer state on both backends also
  checks that a run resumes across backends.
- ``one step: moments``: Adam's m and v after that step, i.e. the
  gradients. Their tolerance is looser: a gradient that is one sum over
  ~10^4 products with cancellation (the channel-attention scalars, some
  batch-norm scales) changes by up to ~1e-3 relative with the float32
  summation order. Measured on the case: MindSpore vs torch 3e-4 (V's
  cam2 scalar); each of them vs a float64 torch gradient 6e-4 / 9e-4.
- ``checkpoint``: a state saved by one backend (safetensors file), loaded
  by the other, gives the saver's features.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from vdreid import registry
from vdreid.backend import Backend
from vdreid.checkpoint import load_checkpoint, model_state, save_checkpoint
from vdreid.losses import LossSpec, objective
from vdreid.ops import NumpyOps
from vdreid.optim import OPTIM, OptimConfig, optim_keys
from vdreid.presets import recipe
from vdreid.reference import reference_forward, reference_forward_with_stats
from vdreid.spec import (
    ModelSpec,
    init_state,
    param_table,
    preprocess,
    running_names,
    trainable_names,
)
from vdreid.trainer import TrainerOptions

#: largest allowed difference per check: (kind, tolerance). fp32 backends
#: against the float64 oracle differ by rounding in summation order.
TOLERANCES: dict[str, tuple[Literal["abs", "rel"], float]] = {
    "outputs (eval)": ("abs", 1e-4),
    "outputs (train)": ("abs", 1e-4),
    "running stats": ("abs", 1e-4),
    "features": ("abs", 1e-4),
    "loss terms": ("rel", 1e-4),
    "one step: parameters": ("rel", 1e-5),
    "one step: moments": ("rel", 1e-3),
    "checkpoint": ("abs", 1e-4),
}
NUM_CLASSES = 4
#: the options that make a training step deterministic and comparable
PARITY_OPTIONS = TrainerOptions(amp=False, dropout=False, seed=0)
WARM_STEP = 10
#: relative differences divide by max(|reference|, REL_FLOOR) per tensor
REL_FLOOR = 1e-6


@dataclasses.dataclass(frozen=True)
class Diff:
    """The largest difference of one check: ``backend`` measured against ``against``."""

    check: str
    backend: str
    against: str
    worst: str
    value: float
    kind: Literal["abs", "rel"]
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.value)) and self.value <= self.tolerance


@dataclasses.dataclass(frozen=True)
class ParityReport:
    rows: list[Diff]
    skipped: dict[str, str]  # backend -> why it did not run

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)


@dataclasses.dataclass(frozen=True)
class ParityCase:
    spec: ModelSpec
    state: dict[str, np.ndarray]
    batch: dict[str, np.ndarray]
    loss: LossSpec
    optim: OptimConfig

    @property
    def images(self) -> np.ndarray:
        """The batch normalised (float32 NCHW), what forward takes."""
        return preprocess(self.spec, self.batch["images"])


def perturbed_state(spec: ModelSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """init_state plus perturbations that make every part of the network matter."""
    rng = np.random.default_rng(seed)
    state = init_state(spec, seed)
    for name, info in param_table(spec).items():
        shape = info.shape
        if info.role == "bn_mean":
            state[name] = rng.normal(0.0, 0.1, shape).astype(np.float32)
        elif info.role == "bn_var":
            state[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif info.role in ("bn_shift", "bias"):
            state[name] = rng.normal(0.0, 0.05, shape).astype(np.float32)
        elif info.role == "scalar":  # channel attention; large values make fp32 CAM ill-conditioned
            state[name] = rng.uniform(-0.1, 0.1, shape).astype(np.float32)
        elif info.role == "weight" and "classifier" in name:
            state[name] = state[name] * np.float32(50.0)  # logits far from uniform
    return state


def warm_optimizer_state(spec: ModelSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Adam state as after WARM_STEP steps: m ~ N(0, 1e-3), sqrt(v) ~ U(0.5, 1.5) * 1e-2,
    for every trainable tensor (the shared ``optim/...`` layout)."""
    rng = np.random.default_rng([seed, WARM_STEP])
    out: dict[str, np.ndarray] = {f"{OPTIM}/step": np.array(WARM_STEP, np.int64)}
    table = param_table(spec)
    for name in trainable_names(table):
        shape = table[name].shape
        m_key, v_key = optim_keys(name)
        out[m_key] = rng.normal(0.0, 1e-3, shape).astype(np.float32)
        out[v_key] = (rng.uniform(0.5, 1.5, shape) * 1e-2).astype(np.float32) ** 2
    return out


def parity_case(seed: int = 0, loss: str = "official") -> ParityCase:
    tiny = recipe("tiny")
    spec = tiny.model_spec(NUM_CLASSES)
    rng = np.random.default_rng([seed, 7])
    images = rng.integers(0, 256, (8, spec.input.height, spec.input.width, 3), dtype=np.uint8)
    batch: dict[str, np.ndarray] = {
        "images": images,
        "labels": np.repeat(np.arange(2, dtype=np.int64), 4),
        "modality": np.tile(np.array([0, 0, 1, 1], dtype=np.int64), 2),
    }
    return ParityCase(spec, perturbed_state(spec, seed), batch, recipe(loss).loss, tiny.optim)


def largest(
    check: str,
    backend: str,
    against: str,
    got: Mapping[str, np.ndarray],
    want: Mapping[str, np.ndarray],
) -> Diff:
    """The largest difference over the names of ``want`` (all must be in ``got``)."""
    kind, tol = TOLERANCES[check]
    missing = sorted(set(want) - set(got))
    if missing:
        return Diff(check, backend, against, f"missing {missing[:3]}", float("inf"), kind, tol)
    worst, value = "-", 0.0
    for name in want:
        a = np.asarray(got[name], np.float64)
        b = np.asarray(want[name], np.float64)
        if a.shape != b.shape:
            return Diff(
                check,
                backend,
                against,
                f"{name}: shape {a.shape} != {b.shape}",
                float("inf"),
                kind,
                tol,
            )
        d = float(np.max(np.abs(a - b))) if a.size else 0.0
        if kind == "rel":
            d /= max(float(np.max(np.abs(b))) if b.size else 0.0, REL_FLOOR)
        if not np.isfinite(d):
            return Diff(check, backend, against, name, float("inf"), kind, tol)
        if d > value or worst == "-":
            worst, value = name, d
    return Diff(check, backend, against, worst, value, kind, tol)


@dataclasses.dataclass
class BackendRun:
    """What one backend produced on the case; ``model`` has its feature graph built."""

    name: str
    backend: Backend
    model: object
    terms: dict[str, float]
    stepped: dict[str, np.ndarray]


def _fresh(backend: Backend, case: ParityCase):
    model = backend.build(case.spec, device="cpu")
    backend.set_state(model, case.state)
    return model


def _features(run: BackendRun, case: ParityCase) -> np.ndarray:
    images = case.batch["images"]
    return run.backend.features(run.model, images, batch_size=len(images))


def run_backend(
    name: str, case: ParityCase, say: Callable[[str], None], *, forward: bool = True
) -> tuple[BackendRun, list[Diff]]:
    """Checks of ``name`` against the oracle (``forward=False`` skips the
    forward outputs and running statistics); keeps what the pairwise checks need.
    A backend that does not train (``Backend.trains``) gets the eval-mode and
    feature checks only."""
    b = registry.get(name)
    images = case.images
    rows = []
    want, stats = reference_forward_with_stats(case.spec, case.state, images)
    if forward:
        say(f"{name}: forward against the oracle")
        model = _fresh(b, case)
        oracle = reference_forward(case.spec, case.state, images)
        rows.append(largest("outputs (eval)", name, "oracle", b.forward(model, images), oracle))
    if forward and b.trains:
        got = b.forward(model, images, train=True)
        rows.append(largest("outputs (train)", name, "oracle", got, want))
        after = b.get_state(model)
        running = {n: after[n] for n in running_names(param_table(case.spec))}
        rows.append(largest("running stats", name, "oracle", running, stats))

    say(f"{name}: features against the oracle")
    run = BackendRun(name, b, _fresh(b, case), {}, {})
    feature = reference_forward(case.spec, case.state, images)["test_feature"]
    got = {"test_feature": _features(run, case)}
    rows.append(largest("features", name, "oracle", got, {"test_feature": feature}))
    if not b.trains:
        return run, rows

    say(f"{name}: one training step from a warm trainer state (compiles the step)")
    trainer = b.trainer(run.model, case.loss, case.optim, PARITY_OPTIONS)
    trainer.load({**case.state, **warm_optimizer_state(case.spec)})
    trainer.step(case.batch)
    run.terms, run.stepped = trainer.metrics(), trainer.state()
    outputs = {k: v.astype(np.float64) for k, v in want.items()}
    labels, modality = case.batch["labels"], case.batch["modality"]
    expected = objective(NumpyOps(), case.loss, outputs, labels, modality)
    rows.append(largest("loss terms", name, "oracle", _arrays(run.terms), _arrays(expected)))
    return run, rows


def compare_pair(
    first: BackendRun, other: BackendRun, case: ParityCase, folder: Path, say: Callable[[str], None]
) -> list[Diff]:
    """``other`` against ``first``: loss terms, one step, and checkpoints both ways."""
    a, b = other.name, first.name
    rows = [
        largest("loss terms", a, b, _arrays(other.terms), _arrays(first.terms)),
        largest(
            "one step: parameters", a, b, model_state(other.stepped), model_state(first.stepped)
        ),
        largest("one step: moments", a, b, _moments(other.stepped), _moments(first.stepped)),
    ]
    for saver, loader in ((first, other), (other, first)):
        say(f"checkpoint written by {saver.name}, read by {loader.name}")
        path = folder / f"{saver.name}.safetensors"
        save_checkpoint(path, model_state(saver.stepped), spec=case.spec, backend=saver.name)
        tensors = model_state(load_checkpoint(path).tensors)
        for run in (saver, loader):  # into the models built before: no new graphs
            run.backend.set_state(run.model, tensors)
        want, got = _features(saver, case), _features(loader, case)
        rows.append(
            largest(
                "checkpoint",
                loader.name,
                f"{saver.name} file",
                {"test_feature": got},
                {"test_feature": want},
            )
        )
    return rows


def _arrays(terms: Mapping[str, object]) -> dict[str, np.ndarray]:
    return {k: np.asarray(float(v)) for k, v in terms.items()}  # type: ignore[arg-type]


def _moments(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v for k, v in state.items() if k.startswith(f"{OPTIM}/")}


def run_parity(
    names: Sequence[str] | None = None,
    *,
    loss: str = "official",
    seed: int = 0,
    forward: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ParityReport:
    """Every check for every backend in ``names`` (default: all registered);
    pairwise checks compare each backend with the first one that ran.
    ``forward=False`` skips the forward-output checks (the contract suite
    makes them). A backend that fails to load is reported in ``skipped``."""
    say = progress or (lambda _msg: None)
    case = parity_case(seed, loss)
    names = sorted(registry.registered()) if names is None else list(names)
    rows: list[Diff] = []
    runs: list[BackendRun] = []
    skipped: dict[str, str] = {}
    for name in names:
        info, status = registry.probe(name)
        if info is None:
            skipped[name] = status
            continue
        run, backend_rows = run_backend(name, case, say, forward=forward)
        if run.backend.trains:  # the pairwise checks compare training steps
            runs.append(run)
        rows += backend_rows
    with tempfile.TemporaryDirectory(prefix="vdreid-parity-") as tmp:
        for other in runs[1:]:
            rows += compare_pair(runs[0], other, case, Path(tmp), say)
    return ParityReport(rows, skipped)
