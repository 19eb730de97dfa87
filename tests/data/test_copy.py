"""`hazardvision bank copy`: a SQLite bank, every table of it, into an empty database (SQLite or PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from hazardvision.cli import app
from hazardvision.data.audit import AuditLog
from hazardvision.data.bank_records import (
    Annotation,
    Case,
    Enterprise,
    Image,
    LabelVersion,
    PendingImage,
    Site,
    SnapshotRecord,
    Source,
)
from hazardvision.data.camera_epochs import CameraEpochRecord
from hazardvision.data.copy import copy_bank, tables
from hazardvision.data.engine import create_database_engine
from hazardvision.data.generations import Generations, Kind
from hazardvision.data.inspection_records import InspectionRecord, InspectionScanRecord, RectificationRecord
from hazardvision.data.migrations import migrate
from hazardvision.data.service_records import (
    AlertRecord,
    ApiKey,
    CameraRecord,
    FindingRecord,
    ReviewRecord,
    ScanRecord,
    WebSession,
)
from hazardvision.data.stream_leases import StreamLeaseRecord
from hazardvision.data.video_records import VideoEventRecord, VideoJobRecord
from hazardvision.data.webhook_records import WebhookFailureRecord
from hazardvision.errors import BankError
from hazardvision.home import Home

CAPTURED = dt.datetime(2026, 4, 2, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
RESULT = {"findings": [{"class_name": "no_helmet", "box": [1.5, 2.0, 30.0, 40.0]}], "note": "grüße, 工地"}


def make_sqlite_bank(home: Path, cases: int = 3) -> None:
    """A SQLite bank with rows in every table: values PostgreSQL checks harder than SQLite (a negative
    64-bit dHash, an offset time, JSON, a boolean, long names)."""
    engine = create_database_engine(Home.at(home).sqlite_url)
    home.mkdir(parents=True, exist_ok=True)
    migrate(engine)
    with Session(engine) as session, session.begin():
        enterprise = Enterprise(name="Acme Steel")
        site = Site(name="Dock 3", enterprise=enterprise, location="east quay")
        source = Source(name="site-photos", kind="dataset", origin="made here", licence="CC BY 4.0")
        session.add_all([enterprise, site, source])
        session.flush()
        for index in range(cases):
            sha = hashlib.sha256(f"photo {index}".encode()).hexdigest()
            session.add(Image(sha256=sha, width=640, height=480, format="JPEG", size_bytes=1000,
                              dhash=-(2**63) + index, dhash_bilinear=2**63 - 1 - index, group_id=sha[:16]))
            case = Case(image_sha256=sha, source_id=source.id, source_file="deep/" * 120 + f"{index}.jpg",
                        source_split="train", site_id=site.id, enterprise_id=enterprise.id, captured_at=CAPTURED)
            case.annotations.append(Annotation(class_name="no_helmet", source_class="x" * 150,
                                               x1=1, y1=2, x2=30, y2=40))
            case.label_versions.append(LabelVersion(version=1, author="dataset site-photos", via="recorded",
                                                    created_at=CAPTURED, reason="工地, first labels",
                                                    labels=[{"class_name": "helmet", "box": [1.5, 2, 30, 40]}]))
            session.add(case)
        session.add(PendingImage(sha256="e" * 64))
        session.add(SnapshotRecord(id="snap-1", path="/tmp/snap", manifest={"classes": ["no_helmet"]}))
        session.add(ApiKey(name="root", role="admin", key_hash="a" * 64, prefix="hv_abcde"))
        session.add(ApiKey(name="root", role="admin", key_hash="b" * 64, prefix="hv_fghij", revoked_at=CAPTURED))
        scan = ScanRecord(id="s1", actor="root", source="u" * 600 + ".jpg", image_sha256="c" * 64, image_format="JPEG",
                          result=RESULT, model_versions={"ppe": "0.2.1"}, captured_at=CAPTURED,
                          stored_sha256="d" * 64, deleted_at=CAPTURED)
        scan.findings.append(FindingRecord(id="f1", position=0, class_name="no_helmet", x1=1, y1=2, x2=3, y2=4,
                                           confidence=0.9, pack="ppe", status="confirmed"))
        session.add(scan)
        session.flush()
        session.add(ReviewRecord(finding_id="f1", scan_id="s1", decision="confirm", reviewer="li.wei", actor="root",
                                 class_name="no_helmet", x1=1, y1=2, x2=3, y2=4, corrected=True, case_id=1))
        session.add(CameraRecord(id="gate-1", rule={"min_frames": 3}, tiling="auto",
                                 stream_url="rtsp://192.168.1.20/stream1", stream_credentials="fernet:token"))
        session.add(CameraEpochRecord(camera_id="gate-2", epoch=3, changed_at=CAPTURED))
        session.add(StreamLeaseRecord(camera_id="gate-1", holder="host:1:abcd", expires_at=CAPTURED,
                                      state="reconnecting", last_error="Connection refused"))
        session.add(AlertRecord(id="a1", camera_id="gate-1", class_name="fire", tracker_id=1, first_seen=0.0,
                                raised_at=1.5, frames=5, x1=0, y1=0, x2=1, y2=1, confidence=0.8, image_sha256="d" * 64,
                                model_versions={"fire-smoke": "0.2.1"}, verdict="false", verdict_by="root",
                                verdict_at=CAPTURED, verdict_note="a welding torch"))
        session.add(WebhookFailureRecord(id="w1", delivery_id="d1", camera_id="gate-1", alert_id="a1",
                                         url="https://hooks.example.com/in", body='{"event":"alert"}', attempts=5,
                                         http_status=503, last_error="HTTP 503 Service Unavailable"))
        session.flush()
        session.add(WebSession(token_hash="f" * 64, key_id=1, csrf_token="csrf", expires_at=CAPTURED))
        inspection = InspectionRecord(id="i1", site="dock-9", enterprise="acme", inspector="root",
                                      visited_on=CAPTURED, notes="工地 visit")
        inspection.scans.append(InspectionScanRecord(scan_id="s1", added_by="root"))
        session.add(inspection)
        session.add(RectificationRecord(id="r1", finding_id="f1", scan_id="s1", class_name="no_helmet",
                                        enterprise="acme", responsible="contractor", deadline=CAPTURED,
                                        assigned_by="root", after_passed=False))
        job = VideoJobRecord(id="v1", filename="gate.mp4", video_file="video.mp4", size_bytes=1000, owner="root",
                             camera="gate-1")
        job.events.append(VideoEventRecord(id="e1", number=1, event={"class_name": "fire", "start": 1.5},
                                           snapshot="events/1.jpg"))
        session.add(job)
    engine.dispose()
    log = AuditLog.at(home, url=Home.at(home).sqlite_url)
    log.append("root", "scan", "s1", input_sha256="c" * 64, details={"note": "grüße, 工地"})
    log.append("root", "review.confirm", "f1", details={"ratio": 0.1 + 0.2})
    Generations(log.database).bump(Kind.MODELS)
    log.database.dispose()


def counts(url: str) -> dict[str, int]:
    engine = create_database_engine(url)
    with engine.connect() as connection:
        found = {t.name: connection.execute(select(func.count()).select_from(t)).scalar_one() for t in tables()}
    engine.dispose()
    return found


def test_copy_brings_every_row_and_value_across(tmp_path, database_url):
    home = tmp_path / "home"
    make_sqlite_bank(home)
    report = copy_bank(home, database_url, batch_size=2)
    assert report.rows == counts(Home.at(home).sqlite_url) == counts(database_url)
    assert all(report.rows.values()), report.rows  # every table had something to copy
    copied = AuditLog.at(home, url=database_url)
    assert copied.verify() == [] and copied.count() == 2  # the chain's hashes hold on the other database
    copied.database.dispose()

    engine = create_database_engine(database_url)
    with Session(engine) as session:
        case = session.scalars(select(Case).order_by(Case.id)).first()
        assert case is not None and case.captured_at == CAPTURED and case.captured_at.tzinfo == dt.UTC
        assert case.image.dhash == -(2**63) and case.image.dhash_bilinear == 2**63 - 1
        assert len(case.source_file) > 500 and case.annotations[0].source_class == "x" * 150
        (version,) = case.label_versions
        assert (version.reason, version.created_at) == ("工地, first labels", CAPTURED)
        assert version.labels == [{"class_name": "helmet", "box": [1.5, 2, 30, 40]}]
        scan = session.get(ScanRecord, "s1")
        assert scan is not None and scan.result == RESULT and scan.findings[0].status == "confirmed"
        assert (scan.stored_sha256, scan.deleted_at) == ("d" * 64, CAPTURED)
        review = session.scalars(select(ReviewRecord)).one()
        assert review.corrected is True
    engine.dispose()


def test_copy_moves_the_id_sequences_past_the_copied_ids(tmp_path, database_url):
    home = tmp_path / "home"
    make_sqlite_bank(home, cases=3)
    copy_bank(home, database_url)
    engine = create_database_engine(database_url)
    with engine.begin() as connection:
        new_id = connection.execute(insert(Source).values(name="later", kind="scan").returning(Source.id)).scalar()
        assert new_id == 2
        case_ids = connection.execute(select(Case.id)).scalars().all()
    engine.dispose()
    assert sorted(case_ids) == [1, 2, 3]


def test_copy_refuses_a_target_that_holds_data(tmp_path, database_url):
    home = tmp_path / "home"
    make_sqlite_bank(home)
    copy_bank(home, database_url)
    with pytest.raises(BankError, match="is not empty"):
        copy_bank(home, database_url)
    assert counts(database_url) == counts(Home.at(home).sqlite_url)  # untouched by the refused copy


def test_copy_refuses_a_home_without_a_sqlite_bank_and_a_copy_onto_itself(tmp_path, database_url):
    with pytest.raises(BankError, match="no SQLite bank"):
        copy_bank(tmp_path / "nothing", database_url)
    home = tmp_path / "home"
    make_sqlite_bank(home, cases=1)
    with pytest.raises(BankError, match="is the bank being copied"):
        copy_bank(home, Home.at(home).sqlite_url)


@pytest.mark.parametrize("url", ["mysql://root@localhost/bank", "not a url"])
def test_copy_unsupported_database_url_says_what_runs(tmp_path, url):
    make_sqlite_bank(tmp_path / "home", cases=1)
    with pytest.raises(BankError, match=r"SQLite .* or PostgreSQL|cannot be read"):
        copy_bank(tmp_path / "home", url)


def test_copy_command_reports_the_rows_and_refuses_a_second_copy(tmp_path, database_url):
    home = tmp_path / "home"
    make_sqlite_bank(home, cases=2)
    runner = CliRunner()
    done = runner.invoke(app, ["bank", "copy", "--to", database_url, "--home", str(home)])
    assert done.exit_code == 0, done.output
    assert "every table's count matches" in done.output and "cases 2" in done.output
    again = runner.invoke(app, ["bank", "copy", "--to", database_url, "--home", str(home)])
    assert again.exit_code == 2 and "is not empty" in again.output
