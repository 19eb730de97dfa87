"""`hazardvision scans delete` and `hazardvision scans purge` as a user runs them, on SQLite and PostgreSQL; a purge
takes the files of old finished video jobs too."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from hazardvision.bank.bank import SampleBank
from hazardvision.cli import app
from hazardvision.data.audit import AuditLog
from hazardvision.data.image_store import ImageStore
from hazardvision.data.inspections import Inspections
from hazardvision.data.scans import NewFinding, NewScan, Scans
from hazardvision.data.video_jobs import VideoJobs
from hazardvision.data.video_records import VideoJobRecord, VideoJobStatus
from hazardvision.home import Home

pytestmark = pytest.mark.usefixtures("database_url")  # every test on SQLite and on PostgreSQL

runner = CliRunner(env={"COLUMNS": "200"})


def scans(*args: str):
    return runner.invoke(app, ["scans", *args])


def record_scan(home: Path, scan_id: str, *, days_old: float, photo: bytes | None = None) -> Path:
    """A scan the service would have recorded `days_old` days ago, with one pending finding and its photo."""
    data = photo or f"photo of {scan_id}".encode()
    sha256 = hashlib.sha256(data).hexdigest()
    bank = SampleBank(home)
    path = ImageStore(Home(home).scans).put(sha256, "JPEG", data)
    created = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_old)
    scan = NewScan(id=scan_id, created_at=created, actor="li.wei", source="site.jpg", image_sha256=sha256,
                   image_format="JPEG", result={}, model_versions={"site": "0.4.0"}, stored_sha256=sha256)
    with Scans(bank.database).record(scan=scan, findings=[
            NewFinding(id=f"{scan_id}-f", class_name="fire", box=(1, 2, 30, 40), confidence=0.9, pack="site")]):
        pass
    bank.close()
    return path


def file_under_inspection(home: Path, scan_id: str) -> None:
    bank = SampleBank(home)
    with Inspections(bank.database).open(inspection_id="visit-1", site="dock-3", enterprise=None, inspector="li.wei",
                                         visited_on=dt.datetime.now(dt.UTC), notes=None, scan_ids=[scan_id]):
        pass
    bank.close()


def records(home: Path, action: str) -> list:
    bank = SampleBank(home)
    found = AuditLog(bank.database).records(action=action)
    bank.close()
    return found


def test_scans_delete_removes_the_scan_and_its_photo_and_audits_it(tmp_path):
    photo = record_scan(tmp_path, "s1", days_old=0)
    done = scans("delete", "s1", "--home", str(tmp_path))
    assert done.exit_code == 0, done.output
    assert "deleted scan s1" in done.stdout and "1 unreviewed findings removed" in done.stdout
    assert not photo.exists()
    [record] = records(tmp_path, "scan.delete")
    assert record.subject == "s1" and record.actor.startswith("cli:")
    again = scans("delete", "s1", "--home", str(tmp_path))
    assert again.exit_code == 2 and "was deleted" in again.stderr


def test_scans_delete_of_an_unknown_scan_exits_2(tmp_path):
    record_scan(tmp_path, "s1", days_old=0)
    done = scans("delete", "nope", "--home", str(tmp_path))
    assert done.exit_code == 2 and "no scan 'nope'" in done.stderr


def test_scans_delete_of_a_scan_in_an_inspection_exits_1_naming_it(tmp_path):
    photo = record_scan(tmp_path, "s1", days_old=0)
    file_under_inspection(tmp_path, "s1")
    done = scans("delete", "s1", "--home", str(tmp_path), "--json")
    assert done.exit_code == 1 and "filed in inspection visit-1" in done.stderr
    assert photo.exists() and records(tmp_path, "scan.delete") == []


def test_scans_commands_refuse_a_home_that_does_not_exist(tmp_path):
    for args in (["delete", "s1"], ["purge", "--older-than", "1"]):
        done = scans(*args, "--home", str(tmp_path / "typo"))
        assert done.exit_code == 2 and "no hazardvision home" in done.stderr
    assert not (tmp_path / "typo").exists()


def test_scans_purge_dry_run_says_what_would_go_and_changes_nothing(tmp_path):
    old = record_scan(tmp_path, "old", days_old=40)
    done = scans("purge", "--older-than", "30", "--dry-run", "--home", str(tmp_path), "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert (report["dry_run"], report["scans_deleted"], report["photos_removed"]) == (True, 1, 1)
    assert old.exists() and records(tmp_path, "scan.purge") == []


def test_scans_purge_deletes_what_is_older_and_keeps_the_recent_and_the_filed(tmp_path):
    old = record_scan(tmp_path, "old", days_old=40)
    filed = record_scan(tmp_path, "filed", days_old=40)
    recent = record_scan(tmp_path, "recent", days_old=1)
    file_under_inspection(tmp_path, "filed")
    done = scans("purge", "--older-than", "30", "--home", str(tmp_path))
    assert done.exit_code == 0, done.output
    assert "deleted 1 scans" in done.stdout and "kept filed: it is filed in inspection visit-1" in done.stdout
    assert not old.exists() and filed.exists() and recent.exists()
    [record] = records(tmp_path, "scan.purge")
    assert record.details["scans_deleted"] == 1 and record.details["scans_kept"] == 1
    assert record.details["older_than_days"] == 30
    assert scans("purge", "--older-than", "30", "--home", str(tmp_path)).exit_code == 0
    assert len(records(tmp_path, "scan.purge")) == 1  # a purge that deleted nothing changed nothing to audit


def test_scans_purge_takes_the_retention_period_from_the_environment(tmp_path, monkeypatch):
    old = record_scan(tmp_path, "old", days_old=10)
    missing = scans("purge", "--home", str(tmp_path))
    assert missing.exit_code == 2 and "HAZARDVISION_SCAN_RETENTION_DAYS" in missing.stderr
    monkeypatch.setenv("HAZARDVISION_SCAN_RETENTION_DAYS", "7")
    done = scans("purge", "--home", str(tmp_path))
    assert done.exit_code == 0, done.output
    assert not old.exists()


def record_video_job(home: Path, job_id: str, *, days_old: float, status: VideoJobStatus = VideoJobStatus.DONE
                     ) -> Path:
    """A video job as the service leaves it, uploaded (and, unless still running, finished) `days_old` days ago:
    its video file and one hazard event with its best frame; return the job's folder."""
    folder = Home(home).videos / job_id
    (folder / "events").mkdir(parents=True)
    (folder / "video.mp4").write_bytes(f"video of {job_id}".encode())
    (folder / "events" / "e1.jpg").write_bytes(b"\xff\xd8 best frame")
    bank = SampleBank(home)
    jobs = VideoJobs(bank.database)
    with jobs.create(job_id=job_id, filename="dock.mp4", video_file=f"{job_id}/video.mp4", size_bytes=20,
                     owner="test-pipeline", camera="gate-3", site=None, enterprise=None, fps=None):
        pass
    assert jobs.start(job_id=job_id, duration=5.0, model_versions={"site": "0.4.0"})
    jobs.add_events(job_id=job_id, events=[(f"{job_id[:8]}-e1", {"kind": "hazard"}, f"{job_id}/events/e1.jpg")])
    if status is not VideoJobStatus.RUNNING:
        with jobs.finish(job_id=job_id, status=status, error=None, frames_read=50, frames_analysed=50,
                         video_seconds=5.0):
            pass
    then = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_old)
    with bank.database.session() as session:
        session.execute(update(VideoJobRecord).where(VideoJobRecord.id == job_id).values(
            created_at=then, finished_at=None if status is VideoJobStatus.RUNNING else then))
    bank.close()
    return folder


