"""`vdreid doctor`: is this installation healthy? (vdreid.workflows.doctor)"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from vdreid.cli._common import console, handle_errors, print_json
from vdreid.workflows import doctor as checks

if TYPE_CHECKING:  # pragma: no cover - typing only
    from vdreid.workflows.parity import ParityReport


def run_parity_checks(names: list[str], *, quiet: bool) -> ParityReport:
    if quiet:
        return checks.parity(names)
    with console.status("parity checks...", spinner="dots") as status:
        return checks.parity(names, progress=lambda msg: status.update(f"parity: {msg}"))


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
    env = checks.environment()
    rows = checks.check_backends()
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
                ", ".join(r["devices"]) or "-",
                "-" if d is None else f"{d:.2e}",
                "[green]ok[/]" if r["status"] == "ok" else f"[red]{r['status']}[/]",
            )
        console.print(bt)
        if report is not None:
            console.print(parity_table(report))
    if not healthy:
        raise typer.Exit(1)
