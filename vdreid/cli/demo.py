"""`vdreid demo`: the main job end to end on built-in synthetic data (`make demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vdreid.cli._common import console, handle_errors, print_json

if TYPE_CHECKING:
    from vdreid.workflows.demo import DemoResult

METRICS = ("R1", "R10", "mAP", "mINP")


@handle_errors
def demo(
    out: Annotated[
        Path, typer.Option(help="Folder for the synthetic data, the run and the exports.")
    ] = Path("demo"),
    backend: Annotated[
        str, typer.Option(help="Backend that trains (torch or mindspore).")
    ] = "torch",
    epochs: Annotated[
        int | None, typer.Option(help="Training epochs (default: the tiny preset's).")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field of the tiny recipe: --set optim.lr=1e-3."),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Decoded-image cache folder (default: $XDG_CACHE_HOME/vdreid)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the results as JSON on stdout (progress on stderr)."),
    ] = False,
) -> None:
    """Synthesise SYSU-like data, train `tiny`, evaluate trained vs untrained, export
    ONNX + MindIR, write an HTML report (its path is the last line)."""
    from vdreid.config import parse_overrides
    from vdreid.workflows.demo import run_demo

    r = run_demo(
        out,
        backend=backend,
        epochs=epochs,
        overrides={
            **parse_overrides(overrides or []),
            **({"cache_dir": str(cache_dir)} if cache_dir else {}),
        },
        progress=not quiet,
    )
    result = demo_summary(r)
    if as_json:
        print_json(result)
        return
    show_demo(result, console)


def show_demo(result: dict[str, Any], out: Console) -> None:
    """The tables, the time taken and the report's path (the last line) on ``out``."""
    for table in demo_tables(result):
        out.print(table)
    out.print(
        "time: "
        + ", ".join(f"{k} {v:.0f}s" for k, v in result["seconds"].items())
        + f"; total {sum(result['seconds'].values()) / 60:.1f} min"
    )
    out.print("the report (open it in a browser):")
    out.print(result["report"], highlight=False, soft_wrap=True, markup=False)  # the last line


def demo_summary(r: DemoResult) -> dict[str, Any]:
    """What the demo measured and wrote, as plain data (--json prints it; the tables show it)."""
    return {
        "run_dir": str(r.run_dir),
        "trials": len(r.trained.result.trials),
        "untrained": r.untrained.result.summary(),
        "trained": r.trained.result.summary(),
        "exports": [
            {
                "path": e.report.path,
                "format": e.report.format,
                "backend": e.backend,
                "max_abs_diff": e.report.max_abs_diff,
                "min_cosine": e.report.min_cosine,
                "tolerance": e.report.tolerance,
                "ok": e.report.ok,
            }
            for e in r.exports
        ],
        "seconds": dict(r.seconds),
        "report": str(r.report),
    }


def demo_tables(result: dict[str, Any]) -> tuple[Table, Table]:
    """The metrics (trained vs untrained) and the exports' checks, from demo_summary()."""
    u, t = result["untrained"], result["trained"]
    table = Table(
        title=f"vdreid demo: tiny preset, synthetic SYSU-MM01, {result['trials']} trials",
        caption="ratio: trained / untrained",
    )
    table.add_column("")
    for name in METRICS:
        table.add_column(f"{name} %", justify="right")
    for label, s in (("untrained", u), ("trained", t)):
        table.add_row(label, *(f"{s[m]['mean']:.2f} ± {s[m]['std']:.2f}" for m in METRICS))
    table.add_row(
        "ratio",
        f"{t['R1']['mean'] / max(u['R1']['mean'], 1e-9):.1f}x",
        "",
        f"{t['mAP']['mean'] / max(u['mAP']['mean'], 1e-9):.1f}x",
        "",
    )
    # file names only: the folder is the demo's, and a long path would be cut at 80 columns
    exports = Table(title="exports in the demo folder (runtime vs eager features)")
    for col in ("file", "backend", "max abs diff", "min cosine", "status"):
        exports.add_column(col)
    for e in result["exports"]:
        exports.add_row(
            Path(e["path"]).name,
            e["backend"],
            f"{e['max_abs_diff']:.2e}",
            f"{e['min_cosine']:.6f}",
            "[green]verified[/]" if e["ok"] else "[red]failed[/]",
        )
    return table, exports