def test_scans_purge_removes_the_files_of_old_finished_video_jobs_and_keeps_the_jobs(tmp_path):
    old = record_video_job(tmp_path, "a" * 32, days_old=40)
    cancelled = record_video_job(tmp_path, "b" * 32, days_old=40, status=VideoJobStatus.CANCELLED)
    running = record_video_job(tmp_path, "c" * 32, days_old=40, status=VideoJobStatus.RUNNING)
    recent = record_video_job(tmp_path, "d" * 32, days_old=1)
    dry = scans("purge", "--older-than", "30", "--dry-run", "--home", str(tmp_path), "--json")
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    assert (report["video_jobs_purged"], report["videos_removed"], report["video_snapshots_removed"]) == (2, 2, 2)
    assert old.exists() and cancelled.exists()
    done = scans("purge", "--older-than", "30", "--home", str(tmp_path))
    assert done.exit_code == 0, done.output
    assert "the files of 2 finished video jobs (2 videos, 2 event snapshots)" in done.stdout
    assert not old.exists() and not cancelled.exists()
    assert (running / "video.mp4").exists() and (running / "events" / "e1.jpg").exists()  # never a running job's
    assert (recent / "video.mp4").exists()
    [record] = records(tmp_path, "scan.purge")
    assert (record.details["video_jobs_purged"], record.details["videos_removed"],
            record.details["video_snapshots_removed"], record.details["scans_deleted"]) == (2, 2, 2, 0)
    bank = SampleBank(tmp_path)
    job = VideoJobs(bank.database).get(job_id="a" * 32)
    bank.close()
    assert job is not None and job.files_purged_at is not None and len(job.events) == 1  # the job and its events stay
    assert scans("purge", "--older-than", "30", "--home", str(tmp_path)).exit_code == 0
    assert len(records(tmp_path, "scan.purge")) == 1  # purged once
