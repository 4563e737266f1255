"""`vdreid doctor`: is this installation healthy?"""

from __future__ import annotations

import dataclasses
import platform
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from rich.table import Table

from vdreid import __version__
from vdreid import backend as registry
from vdreid.cli._common import console, handle_errors, print_json
from vdreid.ops import NumpyOps

if TYPE_CHECKING:  # pragma: no cover - typing only
    from vdreid.parity import ParityReport

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


def run_parity_checks(names: list[str], *, quiet: bool) -> ParityReport:
    from vdreid.parity import run_parity

    if quiet:
        return run_parity(names)
    with console.status("parity checks...", spinner="dots") as status:
        return run_parity(names, progress=lambda msg: status.update(f"parity: {msg}"))


def parity_table(report: ParityReport) -> Table:
    t = Table(title="parity (tiny model; largest difference per check)")
    for col in ("check", "backend", "against", "largest diff", "tolerance", "where", "status"):
        t.add_column(col)
    for d in report.rows:
        t.add_row(
            d.check,
            d.backend,
            d.against,
            f"{d.value:.2e} {d.kind}",
            f"{d.tolerance:g}",
            d.worst,
            "[green]ok[/]" if d.ok else "[red]mismatch[/]",
        )
    return t


@handle_errors
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    parity: Annotated[
        bool,
        typer.Option(
            "--parity",
            help="Also run the cross-backend parity checks (tiny model: forward, features, "
            "loss terms, one training step, checkpoints; about two minutes on a CPU).",
        ),
    ] = False,
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
    report = (
        run_parity_checks([r["name"] for r in rows if r["status"] == "ok"], quiet=as_json)
        if parity
        else None
    )
    if report is not None:
        healthy = healthy and report.ok and bool(report.rows)
    if as_json:
        out = {"environment": env, "backends": rows, "ok": healthy}
        if report is not None:
            out["parity"] = [dataclasses.asdict(d) | {"ok": d.ok} for d in report.rows]
        print_json(out)
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
        if report is not None:
            console.print(parity_table(report))
    if not healthy:
        raise typer.Exit(1)
