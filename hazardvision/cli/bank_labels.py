"""What `bank import`, `bank relabel` and `bank history` print about labels and their versions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from hazardvision.bank.views import LabelDifference, LabelVersionView
from hazardvision.cli.common import err, out
from hazardvision.errors import BankError

SHOWN = 10
"""Differences listed on the terminal; the rest go to --label-report or --json."""


def report_label_differences(differences: Sequence[LabelDifference], *, source: str, report: Path | None,
                             quiet: bool = False) -> None:
    """List the photos whose labels differ (the first `SHOWN`, unless `quiet`), and write them all to `report`."""
    if report is not None:
        try:
            report.write_text(json.dumps([json.loads(d.model_dump_json()) for d in differences], indent=2) + "\n")
        except OSError as error:
            raise BankError(f"cannot write the label report {report}: {error.strerror or error}") from error
    if quiet:
        return
    for difference in differences[:SHOWN]:
        applied = (f"now label version {difference.updated_to}" if difference.updated_to is not None
                   else f"the bank keeps version {difference.version}")
        err.print(f"[yellow]{source}/{difference.file}[/yellow] (case {difference.case_id}): labels differ: "
                  f"{difference.summary()}; {applied}", highlight=False)
    if len(differences) > SHOWN:
        where = f"all in {report}" if report is not None else "see --label-report FILE or --json"
        err.print(f"... and {len(differences) - SHOWN} more photos whose labels differ ({where})", highlight=False)
    if differences and all(d.updated_to is None for d in differences):
        err.print("the bank's labels were left as they are: import again with --update-labels to make the "
                  "dataset's labels a new label version of each case", highlight=False)


def print_history(case_id: int, versions: Sequence[LabelVersionView]) -> None:
    for version in versions:
        current = " (current)" if version.current else ""
        reason = f": {version.reason}" if version.reason else ""
        out.print(f"case {case_id} label version {version.version}{current}, {version.via} by {version.author} at "
                  f"{version.created_at:%Y-%m-%d %H:%M:%S %Z}{reason}", highlight=False)
        for label in version.labels:
            box = ", ".join(f"{v:.0f}" for v in label.box)
            out.print(f"  {label.class_name} [{box}] {label.origin or ''}".rstrip(), highlight=False)
        if not version.labels:
            out.print("  (background: no boxes)", highlight=False)


def class_counts(counts: dict[str, int]) -> str:
    """'helmet 3, no_helmet 1': catalogue classes with their box counts, most first."""
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])))
