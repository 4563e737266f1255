"""`vdreid backends`: which backends are registered and whether they work."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from vdreid import registry
from vdreid.cli._common import console, handle_errors, print_json


def backend_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name in sorted(registry.registered()):
        info, status = registry.probe(name)
        rows.append(
            {
                "name": name,
                "framework": info.framework if info else None,
                "version": info.version if info else None,
                "devices": list(info.devices) if info else [],
                "status": status,
            }
        )
    return rows


@handle_errors
def backends(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List registered backends: framework version, devices, import status."""
    rows = backend_rows()
    if as_json:
        print_json(rows)
        return
    table = Table(title="vdreid backends")
    for col in ("name", "framework", "version", "devices", "status"):
        table.add_column(col)
    for r in rows:
        ok = r["status"] == "ok"
        table.add_row(
            str(r["name"]),
            str(r["framework"] or "-"),
            str(r["version"] or "-"),
            ", ".join(r["devices"]) or "-",  # type: ignore[arg-type]
            "[green]ok[/]" if ok else f"[red]{r['status']}[/]",
        )
    console.print(table)
