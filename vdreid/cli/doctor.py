"""`vdreid doctor`: is this installation healthy?"""

from __future__ import annotations

import platform
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from vdreid import __version__
from vdreid import backend as registry
from vdreid.cli._common import console, handle_errors, print_json
from vdreid.ops import NumpyOps

#: A backend's tiny computation must match numpy to this, relative to the
#: result's magnitude (float32 arithmetic, different summation orders).
SMOKE_TOLERANCE = 1e-5


def smoke_inputs() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)


def smoke(ops: object) -> np.ndarray:
    """softmax(x x^T) row-sums of log: a matmul, a softmax and a reduction."""
    x = ops.asarray(smoke_inputs())  # type: ignore[attr-defined]
    y = ops.log_softmax(ops.matmul(x, ops.transpose(x)), axis=-1)  # type: ignore[attr-defined]
    return ops.to_numpy(ops.sum(y, axis=1))  # type: ignore[attr-defined]


def check_backend(name: str) -> dict[str, object]:
    row: dict[str, object] = {"name": name, "version": None, "devices": [], "max_abs_diff": None}
    try:
        b = registry.get(name)
        info = b.info()
        row["version"], row["devices"] = info.version, list(info.devices)
        ref = smoke(NumpyOps())
        diff = float(np.max(np.abs(smoke(b.ops()) - ref)) / max(1.0, float(np.max(np.abs(ref)))))
    except Exception as exc:
        row["status"] = f"{type(exc).__name__}: {registry.first_line(exc)}"
        return row
    row["max_abs_diff"] = diff
    row["status"] = "ok" if diff <= SMOKE_TOLERANCE else f"mismatch: {diff:.3g} > {SMOKE_TOLERANCE}"
    return row


@handle_errors
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Check Python, numpy and every registered backend (import and a tiny computation)."""
    env = {
        "vdreid": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
    }
    rows = [check_backend(n) for n in sorted(registry.registered())]
    healthy = all(r["status"] == "ok" for r in rows)
    if as_json:
        print_json({"environment": env, "backends": rows, "ok": healthy})
    else:
        t = Table(title="environment", show_header=False)
        for k, v in env.items():
            t.add_row(k, v)
        console.print(t)
        bt = Table(title="backends (tiny computation against numpy)")
        for col in ("name", "version", "devices", "max rel diff", "status"):
            bt.add_column(col)
        for r in rows:
            d = r["max_abs_diff"]
            bt.add_row(
                str(r["name"]),
                str(r["version"] or "-"),
                ", ".join(r["devices"]) or "-",  # type: ignore[arg-type]
                "-" if d is None else f"{d:.2e}",
                "[green]ok[/]" if r["status"] == "ok" else f"[red]{r['status']}[/]",
            )
        console.print(bt)
    if not healthy:
        raise typer.Exit(1)
