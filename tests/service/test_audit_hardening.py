"""An audit log that cannot lie, through a real server: work past its deadline commits nothing, denied requests
are audited (limited per address), camera changes are audited with their URLs (credentials redacted), and the
witness a service writes catches a rollback of the whole home."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hazardvision.access import Role
from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit import AuditLog
from hazardvision.data.service_records import FindingRecord, ScanRecord
from hazardvision.errors import RequestTimeout
from hazardvision.service.archive import ScanArchive
from tests.service.conftest import jpeg_bytes, live_server

SCRIPT = Path(sys.executable).with_name("hazardvision")


def stored(home: Path) -> tuple[int, int, int]:
    """Scans, findings and scan audit records the home's database holds."""
    bank = SampleBank(home)
    with bank.database.session() as session:
        scans = session.scalar(select(func.count()).select_from(ScanRecord)) or 0
        findings = session.scalar(select(func.count()).select_from(FindingRecord)) or 0
    records = len(AuditLog(bank.database).records(action="scan"))
    bank.engine.dispose()
    return scans, findings, records


def test_audit_scan_answered_503_past_its_deadline_stores_nothing(tmp_path, ppe_photos, monkeypatch, database_url):
    """The scan's work is slower than the request timeout: 503, and its commit is refused in its transaction (on
    each test database)."""
    record, slow, outcomes = ScanArchive.record, threading.Event(), []

    def slow_record(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if slow.is_set():
            time.sleep(4)  # the answer (503) has gone by now
        try:
            result = record(self, *args, **kwargs)
        except Exception as error:
            outcomes.append(error)
            raise
        outcomes.append(result)
        return result

    monkeypatch.setattr(ScanArchive, "record", slow_record)
    photo = ("photo.jpg", jpeg_bytes(ppe_photos[0]), "image/jpeg")
    with live_server(tmp_path / "home", request_timeout_seconds=3) as server, \
            server.client(Role.INSPECTOR) as client:
        assert client.post("/v1/scans", files={"image": photo}).status_code == 200  # in time: kept
        assert stored(server.home)[::2] == (1, 1)
        slow.set()
        late = client.post("/v1/scans", files={"image": photo})
        assert late.status_code == 503 and late.json()["error"] == "RequestTimeout"
        deadline = time.monotonic() + 30
        while len(outcomes) < 2:
            assert time.monotonic() < deadline, "the abandoned scan did not finish"
            time.sleep(0.2)
        assert isinstance(outcomes[1], RequestTimeout)
        scans, findings, records = stored(server.home)
        assert (scans, records) == (1, 1) and findings == len(outcomes[0].response.findings)
        assert AuditLog.at(server.home).verify() == []


@pytest.fixture(scope="module")
def witness(tmp_path_factory) -> Path:
    """The service's witness file, outside its home."""
    return tmp_path_factory.mktemp("elsewhere") / "witness.jsonl"


@pytest.fixture(scope="module")
def server(tmp_path_factory, witness):
    with live_server(tmp_path_factory.mktemp("audited"), wait_ready=False, denied_audit_limit=3,
                     audit_witness_file=witness) as running:
        yield running


def test_audit_denied_requests_are_recorded_and_limited_per_address(server):
    with server.client(None) as anonymous, server.client(Role.PIPELINE) as pipeline:
        assert anonymous.get("/v1/reviews").status_code == 401
        for _ in range(5):
            assert pipeline.get("/v1/reviews").status_code == 403
    records = AuditLog.at(server.home).records(action="request.denied")
    assert [(r.action, r.actor) for r in records] == [
        ("request.denied", "anonymous"), ("request.denied", "test-pipeline"), ("request.denied", "test-pipeline"),
        ("request.denied.limited", "test-pipeline")]
    first, second = records[0], records[1]
    assert first.details["status"] == 401 and first.details["method"] == "GET"
    assert first.details["path"] == "/v1/reviews" and "Unauthenticated" in first.details["reason"]
    assert second.details["status"] == 403 and "Forbidden" in second.details["reason"]
    assert records[-1].details["limit_per_minute"] == 3 and records[-1].subject == "127.0.0.1"


def test_audit_camera_changes_record_their_urls_without_credentials(server):
    config = {"webhook_url": "https://hooks.example/alerts", "webhook_secret": "s" * 24,
              "stream_url": "rtsp://viewer:stream-pw-7@127.0.0.1:9/live"}
    with server.client(Role.PIPELINE) as pipeline:
        assert pipeline.put("/v1/cameras/audited-cam", json=config).status_code == 200
        assert pipeline.delete("/v1/cameras/audited-cam").status_code == 200
    log = AuditLog.at(server.home)
    for action in ("camera.configure", "camera.delete"):
        [record] = [r for r in log.records(action=action) if r.subject == "audited-cam"]
        assert record.details["webhook_url"] == "https://hooks.example/alerts"
        assert record.details["stream_url"] == "rtsp://127.0.0.1:9/live"
        assert "stream-pw-7" not in str(record.details) and "s" * 24 not in str(record.details)


def test_audit_witness_of_the_service_catches_a_rollback_of_the_whole_home(server, witness, tmp_path):
    older = tmp_path / "older"
    shutil.copytree(server.home, older)  # every file of the home, its database included
    with server.client(Role.ADMIN) as admin:
        assert admin.put("/v1/cameras/later-cam", json={}).status_code == 200
    shutil.copytree(older, tmp_path / "restored")
    command = [str(SCRIPT), "audit", "verify", "--home", str(tmp_path / "restored")]
    assert subprocess.run(command, capture_output=True, text=True, timeout=120, check=False).returncode == 0
    done = subprocess.run([*command, "--witness", str(witness)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 1 and "the audit witness" in done.stderr and "missing" in done.stderr
