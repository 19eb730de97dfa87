"""`hazardvision audit`: check and read the tamper-evident audit log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hazardvision.cli.common import HomeOption, JsonOption, err, fail, out, report_leftovers
from hazardvision.data.audit import AuditLog
from hazardvision.errors import AuditError, HazardVisionError

audit_app = typer.Typer(help="Check and read the tamper-evident audit log (in the bank's database; its key in "
                        "HOME/audit).", no_args_is_help=True)


@audit_app.command()
def verify(
    home: HomeOption = None, as_json: JsonOption = False,
    witness: Annotated[Path | None, typer.Option(
        help="A witness file (HAZARDVISION_AUDIT_WITNESS_FILE of the service): the chain must hold the furthest "
        "head it names.", dir_okay=False)] = None,
) -> None:
    """Check the chain's hashes, MACs and head, the anchor (HAZARDVISION_AUDIT_ANCHOR_FILE, else
    HOME/audit/head.json) and the witness if given (exit code 1 if anything is wrong, 2 if there is no bank
    there); report leftover temporary files of the home."""
    try:
        if witness is not None and not witness.is_file():
            raise AuditError(f"no witness file {witness}")
        log = AuditLog.at(home, create=False)
        problems = log.verify(witness=witness)
        count = log.count()
        leftovers = log.database.home.leftovers()
    except HazardVisionError as error:
        fail(error)
    if as_json:
        print(json.dumps({"log": log.database.url, "intact": not problems, "records": count, "problems": problems,
                          "leftovers": [str(path) for path in leftovers]}, indent=2))
    else:
        for problem in problems:
            err.print(problem, style="red", markup=False, highlight=False)
        if not problems:
            out.print(f"{log.where} is intact: {count} records", markup=False, highlight=False)
        report_leftovers(leftovers)
    if problems:
        raise typer.Exit(1)


@audit_app.command("list")
def list_command(
    home: HomeOption = None,
    limit: Annotated[int, typer.Option(min=1, help="Show the last N records.")] = 50,
    action: Annotated[str | None, typer.Option(help='Only this action and its sub-actions ("key": key.*).')] = None,
    as_json: JsonOption = False,
) -> None:
    """The latest records, oldest first."""
    try:
        records = AuditLog.at(home).records(action=action, last=limit)
    except HazardVisionError as error:
        fail(error)
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=2, ensure_ascii=False))
        return
    columns = ["seq", "at (UTC)", "actor", "action", "subject", "input", "models", "details"]
    rows = [
        [str(r.seq), r.at[:19].replace("T", " "), r.actor, r.action, r.subject or "", (r.input_sha256 or "")[:12],
         ", ".join(f"{pack} {version}" for pack, version in (r.model_versions or {}).items()),
         json.dumps(r.details, ensure_ascii=False) if r.details else ""]
        for r in records
    ]
    shown = [i for i, _ in enumerate(columns) if i < 5 or any(row[i] for row in rows)]  # no empty optional columns
    table = Table(*(columns[i] for i in shown))
    for row in rows:
        table.add_row(*(escape(row[i]) for i in shown))
    out.print(table)


@audit_app.command()
def adopt(home: HomeOption = None) -> None:
    """Check the file log of a home from before the database kept the chain (HOME/audit/audit.jsonl) and copy
    it into the database's empty chain; the service does this when it starts."""
    try:
        log = AuditLog.at(home)
        adopted = log.adopt()
    except HazardVisionError as error:
        fail(error)
    if adopted:
        out.print(f"adopted {adopted} records from {log.legacy_path} into {log.where}", markup=False, highlight=False)
    else:
        out.print(f"no file log at {log.legacy_path}: nothing to adopt", markup=False, highlight=False)
