"""`hazardvision scans`: delete a scan, or every scan past the retention period, with their photos."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from hazardvision.bank.bank import SampleBank
from hazardvision.cli.common import HomeOption, JsonOption, fail, out
from hazardvision.data.audit import AuditLog, local_actor
from hazardvision.errors import HazardVisionError, InvalidSetting, ScanProtected
from hazardvision.service.retention import ScanRetention
from hazardvision.service.settings import load_settings

scans_app = typer.Typer(help="Delete the service's scans and their photos (reviews and audit records stay).",
                        no_args_is_help=True)


def _retention(home: HomeOption) -> ScanRetention:
    bank = SampleBank(home, create=False)  # a mistyped --home is an error, not a new empty bank
    return ScanRetention(bank, AuditLog(bank.database))


@scans_app.command()
def delete(
    scan_id: Annotated[str, typer.Argument(help="The scan's id (scan_id of POST /v1/scans).")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete one scan: its photo, result and unreviewed findings; audited as scan.delete. Exit code 1 when the
    scan is kept (filed in an inspection, a photo of the sample bank, a rectification not yet verified), 2 when
    there is no such scan or bank."""
    try:
        deleted = _retention(home).delete(scan_id, local_actor())
    except ScanProtected as error:
        fail(error, 1)
    except HazardVisionError as error:
        fail(error)
    if as_json:
        print(deleted.model_dump_json(indent=2))
        return
    photo = "its photo removed" if deleted.photo_removed else "its photo kept for another scan of it"
    out.print(f"deleted scan {scan_id}: {photo}, {deleted.findings_removed} unreviewed findings removed, "
              f"{deleted.findings_kept} reviewed findings kept with their reviews", markup=False, highlight=False)


@scans_app.command()
def purge(
    older_than: Annotated[float | None, typer.Option(
        "--older-than", min=0, metavar="DAYS",
        help="Delete scans older than DAYS. Default: $HAZARDVISION_SCAN_RETENTION_DAYS.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be deleted.")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete the scans (and their photos) older than the retention period, the frames of acknowledged alerts
    raised before it and the files (video, event snapshots) of video jobs that finished before it, as the service
    does every HAZARDVISION_RETENTION_CHECK_SECONDS; audited as scan.purge. Scans filed in an inspection, photos of
    the sample bank, scans with a rectification not yet verified, the frames of unacknowledged alerts and the files
    of queued or running video jobs are kept."""
    try:
        days = older_than if older_than is not None else load_settings().scan_retention_days
        if days is None:
            raise InvalidSetting("no retention period: pass --older-than DAYS or set "
                                 "HAZARDVISION_SCAN_RETENTION_DAYS")
        report = _retention(home).purge(older_than_days=days, actor=local_actor(), dry_run=dry_run)
    except HazardVisionError as error:
        fail(error)
    if as_json:
        print(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    verb = "would delete" if dry_run else "deleted"
    out.print(f"{verb} {report.scans_deleted} scans made before {report.cutoff:%Y-%m-%d %H:%M} UTC "
              f"({report.photos_removed} photos, {report.findings_removed} unreviewed findings; "
              f"{report.findings_kept} reviewed findings kept) and the frames of {report.snapshots_removed} "
              f"acknowledged alerts ({report.frames_removed} files) and the files of {report.video_jobs_purged} "
              f"finished video jobs ({report.videos_removed} videos, {report.video_snapshots_removed} event "
              f"snapshots); kept {len(report.scans_kept)} scans",
              markup=False, highlight=False)
    for scan_id, reasons in report.scans_kept.items():
        out.print(f"  kept {scan_id}: {'; '.join(reasons)}", markup=False, highlight=False)
