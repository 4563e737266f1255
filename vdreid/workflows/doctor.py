"""Is this installation healthy? What `vdreid doctor` runs.

Per registered backend: load it, read its framework version and devices,
and run a tiny computation on its Ops against numpy (:func:`smoke`); a
backend without Ops (inference only: onnxruntime) computes the ``tiny``
network's features instead, against the oracle (:func:`smoke_features`).
``--parity`` adds the cross-backend checks of vdreid.workflows.parity.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from vdreid import __version__, registry
from vdreid.errors import NotSupported, first_line
from vdreid.ops import NumpyOps, Ops

if TYPE_CHECKING:  # pragma: no cover - typing only
    from vdreid.workflows.parity import ParityReport

#: A backend's tiny computation must match numpy to this, relative to the
#: result's magnitude (float32 arithmetic, different summation orders).
SMOKE_TOLERANCE = 1e-5


def environment() -> dict[str, str]:
    """The versions a bug report needs."""
    return {
        "vdreid": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
    }


def smoke_inputs() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)


def smoke(ops: Ops) -> np.ndarray:
    """softmax(x x^T) row-sums of log: a matmul, a softmax and a reduction."""
    x = ops.asarray(smoke_inputs())
    y = ops.log_softmax(ops.matmul(x, ops.transpose(x)), axis=-1)
    return ops.to_numpy(ops.sum(y, axis=1))


def smoke_features(backend: Any) -> float:
    """Largest difference between the backend's features of the ``tiny``
    network (seeded weights and images, CPU) and the numpy oracle's."""
    from vdreid.presets import recipe
    from vdreid.reference import reference_forward
    from vdreid.spec import init_state, preprocess

    spec = recipe("tiny").model_spec(2)
    state = init_state(spec, 0)
    size = (spec.input.height, spec.input.width)
    images = np.random.default_rng(0).integers(0, 256, (2, *size, 3), dtype=np.uint8)
    model = backend.build(spec, device="cpu")
    backend.set_state(model, state)
    want = reference_forward(spec, state, preprocess(spec, images))["test_feature"]
    return float(np.max(np.abs(backend.features(model, images) - want)))


def check_backend(name: str) -> dict[str, Any]:
    """One row of the report: version, devices, the smoke difference and a status
    ("ok", "mismatch: ..." or the error that stopped the backend)."""
    row: dict[str, Any] = {"name": name, "version": None, "devices": [], "max_abs_diff": None}
    try:
        b = registry.get(name)
        info = b.info()
        row["version"], row["devices"] = info.version, list(info.devices)
        try:
            ops = b.ops()
        except NotSupported:  # inference only: its features stand in for the Ops
            diff = smoke_features(b)
        else:
            ref = smoke(NumpyOps())
            diff = float(np.max(np.abs(smoke(ops) - ref)) / max(1.0, float(np.max(np.abs(ref)))))
    except Exception as exc:
        row["status"] = f"{type(exc).__name__}: {first_line(exc)}"
        return row
    row["max_abs_diff"] = diff
    row["status"] = "ok" if diff <= SMOKE_TOLERANCE else f"mismatch: {diff:.3g} > {SMOKE_TOLERANCE}"
    return row


def check_backends() -> list[dict[str, Any]]:
    """:func:`check_backend` for every registered backend, by name."""
    return [check_backend(n) for n in sorted(registry.registered())]


def parity(names: list[str], progress: Callable[[str], None] | None = None) -> ParityReport:
    """The cross-backend parity checks on ``names`` (imported here: they are
    the slow part and need no framework until they run)."""
    from vdreid.workflows.parity import run_parity

    return run_parity(names, progress=progress)
