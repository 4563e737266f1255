"""`vdreid train`: train a preset on a dataset with a backend."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from vdreid.cli._common import console, err_console, handle_errors, pick_backend, print_json
from vdreid.data.readers import DatasetName
from vdreid.errors import ConfigError
from vdreid.presets import DEFAULT_PRESET, PresetName


@handle_errors
def train(
    backend: Annotated[
        str | None,
        typer.Option(
            help="Backend: torch or mindspore (see `vdreid backends`; default: the first "
            "installed one that trains)."
        ),
    ] = None,
    preset: Annotated[
        PresetName | None,
        typer.Option(help=f"The preset (docs/method.md; default {DEFAULT_PRESET})."),
    ] = None,
    dataset: Annotated[DatasetName | None, typer.Option(help="The dataset reader.")] = None,
    root: Annotated[
        Path | None, typer.Option(help="Dataset folder (or manifest CSV for --dataset manifest).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="A TOML file of TrainConfig fields.")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, cuda:N (torch); CPU, GPU, Ascend (mindspore).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Run folder (config, metrics.jsonl, checkpoints, eval.json)."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Number of epochs (passes over identities).")
    ] = None,
    trial: Annotated[
        str | None,
        typer.Option(
            help="RegDB trial 1..10, or 'all': one run per trial under --out "
            "(trial-01 ... trial-10), then the mean ± std over the ten in both directions."
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of every random choice of the run.")
    ] = None,
    pretrained: Annotated[
        Path | None, typer.Option(help="Local safetensors file of backbone weights.")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Decoded-image cache folder (default: $XDG_CACHE_HOME/vdreid)."),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            help="'auto': continue the run in --out from its last checkpoint, with its recorded "
            "config.toml unless --config is given (a fresh run when it has none); or a checkpoint path."
        ),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any config field: --set optim.lr=1e-3 (repeatable)."),
    ] = None,
    evaluate: Annotated[
        bool, typer.Option("--eval/--no-eval", help="Evaluate on the test protocol at the end.")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the result as JSON on stdout (progress on stderr)."),
    ] = False,
) -> None:
    """Train, checkpoint and evaluate (see docs/training.md)."""
    from vdreid.config import (
        TrainConfig,
        merge,
        parse_overrides,
        read_toml,
        resolve_train_config,
    )
    from vdreid.workflows.evaluate import summary_rows
    from vdreid.workflows.launch import start as start_launch
    from vdreid.workflows.run_dir import recorded_config
    from vdreid.workflows.train import train as run_training

    all_trials = trial == "all"
    flags: dict[str, Any] = {
        k: v
        for k, v in dict(
            backend=backend,
            preset=preset,
            dataset=dataset,
            root=root,
            device=device,
            out=out,
            epochs=epochs,
            trial=None if all_trials else _trial_number(trial),
            seed=seed,
            pretrained=pretrained,
            cache_dir=cache_dir,
        ).items()
        if v is not None
    }
    given = merge(parse_overrides(overrides or []), flags)
    out = given.get("out", TrainConfig.model_fields["out"].default)
    if config is None and resume == "auto" and isinstance(out, str | Path):
        config = recorded_config(Path(out))  # the run's own settings, then the flags
        if config is not None:
            err_console.print(
                f"settings: {config} (the run's recorded configuration)",
                highlight=False,
                soft_wrap=True,
            )
    if "backend" not in given and not (config and "backend" in read_toml(config)):
        given["backend"] = pick_backend(None, "train")
    cfg = resolve_train_config(config, given)
    launch = start_launch(cfg.backend, device=cfg.device)
    if launch.scheduler:  # msrun's coordinating process: it never trains
        return
    if launch.launcher is not None:  # one device per process: this one's
        cfg = cfg.model_copy(update={"device": launch.device})
    assert launch.rank is not None  # start() gives every worker its rank
    if all_trials:
        _train_all_trials(cfg, resume, evaluate, quiet, as_json, launch.world)
        return
    result = run_training(
        cfg,
        resume=resume,
        evaluate=evaluate,
        progress=not quiet,
        rank=launch.rank,
        world=launch.world,
    )
    if not launch.lead:
        return
    if as_json:
        print_json(
            {
                "run_dir": str(result.run_dir),
                "checkpoint": str(result.checkpoint),
                "epochs": result.epochs_done,
                "evaluation": result.evaluation.to_dict() if result.evaluation else None,
            }
        )
        return
    console.print(f"run folder: {result.run_dir}  checkpoint: {result.checkpoint}")
    if result.evaluation is not None:
        table = Table(title=result.evaluation.title())
        table.add_column("metric")
        table.add_column("mean ± std over trials (%)")
        for name, value in summary_rows(result.evaluation):
            table.add_row(name, value)
        console.print(table)


def _trial_number(text: str | None) -> int | None:
    """--trial N (the range is TrainConfig's to check) or None."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--trial {text!r}: pass a RegDB trial 1..10, or all") from None


def _train_all_trials(
    cfg: Any, resume: str | None, evaluate: bool, quiet: bool, as_json: bool, world: int
) -> None:
    """--trial all: the ten RegDB runs, then the papers' table."""
    from vdreid.workflows.evaluate import format_summary
    from vdreid.workflows.regdb_trials import DIRECTION_NAMES, train_all_trials

    if world > 1:
        raise ConfigError(
            "--trial all runs the ten trials one after the other in one process; under a "
            "launcher, train one trial per command (--trial N)"
        )
    done = train_all_trials(cfg, resume=resume, evaluate=evaluate, progress=not quiet)
    if as_json:
        print_json(done.to_dict())
        return
    if not done.evaluations:
        console.print("run folders: " + ", ".join(map(str, done.runs)), highlight=False)
        return
    first = next(iter(done.evaluations.values()))[0]
    table = Table(title=f"RegDB, {len(done.runs)} trials: {first.distance}, mean ± std (%)")
    table.add_column("metric")
    results = {d: done.summary(d).summary() for d in done.evaluations}
    for direction in results:
        table.add_column(DIRECTION_NAMES[direction])
    for metric in next(iter(results.values())):
        table.add_row(metric, *(format_summary(r[metric]) for r in results.values()))
    console.print(table)
    console.print(f"per-trial results: {done.out / 'trials.json'}", highlight=False, soft_wrap=True)
