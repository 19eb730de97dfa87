"""Pieces shared by the CLI commands."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from hazardvision.errors import HazardVisionError

err = Console(stderr=True, soft_wrap=True)  # messages stay on one line, for grep and for logs
out = Console(soft_wrap=True)

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="Bank folder. Default: $HAZARDVISION_HOME, else ~/.local/share/hazardvision."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for programs to read.")]


def report_leftovers(leftovers: Sequence[Path]) -> None:
    """Warn of temporary files that stopped writers left (see `Home.leftovers`)."""
    for path in leftovers:
        err.print(f"[yellow]leftover temporary file:[/yellow] {path}", highlight=False)
    if leftovers:
        err.print(f"[yellow]{len(leftovers)} leftover temporary file(s)[/yellow] from writers that stopped mid-write "
                  "(nothing refers to them); `hazardvision bank verify --clean` removes them", highlight=False)


def report_exposed(exposed: Sequence[Path], shown: int = 10) -> None:
    """Warn of private files of the home that group or others may read (see `Home.exposed`)."""
    for path in exposed[:shown]:
        err.print(f"[yellow]readable by other users:[/yellow] {path}", highlight=False)
    if exposed:
        more = f" ({len(exposed) - shown} more not shown)" if len(exposed) > shown else ""
        err.print(f"[yellow]{len(exposed)} private file(s) or folder(s) that group or others may read[/yellow]{more} "
                  "(written before homes were private, or changed by hand); `hazardvision bank verify --tighten` "
                  "makes them mode 600 and 700", highlight=False)


def fail(error: HazardVisionError, code: int = 2) -> NoReturn:
    """Print a domain error in one line and exit with `code`."""
    err.print(f"[red]error:[/red] {error}", markup=True, highlight=False)
    raise typer.Exit(code) from error
