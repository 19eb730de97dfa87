"""`ScanRetention`: deleting a scan on request, and every scan past the retention period.

A deleted scan loses its photo (the file in `HOME/scans/`, unless another scan of the same photo
keeps it), its result, note, file name and camera, and its unreviewed findings. Its row stays as
a tombstone with its reviewed findings, so that their reviews (and rectifications) and the audit
records that name the scan keep their meaning. Never deleted: a scan filed in an inspection, one
whose photo is a case of the sample bank (every reviewed scan's is), one with a rectification not
yet verified (or that is such a rectification's after-photo); a purge also forgets the frames of
acknowledged alerts raised before its cutoff, never those of alerts not yet acknowledged, and the
files (the uploaded video, its events' best frames) of the video jobs that finished before it;
those jobs and their events stay, marked purged, and a queued or running job keeps its files. Each
deletion and each purge that deleted anything is audited in the transaction that made it (a purge
as one `scan.purge` record, its video counts included: one purge, one record); files go once it
has committed.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil

from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit import AuditLog
from hazardvision.data.base import utcnow
from hazardvision.data.cameras import Cameras
from hazardvision.data.image_store import ImageStore
from hazardvision.data.scans import DeletedScan, Scans
from hazardvision.data.video_jobs import PurgedVideoJob, VideoJobs
from hazardvision.home import Home
from hazardvision.service.schemas.scans import PurgeReport, ScanDeletion

log = logging.getLogger("hazardvision.service")

RETENTION_ACTOR = "service:retention"
"""The actor of the purges the service runs by itself."""


class ScanRetention:
    """Deletes scans with their photos, the frames of old acknowledged alerts and the files of old video jobs, in
    the bank at `bank.home`."""

    def __init__(self, bank: SampleBank, audit: AuditLog) -> None:
        self.records = Scans(bank.database)
        self.cameras = Cameras(bank.database)
        self.videos = VideoJobs(bank.database)
        home = Home(bank.home)
        self.photos = ImageStore(home.scans)
        self.frames = ImageStore(home.frames)
        self.video_folder = home.videos
        self.audit = audit

    def delete(self, scan_id: str, actor: str) -> ScanDeletion:
        """Delete one scan; `UnknownScan` when there is none, `ScanProtected` naming why it is kept."""
        at = utcnow()
        with self.records.delete(scan_id=scan_id, at=at) as deleted:
            self.audit.append(actor, "scan.delete", scan_id, input_sha256=deleted.image_sha256,
                              details={"stored_sha256": deleted.stored_sha256,
                                       "findings_removed": deleted.findings_removed,
                                       "findings_kept": deleted.findings_kept})
        removed = self._remove_photos([deleted])
        return ScanDeletion(scan_id=scan_id, deleted_at=at, photo_removed=bool(removed),
                            findings_removed=deleted.findings_removed, findings_kept=deleted.findings_kept)

    def purge(self, *, older_than_days: float, actor: str, dry_run: bool = False) -> PurgeReport:
        """Delete what is older than `older_than_days` and not protected; with `dry_run`, only count it."""
        at = utcnow()
        cutoff = at - dt.timedelta(days=older_than_days)
        with self.records.purge(cutoff=cutoff, at=at, dry_run=dry_run) as (deleted, kept):
            snapshots, frames = self.cameras.expire_snapshots(cutoff=cutoff)
            jobs = self.videos.purge_files(cutoff=cutoff, at=at)
            report = PurgeReport(
                cutoff=cutoff, dry_run=dry_run, scans_deleted=len(deleted),
                photos_removed=sum(not d.photo_shared for d in deleted),
                findings_removed=sum(d.findings_removed for d in deleted),
                findings_kept=sum(d.findings_kept for d in deleted), scans_kept=kept,
                snapshots_removed=snapshots, frames_removed=len(frames), video_jobs_purged=len(jobs),
                videos_removed=len(jobs), video_snapshots_removed=sum(len(job.snapshots) for job in jobs))
            if not dry_run and (deleted or snapshots or jobs):
                self.audit.append(actor, "scan.purge", None, details={
                    "older_than_days": older_than_days, "cutoff": cutoff.isoformat(),
                    **report.model_dump(include={"scans_deleted", "photos_removed", "findings_removed",
                                                 "findings_kept", "snapshots_removed", "frames_removed",
                                                 "video_jobs_purged", "videos_removed", "video_snapshots_removed"}),
                    "scans_kept": len(kept)})
        if dry_run:
            return report
        report.photos_removed = self._remove_photos(deleted)
        for sha256, _format in frames:
            self.frames.remove(sha256)
        report.videos_removed, report.video_snapshots_removed = self._remove_video_files(jobs)
        return report

    def _remove_photos(self, deleted: list[DeletedScan]) -> int:
        """Remove the photo files of committed deletions that no other scan keeps; how many went."""
        removed = 0
        for scan in deleted:
            if scan.photo_shared:
                continue
            path = self.photos.path(scan.stored_sha256, scan.image_format)
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
            except OSError as error:  # the scan is deleted; the file is left for an operator to remove
                log.warning("scan %s is deleted but its photo %s could not be removed: %s", scan.scan_id, path,
                            error.strerror)
        return removed

    def _remove_video_files(self, jobs: list[PurgedVideoJob]) -> tuple[int, int]:
        """Remove the videos and event snapshots of committed purges; how many of each went."""
        videos = snapshots = 0
        for job in jobs:
            for name in (job.video_file, *job.snapshots):
                path = self.video_folder / name
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                except OSError as error:  # the job says its files are gone; this one is left for an operator
                    log.warning("the files of video job %s are purged but %s could not be removed: %s", job.job_id,
                                path, error.strerror)
                    continue
                if name == job.video_file:
                    videos += 1
                else:
                    snapshots += 1
            # What is left of the job's folder (its events folder; a snapshot a cancelled run wrote late) goes too.
            shutil.rmtree(self.video_folder / job.job_id, ignore_errors=True)
        return videos, snapshots
