"""Video upload jobs through a real server: upload, progress, events and their best frames, a damaged file,
the size limit, cancelling, a restart part-way, and who may do it."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from sqlalchemy import update

from hazardvision.access import ApiKeys, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.catalogue import load_catalogue
from hazardvision.data.audit import AuditLog
from hazardvision.data.video_records import VideoJobRecord
from hazardvision.home import Home
from hazardvision.images import load_image
from hazardvision.packs.registry import active_packs
from hazardvision.scan import Scanner
from hazardvision.service.retention import ScanRetention
from tests.conftest import test_photos
from tests.service.conftest import assert_error, eventually, live_server
from tests.video.footage import Shot, clip_frames, write_clip

SCRIPT = Path(sys.executable).with_name("hazardvision")
FIRE_SECONDS, COVERED_SECONDS = 3.0, 2.0
LIMIT = 4 * 1024 * 1024
LONG_SECONDS = 6.0


@pytest.fixture(scope="module")
def fire(datasets) -> Path:
    """A fire-smoke test photo on which the active packs find one clear fire and nothing else."""
    scanner = Scanner(active_packs(None), load_catalogue())
    for photo in test_photos("fire-smoke")[:40]:
        findings = scanner.scan([load_image(photo)], [photo.name])[0].findings
        if [f.class_name for f in findings] == ["fire"] and findings[0].confidence >= 0.6:
            return photo
    pytest.fail("none of the first 40 fire-smoke test photos shows one clear fire alone to the active packs")


@pytest.fixture(scope="module")
def clip(fire, tmp_path_factory) -> Path:
    """Five seconds at 10 fps: a fire-smoke photo (panned, with sensor noise), then a covered lens."""
    plan = [Shot(fire, 0.0, FIRE_SECONDS), Shot(None, FIRE_SECONDS, COVERED_SECONDS)]
    return write_clip(tmp_path_factory.mktemp("videos") / "site.mp4", clip_frames(plan, fps=10, size=(480, 360)),
                      fps=10)


@pytest.fixture(scope="module")
def long_clip(fire, tmp_path_factory) -> Path:
    """Six seconds of the fire at 10 fps, small frames: a job that runs for a few seconds analysing every frame."""
    return write_clip(tmp_path_factory.mktemp("videos") / "long.mkv",
                      clip_frames([Shot(fire, 0.0, LONG_SECONDS)], fps=10, size=(320, 240)), fps=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory, datasets):
    with live_server(tmp_path_factory.mktemp("home"), max_video_bytes=LIMIT) as running:
        yield running


def upload(client: httpx.Client, video: Path, **fields: object) -> str:
    response = client.post("/v1/videos", files={"video": (video.name, video.read_bytes())},
                           data={k: str(v) for k, v in fields.items()})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued" and body["url"] == f"/v1/videos/{body['job_id']}"
    return str(body["job_id"])


def wait_finished(client: httpx.Client, job_id: str, seconds: float = 120) -> list[dict]:
    """Every status seen while polling, until the job has finished."""
    seen = []
    deadline = time.monotonic() + seconds
    while True:
        job = client.get(f"/v1/videos/{job_id}").json()
        seen.append(job)
        if job["status"] in ("done", "failed", "cancelled"):
            return seen
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']}: {job['progress']}"
        time.sleep(0.05)


def test_video_job_runs_to_completion_with_progress_events_and_snapshots(server, clip):
    with server.client(Role.INSPECTOR) as inspector:
        job_id = upload(inspector, clip, camera="gate-3", site="Plant A")
        seen = wait_finished(inspector, job_id)
        job = seen[-1]
        snapshot = inspector.get(job["events"][0]["snapshot_url"]) if job["events"] else None
    assert job["status"] == "done" and job["error"] is None, job
    progress = [s["progress"]["video_seconds"] for s in seen]
    assert progress == sorted(progress) and len(set(progress)) >= 2, progress  # seen rising while it ran
    assert any(s["status"] == "running" and 0 < s["progress"]["video_seconds"] < 4 for s in seen), seen
    assert job["progress"]["frames_read"] == 50 and job["progress"]["percent"] == pytest.approx(100, abs=3)
    assert job["progress"]["eta_seconds"] == 0 and job["camera"] == "gate-3" and job["models"]
    hazards = [e for e in job["events"] if e["kind"] == "hazard"]
    cameras = [e for e in job["events"] if e["kind"] == "camera"]
    fires = [e for e in hazards if e["class_name"] == "fire"]
    assert fires and max(e["end"] - e["start"] for e in fires) >= FIRE_SECONDS / 2, hazards
    for event in hazards:
        assert 0 <= event["start"] <= event["end"] <= FIRE_SECONDS + 0.5 and event["camera"] == "gate-3"
        assert event["hazard"]["severity"] and event["hazard"]["code"] and event["frames"] >= 3
    # The covered lens raises no hazard; the motion gate (max gap 2 s) looks at too few of its frames for a
    # camera event, which needs 3.
    assert all(e["start"] >= FIRE_SECONDS - 0.2 for e in cameras)
    assert [e["number"] for e in job["events"]] == list(range(1, len(job["events"]) + 1))
    assert snapshot is not None and snapshot.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(snapshot.content, np.uint8), cv2.IMREAD_COLOR).shape == (360, 480, 3)
    # The same events as `hazardvision scan-video` finds in the same file.
    done = subprocess.run([str(SCRIPT), "scan-video", str(clip), "--json", "--home", str(server.home)],
                          capture_output=True, text=True, timeout=300, check=True)
    cli = json.loads(done.stdout)["events"]
    assert [(e["kind"], e["class_name"], e["start"], e["end"], e["frames"]) for e in cli] == \
        [(e["kind"], e["class_name"], e["start"], e["end"], e["frames"]) for e in job["events"]]
    records = [r for r in AuditLog(SampleBank(server.home).database).records() if r.subject == job_id]
    assert [r.action for r in records] == ["video.create", "video.finish"]
    assert records[1].details["events"] == len(job["events"]) and records[1].details["status"] == "done"


def test_video_job_past_the_retention_period_loses_its_files_and_says_so(server, clip):
    with server.client(Role.INSPECTOR) as inspector:
        job_id = upload(inspector, clip, camera="gate-4")
        job = wait_finished(inspector, job_id)[-1]
        assert job["status"] == "done" and job["files_purged_at"] is None
        numbered = [e["number"] for e in job["events"] if e["snapshot_url"]]
        assert numbered and inspector.get(f"/v1/videos/{job_id}/events/{numbered[0]}/snapshot").status_code == 200
        bank = SampleBank(server.home)
        with bank.database.session() as session:  # as if it had finished 40 days ago
            then = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
            session.execute(update(VideoJobRecord).where(VideoJobRecord.id == job_id)
                            .values(created_at=then, finished_at=then))
        report = ScanRetention(bank, AuditLog(bank.database)).purge(older_than_days=30, actor="cli:test")
        bank.engine.dispose()
        assert (report.video_jobs_purged, report.videos_removed, report.video_snapshots_removed) == \
            (1, 1, len(numbered))
        assert not (Home(server.home).videos / job_id).exists()
        purged = inspector.get(f"/v1/videos/{job_id}").json()
        gone = assert_error(inspector.get(f"/v1/videos/{job_id}/events/{numbered[0]}/snapshot"), 404)
    assert purged["files_purged_at"] and len(purged["events"]) == len(job["events"])
    assert all(event["snapshot_url"] is None for event in purged["events"])
    assert "retention period" in gone["message"]


def test_video_job_of_a_truncated_file_fails_with_its_events_before_the_damage(server, tmp_path, fire):
    whole = write_clip(tmp_path / "whole.mkv", clip_frames([Shot(fire, 0.0, 4.0)], fps=10, size=(320, 240)), fps=10)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with server.client(Role.PIPELINE) as pipeline:
        job = wait_finished(pipeline, upload(pipeline, cut))[-1]
    assert job["status"] == "failed" and "truncated" in job["error"] and "cut.mkv" in job["error"], job
    assert str(server.home) not in job["error"]
    assert job["events"] and all(e["end"] <= 2.5 for e in job["events"])
    assert 0 < job["progress"]["video_seconds"] < 3


def test_video_upload_that_is_not_a_video_gets_422_and_leaves_nothing(server):
    with server.client(Role.INSPECTOR) as inspector:
        assert_error(inspector.post("/v1/videos", files={"video": ("clip.mp4", b"not a video" * 100)}), 422,
                     "InvalidUpload")
        assert_error(inspector.post("/v1/videos", files={"video": ("notes.txt", b"x")}), 415, "UnsupportedUpload")
        assert_error(inspector.post("/v1/videos", content=b"x", headers={"content-type": "text/plain"}), 415)
    assert not list((server.home / "videos" / ".incoming").glob("*"))


@pytest.mark.parametrize("chunked", [False, True])
def test_video_upload_over_the_limit_gets_413_and_leaves_no_file(server, chunked):
    data = np.random.default_rng(0).integers(0, 255, LIMIT + 512 * 1024, dtype=np.uint8).tobytes()
    with server.client(Role.INSPECTOR) as inspector:
        if chunked:  # no Content-Length: refused while it streams
            body = (data[i:i + 256 * 1024] for i in range(0, len(data), 256 * 1024))
            response = inspector.post("/v1/videos?filename=big.mp4", content=body,
                                      headers={"content-type": "video/mp4"})
        else:
            response = inspector.post("/v1/videos", files={"video": ("big.mp4", data)})
        assert "smaller video" in assert_error(response, 413)["message"]
        jobs = inspector.get("/v1/videos").json()["jobs"]
    assert eventually(lambda: not list((server.home / "videos" / ".incoming").glob("*")))
    assert all(job["filename"] != "big.mp4" for job in jobs)


def test_video_job_cancel_stops_it_and_is_audited(server, long_clip):
    with server.client(Role.PIPELINE) as pipeline:
        job_id = upload(pipeline, long_clip, fps=10)
        cancelled = pipeline.post(f"/v1/videos/{job_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert_error(pipeline.post(f"/v1/videos/{job_id}/cancel"), 409, "VideoJobConflict")
        time.sleep(1.0)
        job = pipeline.get(f"/v1/videos/{job_id}").json()
        listed = pipeline.get("/v1/videos", params={"status": "cancelled"}).json()["jobs"]
    assert job["status"] == "cancelled" and job["progress"]["video_seconds"] < LONG_SECONDS - 1
    assert job_id in [j["job_id"] for j in listed]
    actions = [r.action for r in AuditLog(SampleBank(server.home).database).records() if r.subject == job_id]
    assert actions == ["video.create", "video.cancel"]


def test_video_job_from_a_raw_body_leaves_photo_scans_their_workers(server, long_clip, fire):
    with server.client(Role.PIPELINE) as pipeline, server.client(Role.INSPECTOR) as inspector:
        created = pipeline.post("/v1/videos", params={"filename": "long.mkv", "fps": 10, "camera": "dock-1"},
                                content=long_clip.read_bytes(), headers={"content-type": "video/x-matroska"})
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]
        eventually(lambda: pipeline.get(f"/v1/videos/{job_id}").json()["status"] == "running", 60)
        scans = [inspector.post("/v1/scans", files={"image": (fire.name, fire.read_bytes())}) for _ in range(3)]
        job = pipeline.get(f"/v1/videos/{job_id}").json()
        pipeline.post(f"/v1/videos/{job_id}/cancel")
    assert [scan.status_code for scan in scans] == [200] * 3
    assert any(f["class_name"] == "fire" for f in scans[0].json()["findings"])
    assert job["filename"] == "long.mkv" and job["camera"] == "dock-1" and job["fps"] == 10


def test_video_jobs_need_the_videos_permission_and_are_their_uploaders(server, clip):
    with server.client(Role.ML) as ml:
        assert_error(ml.post("/v1/videos", files={"video": (clip.name, clip.read_bytes())}), 403, "Forbidden")
        assert_error(ml.get("/v1/videos"), 403)
    with server.client(Role.PIPELINE) as pipeline, server.client(Role.INSPECTOR) as inspector:
        pipelines, inspectors = upload(pipeline, clip), upload(inspector, clip)
        mine = {j["job_id"] for j in pipeline.get("/v1/videos").json()["jobs"]}
        theirs = {j["job_id"] for j in inspector.get("/v1/videos").json()["jobs"]}
        assert pipelines in mine and inspectors in theirs and not mine & theirs
        other = next(iter(theirs))
        assert_error(pipeline.get(f"/v1/videos/{other}"), 404, "UnknownVideoJob")
        assert_error(pipeline.post(f"/v1/videos/{other}/cancel"), 404)
    with server.client(Role.ADMIN) as admin:
        assert {j["job_id"] for j in admin.get("/v1/videos").json()["jobs"]} >= mine | theirs
        for job_id in (pipelines, inspectors):  # an admin may cancel anyone's job (a finished one is a 409)
            assert admin.post(f"/v1/videos/{job_id}/cancel").status_code in (200, 409)
    with server.client(None) as anonymous:
        assert_error(anonymous.get("/v1/videos"), 401)


def test_video_job_running_when_the_service_stops_resumes_at_the_next_start(tmp_path, datasets, long_clip):
    home = tmp_path / "home"
    with live_server(home) as first, first.client(Role.INSPECTOR) as inspector:
        job_id = upload(inspector, long_clip, fps=5)
        eventually(lambda: (job := inspector.get(f"/v1/videos/{job_id}").json())["status"] == "running"
                   and job["progress"]["frames_analysed"] >= 3, 60)
    bank = SampleBank(home)
    for role in Role:  # the second server makes its own keys under the same names
        ApiKeys(bank).revoke(f"test-{role.value}")
    bank.engine.dispose()
    with live_server(home) as second, second.client(Role.ADMIN) as admin:
        job = wait_finished(admin, job_id)[-1]
    assert job["status"] == "done" and job["attempts"] == 2, job
    assert job["progress"]["frames_read"] == LONG_SECONDS * 10 and job["progress"]["frames_analysed"] > 0
    fires = [e for e in job["events"] if e["class_name"] == "fire"]
    assert fires and min(e["start"] for e in fires) < 1 and max(e["end"] for e in fires) > LONG_SECONDS - 1.5
    assert len({e["event_id"] for e in job["events"]}) == len(job["events"])
