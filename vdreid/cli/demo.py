"""`vdreid demo`: the main job end to end on built-in synthetic data (`make demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vdreid.cli._common import console, handle_errors


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
    u, t = r.untrained.result.summary(), r.trained.result.summary()
    table = Table(
        title=f"vdreid demo: tiny preset, synthetic SYSU-MM01, {len(r.trained.result.trials)} trials",
        caption="ratio: trained / untrained",
    )
    table.add_column("")
    for col in ("R1 %", "R10 %", "mAP %", "mINP %"):
        table.add_column(col, justify="right")
    for label, s in (("untrained", u), ("trained", t)):
        table.add_row(
            label,
            *(f"{s[m]['mean']:.2f} ± {s[m]['std']:.2f}" for m in ("R1", "R10", "mAP", "mINP")),
        )
    ratio = t["R1"]["mean"] / max(u["R1"]["mean"], 1e-9)
    table.add_row(
        "ratio",
        f"{ratio:.1f}x",
        "",
        f"{t['mAP']['mean'] / max(u['mAP']['mean'], 1e-9):.1f}x",
        "",
    )
    console.print(table)
    ex = Table(title="exports (runtime vs eager features)")
    for col in ("file", "backend", "max abs diff", "min cosine", "status"):
        ex.add_column(col)
    for e in r.exports:
        ex.add_row(
            e.report.path,
            e.backend,
            f"{e.report.max_abs_diff:.2e}",
            f"{e.report.min_cosine:.6f}",
            "[green]verified[/]" if e.report.ok else "[red]failed[/]",
        )
    console.print(ex)
    total = sum(r.seconds.values())
    console.print(
        "time: "
        + ", ".join(f"{k} {v:.0f}s" for k, v in r.seconds.items())
        + f"; total {total / 60:.1f} min"
    )
    console.print("the report (open it in a browser):")
    console.print(str(r.report), highlight=False, soft_wrap=True, markup=False)  # the last line
