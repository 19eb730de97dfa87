"""`hazardvision keys`: create, revoke and list the service's API keys."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Column, Table

from hazardvision.access import ApiKeys, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.cli.common import HomeOption, JsonOption, err, fail, out
from hazardvision.data.audit import local_actor
from hazardvision.errors import HazardVisionError

keys_app = typer.Typer(help="Create, revoke and list the API keys of the service.", no_args_is_help=True)


@keys_app.command()
def create(
    role: Annotated[Role, typer.Option(help="What the key may do.")],
    name: Annotated[str, typer.Option(help="Who or what holds the key, e.g. dock3-pipeline.")],
    site: Annotated[list[str] | None, typer.Option("--site", help="A site whose scans the key reads (repeat it for "
                                                   "several); none: every site. See README, scoped access.")] = None,
    home: HomeOption = None,
) -> None:
    """Create a key and print it once: only its hash is kept."""
    try:
        record, key = ApiKeys(SampleBank(home)).create(name, role, actor=local_actor(), sites=site or ())
    except HazardVisionError as error:
        fail(error)
    sites = f", sites {', '.join(record.sites)}" if record.sites else ""
    err.print(f"created key {record.name!r} (id {record.id}, role {record.role.value}{sites}); it is printed below and "
              "cannot be shown again: store it now", markup=False, highlight=False)
    print(key)  # alone on stdout, so that a script can capture it


@keys_app.command()
def revoke(
    name: Annotated[str, typer.Argument(help="Name (or id) of the active key to revoke.")],
    home: HomeOption = None,
) -> None:
    """Revoke a key: the service refuses it from now on."""
    try:
        record = ApiKeys(SampleBank(home)).revoke(name, actor=local_actor())
    except HazardVisionError as error:
        fail(error)
    out.print(f"revoked key {record.name!r} (id {record.id}, {record.prefix}...)", markup=False, highlight=False)


@keys_app.command("list")
def list_command(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Every key with its role and first characters (never the key itself)."""
    try:
        records = ApiKeys(SampleBank(home)).list()
    except HazardVisionError as error:
        fail(error)
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
        return
    table = Table("id", "name", "role", Column("key", no_wrap=True), "sites", "created", "last used", "revoked")
    for record in records:
        table.add_row(str(record.id), record.name, record.role.value, f"{record.prefix}...",
                      ", ".join(record.sites) or "all",
                      f"{record.created_at:%Y-%m-%d %H:%M}",
                      f"{record.last_used_at:%Y-%m-%d %H:%M}" if record.last_used_at else "never",
                      f"{record.revoked_at:%Y-%m-%d %H:%M}" if record.revoked_at else "")
    out.print(table)
