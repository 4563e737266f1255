"""`vdreid model summary`: what a preset's network holds, without building it."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from vdreid.cli._common import console, handle_errors, print_json
from vdreid.presets import DEFAULT_PRESET, PresetName, recipe
from vdreid.spec import ModelSpec, count_params, param_table, spec_hash

app = typer.Typer(help="Inspect model specs (presets) without building them.", no_args_is_help=True)


def summarise(spec: ModelSpec) -> dict[str, Any]:
    """Parameter counts (learnable tensors incl. frozen ones, running statistics
    excluded), per branch and in total, plus the sizes a user plans around."""
    table = param_table(spec)
    branches = {}
    for b in spec.branches:
        prefix = f"{b.name}."
        branches[b.name] = {
            "backbone": f"resnet{b.backbone.depth}",
            "parameters": count_params(table, prefix),
            "trainable": count_params(table, prefix, trainable_only=True),
            "feat_dim": b.feat_dim,
            "z_dim": b.head.out_features,
        }
    total = count_params(table)
    trainable = count_params(table, trainable_only=True)
    return {
        "preset": spec.preset,
        "num_classes": spec.num_classes,
        "spec_hash": spec_hash(spec),
        "input": {"height": spec.input.height, "width": spec.input.width},
        "grey": spec.grey.variant,
        "branches": branches,
        "total_parameters": total,
        "trainable_parameters": trainable,
        "frozen_parameters": total - trainable,
        "running_statistics": sum(i.size for i in table.values() if i.running),
        "tensors": len(table),
        "feature_dim": spec.feature_dim,
        "test_feature": spec.test_feature.model_dump(mode="json"),
    }


def _table(s: dict[str, Any]) -> Table:
    t = Table(title=f"vdreid model: preset {s['preset']}, {s['num_classes']} classes")
    for col in ("branch", "backbone", "parameters", "trainable", "feat", "z"):
        t.add_column(col, justify="left" if col in ("branch", "backbone") else "right")
    for name, b in s["branches"].items():
        t.add_row(
            name,
            b["backbone"],
            f"{b['parameters']:,}",
            f"{b['trainable']:,}",
            str(b["feat_dim"]),
            str(b["z_dim"]),
        )
    t.add_row(
        "total",
        "",
        f"{s['total_parameters']:,}",
        f"{s['trainable_parameters']:,}",
        "",
        "",
        style="bold",
    )
    return t


@app.command("summary")
@handle_errors
def summary(
    preset: Annotated[
        PresetName, typer.Option("--preset", help="The preset (docs/method.md).")
    ] = DEFAULT_PRESET,
    num_classes: Annotated[
        int, typer.Option("--num-classes", help="Training identities (SYSU-MM01 395, RegDB 206).")
    ] = 395,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Parameters per branch and in total, feature dimension and input size of a preset."""
    chosen = recipe(preset)
    # the input size training uses (a recipe may train above its network's native size)
    s = summarise(chosen.model_spec(num_classes, input_size=chosen.train.get("input_size")))
    if as_json:
        print_json(s)
        return
    console.print(_table(s))
    tf = s["test_feature"]
    console.print(
        f"input {s['input']['height']}x{s['input']['width']} (HxW), grey variant {s['grey']}; "
        f"test feature {s['feature_dim']}-d = {' + '.join(tf['paths'])} feat, "
        f"L2 {tf['normalise']}, {tf['distance']} distance; "
        f"{s['frozen_parameters']:,} frozen parameters, {s['running_statistics']:,} running-statistic values",
        highlight=False,
    )
