"""The `hazardvision` command line: thin commands that call one library function each."""

from __future__ import annotations

from typing import Annotated

import typer

from hazardvision import __version__
from hazardvision.cli.bank import bank_app
from hazardvision.cli.models import models_app
from hazardvision.cli.scan import scan
from hazardvision.cli.train import train_command

app = typer.Typer(
    name="hazardvision",
    help="Find hidden safety hazards in site photos, backed by a sample bank of past cases.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(scan)
app.add_typer(bank_app, name="bank")
app.add_typer(models_app, name="models")
app.command("train")(train_command)


def _print_version(value: bool) -> None:
    if value:
        print(f"hazardvision {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Find hidden safety hazards in site photos, backed by a sample bank of past cases."""


def main() -> None:
    app()
