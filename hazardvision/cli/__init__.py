"""The `hazardvision` command line: thin commands that call one library function each."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from hazardvision import __version__
from hazardvision.cli.audit import audit_app
from hazardvision.cli.bank import bank_app
from hazardvision.cli.common import err
from hazardvision.cli.keys import keys_app
from hazardvision.cli.models import models_app
from hazardvision.cli.scan import scan
from hazardvision.cli.scans import scans_app
from hazardvision.cli.serve import serve
from hazardvision.cli.similar import similar
from hazardvision.cli.train import train_command
from hazardvision.cli.video import scan_video_command

app = typer.Typer(
    name="hazardvision",
    help="Find hidden safety hazards in site photos, backed by a sample bank of past cases.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(scan)
app.command()(similar)
app.command("scan-video")(scan_video_command)
app.add_typer(bank_app, name="bank")
app.add_typer(models_app, name="models")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(scans_app, name="scans")
app.command("train")(train_command)
app.command()(serve)


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
    """Run the CLI; a bug shows one line, not a traceback (set HAZARDVISION_DEBUG=1 for it)."""
    try:
        app()
    except Exception as error:  # the last line of defence: domain errors are handled per command
        if os.environ.get("HAZARDVISION_DEBUG"):
            raise
        err.print(f"[red]internal error:[/red] {type(error).__name__}: {error} "
                  "(this is a bug; rerun with HAZARDVISION_DEBUG=1 for the traceback and report it)", highlight=False)
        sys.exit(3)
