"""The Typer application. Each command lives in its own module and is
registered here; command modules import frameworks only inside functions,
so `vdreid --help` stays light."""

from __future__ import annotations

from typing import Annotated, Any

import typer
import typer.core

from vdreid import __version__
from vdreid.cli import backends as backends_cmd
from vdreid.cli import convert as convert_cmd
from vdreid.cli import data as data_cmd
from vdreid.cli import demo as demo_cmd
from vdreid.cli import doctor as doctor_cmd
from vdreid.cli import embed as embed_cmd
from vdreid.cli import evaluate as evaluate_cmd
from vdreid.cli import export as export_cmd
from vdreid.cli import model as model_cmd
from vdreid.cli import report as report_cmd
from vdreid.cli import search as search_cmd
from vdreid.cli import train as train_cmd


def _flags_take_no_value() -> None:
    """Typer's rich help prints a ``<bool>`` type beside every flag (``--help``
    too), as if the flag took a value; it takes none, so none is shown."""
    shown = typer.core.TyperOption.display_type_rich

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    typer.core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()

app = typer.Typer(
    name="vdreid",
    help="Cross-modal (visible-infrared) person re-identification with Variational Distillation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("backends")(backends_cmd.backends)
app.command("doctor")(doctor_cmd.doctor)
app.command("export")(export_cmd.export)
app.command("convert")(convert_cmd.convert)
app.command("train")(train_cmd.train)
app.command("eval")(evaluate_cmd.evaluate)
app.command("embed")(embed_cmd.embed)
app.command("search")(search_cmd.search)
app.command("report")(report_cmd.report)
app.command("demo")(demo_cmd.demo)
app.add_typer(model_cmd.app, name="model")
app.add_typer(data_cmd.app, name="data")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vdreid {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Cross-modal person re-identification toolkit."""


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
