"""`vdreid data synth|check`: synthetic look-alike datasets and layout checks."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from vdreid.cli._common import USER_ERROR, console, err_console, handle_errors, print_json
from vdreid.errors import ConfigError

app = typer.Typer(
    name="data",
    help="Prepare and validate datasets (synthetic look-alikes, layout checks).",
    no_args_is_help=True,
)


class Layout(str, Enum):
    sysu = "sysu"
    regdb = "regdb"
    llcm = "llcm"


class Dataset(str, Enum):
    sysu = "sysu"
    regdb = "regdb"
    llcm = "llcm"
    manifest = "manifest"


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"128x64"`` -> (128, 64) as (H, W)."""
    if text is None:
        return None
    h, sep, w = text.lower().partition("x")
    if not sep or not h.strip().isdigit() or not w.strip().isdigit():
        raise ConfigError(f"--size {text!r} is not HxW; write it as height x width, e.g. 128x64")
    return int(h), int(w)


@app.command("synth")
@handle_errors
def synth(
    layout: Annotated[
        Layout, typer.Option("--layout", help="Which real dataset's folder layout to imitate.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="A new (or empty) folder to write the tree into.")
    ],
    full_shape: Annotated[
        bool,
        typer.Option(
            "--full-shape",
            help="The real dataset's identities and per-camera image counts (sysu, regdb) with tiny images.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same files.")] = 0,
    ids: Annotated[
        int | None,
        typer.Option(
            "--ids", help="Training identities (sysu 380: 3/4 train + 1/4 val; regdb 20; llcm 30)."
        ),
    ] = None,
    test_ids: Annotated[
        int | None, typer.Option("--test-ids", help="Test identities (default 20).")
    ] = None,
    per_cam: Annotated[
        int | None,
        typer.Option("--per-cam", help="Images per (identity, camera) (sysu/llcm 4, regdb 10)."),
    ] = None,
    size: Annotated[
        str | None,
        typer.Option("--size", help="Image size HxW (default 128x64; 16x8 with --full-shape)."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Processes rendering in parallel.")
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Write a synthetic dataset in the exact folder layout of SYSU-MM01, RegDB or LLCM."""
    from vdreid.data.readers import read_dataset
    from vdreid.data.synth import Shape, synthesize

    shape = Shape(
        full_shape=full_shape, ids=ids, test_ids=test_ids, per_cam=per_cam, size=parse_size(size)
    )
    start = time.perf_counter()
    plan = synthesize(
        layout.value, out, shape=shape, seed=seed, workers=workers, progress=not as_json
    )
    # the tree read back, counted as `vdreid data check` counts it (RegDB: trial 1)
    index = read_dataset(plan.layout, out, trial=1 if plan.layout == "regdb" else None)
    summary = {
        "layout": plan.layout,
        "out": str(out),
        "images": plan.n_images,
        "size": f"{plan.size[0]}x{plan.size[1]}",
        "full_shape": full_shape,
        "seed": seed,
        **{
            f"{split}_{what}": n
            for split, counts in index.split_counts().items()
            for what, n in counts.items()
        },
        **({"trials": 10} if plan.layout == "regdb" else {}),
        "seconds": round(time.perf_counter() - start, 2),
    }
    if as_json:
        print_json(summary)
        return
    t = Table(title=f"synthetic {plan.layout} tree", show_header=False)
    t.add_column()
    t.add_column(overflow="fold")  # a long --out wraps, never cut to an ellipsis
    for k, v in summary.items():
        t.add_row(k, str(v))
    console.print(t)
    console.print(f"check it with: vdreid data check --dataset {plan.layout} --root {out}")


@app.command("check")
@handle_errors
def check(
    dataset: Annotated[
        Dataset, typer.Option("--dataset", help="Which reader (and protocol) to apply.")
    ],
    root: Annotated[
        Path, typer.Option("--root", help="The dataset folder (manifest: the CSV or its folder).")
    ],
    decode: Annotated[
        bool, typer.Option("--decode", help="Also decode every image (slow on real data).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Validate a dataset's layout; count it; size each evaluation protocol (trial 1)."""
    from vdreid.workflows.data_check import check_dataset

    report = check_dataset(dataset.value, root, decode=decode, progress=not as_json)
    if as_json:
        print_json(report)
    else:
        _print_report(report)
    if report["problems"]:
        for p in report["problems"]:
            err_console.print(f"[bold red]error:[/] {p}", highlight=False, soft_wrap=True)
        raise typer.Exit(USER_ERROR)


def _print_report(report: dict[str, Any]) -> None:
    console.print(f"[bold]{report['dataset']}[/] at {report['root']}", highlight=False)
    for note in report["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    t = Table(title="splits")
    for col in ("split", "images", "ids", "visible", "infrared", "per camera", "ids in 1 mod."):
        t.add_column(col, overflow="fold")
    for name, s in report["splits"].items():
        lonely = s["visible_only_ids"]["count"] + s["infrared_only_ids"]["count"]
        cams = ", ".join(f"{c}:{n}" for c, n in s["cameras"].items())
        t.add_row(
            "val (in train)" if name == "val" else name,  # the official recipe trains on them
            str(s["images"]),
            str(s["identities"]),
            str(s["visible"]),
            str(s["infrared"]),
            cams,
            str(lonely),
        )
    console.print(t)
    if "regdb" in report:
        r = report["regdb"]
        console.print(
            f"identity folders: {r['identity_folders']}; images per identity: {r['images_per_identity']}",
            highlight=False,
        )
        rt = Table(title="RegDB trials")
        for col in ("trial", "lines per index file", "train ids", "test ids"):
            rt.add_column(col)
        for row in r["trials"]:
            lines = (
                "missing: " + ", ".join(row["missing"])
                if "missing" in row
                else ", ".join(str(n) for n in row["lines"].values())
            )
            rt.add_row(
                str(row["trial"]),
                lines,
                str(row.get("train_ids", "-")),
                str(row.get("test_ids", "-")),
            )
        console.print(rt)
    pt = Table(title="protocols (trial 1)")
    keys = [
        k
        for k in report["protocols"][0]
        if k not in ("queries", "gallery", "valid_queries", "error")
    ]
    for col in (*keys, "queries", "gallery", "valid queries"):
        pt.add_column(col)
    for row in report["protocols"]:
        sizes = [str(row.get(k, "-")) for k in ("queries", "gallery", "valid_queries")]
        if "error" in row:
            sizes = ["[red]error[/]", "-", "-"]
        pt.add_row(*(str(row[k]) for k in keys), *sizes)
    console.print(pt)
    if report.get("decoded"):
        console.print(f"decoded all {report['decoded']} images", highlight=False)
    if report["ok"]:
        console.print("[green]ok[/]")
