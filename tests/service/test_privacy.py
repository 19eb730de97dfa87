"""Privacy and retention through a real server, on SQLite and on PostgreSQL: stored photos lose their GPS position,
what the service writes is private to its user, scans are deleted on request and past the retention period, and
what must be kept is kept."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import stat
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from PIL import ExifTags, Image
from sqlalchemy import text

from hazardvision.access import Role
from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit import AuditLog
from hazardvision.home import Home
from tests.conftest import test_photos
from tests.databases import DATABASES
from tests.service.conftest import (
    LiveServer,
    assert_error,
    eventually,
    find_one_hazard_photo,
    live_server,
    send_frame,
)

LATITUDE, LONGITUDE = (31.0, 14.0, 5.5), (121.0, 28.0, 7.25)
RETENTION_DAYS = 30


def with_gps(photo: Path, orientation: int = 6) -> bytes:
    """A real photo as a phone would send it: EXIF with a GPS position, an orientation, a make and a time."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "TestPhone"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", LATITUDE
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", LONGITUDE
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2026:05:01 08:30:00"
    buffer = io.BytesIO()
    Image.open(photo).convert("RGB").save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def decoded(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # applies the EXIF orientation


@pytest.fixture(scope="module", params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(kind, URL) of a fresh database of each kind for the module's server."""
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path_factory.mktemp('privacy-db') / 'bank.sqlite3'}"
        return
    postgres = request.getfixturevalue("postgres_server")
    with postgres.database() as url:
        yield "postgresql", url


@pytest.fixture(autouse=True)
def _count_database(request: pytest.FixtureRequest, database: tuple[str, str]) -> None:
    request.node.user_properties.append(("database", database[0]))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database: tuple[str, str], datasets: Path) -> Iterator[LiveServer]:
    """A server with a retention period, started under umask 0: every mode it sets, it sets itself."""
    kind, url = database
    home = tmp_path_factory.mktemp(f"privacy-home-{kind}") / "home"
    # On SQLite the database is the home's own file, as in a default install.
    url_setting = {} if kind == "sqlite" else {"database_url": url}
    previous = os.umask(0)
    try:
        with live_server(home, scan_retention_days=RETENTION_DAYS, retention_check_seconds=1, **url_setting) as running:
            yield running
    finally:
        os.umask(previous)


@pytest.fixture(scope="module")
def bank(server: LiveServer, database: tuple[str, str]) -> Iterator[SampleBank]:
    kind, url = database
    opened = SampleBank(server.home, url=None if kind == "sqlite" else url)
    yield opened
    opened.engine.dispose()


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(Role.ADMIN) as client:
        yield client


def scan(client: httpx.Client, data: bytes, **context: str) -> dict:
    response = client.post("/v1/scans", files={"image": ("site.jpg", data, "image/jpeg")}, data=context)
    assert response.status_code == 200, response.text
    return response.json()


def stored_file(home: Path, sha256: str) -> Path:
    return Home(home).scans / sha256[:2] / f"{sha256}.jpg"


def backdate(bank: SampleBank, table: str, row_id: str, days: float) -> None:
    """Make a scan or an alert `days` older, as if it had been recorded then."""
    column = "created_at"
    with bank.engine.begin() as connection:
        when = connection.execute(text(f"SELECT {column} FROM {table} WHERE id = :id"), {"id": row_id}).scalar_one()
        if isinstance(when, str):  # SQLite keeps ISO text
            when = dt.datetime.fromisoformat(when)
        connection.execute(text(f"UPDATE {table} SET {column} = :when WHERE id = :id"),
                           {"id": row_id, "when": when - dt.timedelta(days=days)})


def audit_records(bank: SampleBank, action: str) -> list:
    return AuditLog(bank.database).records(action=action)


def finding_scan(client: httpx.Client, photos: list[Path], **context: str) -> dict:
    """A scan of a real photo with at least one finding."""
    for photo in photos:
        body = scan(client, photo.read_bytes(), **context)
        if body["findings"]:
            return body
    pytest.fail("no photo of the list has a finding")


# -- location

def test_privacy_stored_photo_loses_its_gps_position_and_keeps_orientation_and_pixels(server, inspector, bank,
                                                                                      ppe_photos):
    upload = with_gps(ppe_photos[0])
    assert Image.open(io.BytesIO(upload)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the photo does carry one
    body = scan(inspector, upload, site="dock-3")
    assert body["image"]["sha256"] == hashlib.sha256(upload).hexdigest()  # the identity: the bytes uploaded
    assert body["stored_sha256"] != body["image"]["sha256"]

    kept = stored_file(server.home, body["stored_sha256"]).read_bytes()
    assert hashlib.sha256(kept).hexdigest() == body["stored_sha256"]
    exif = Image.open(io.BytesIO(kept)).getexif()
    assert ExifTags.IFD.GPSInfo not in exif and not exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert exif[ExifTags.Base.Orientation] == 6 and exif[ExifTags.Base.Make] == "TestPhone"
    assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] == "2026:05:01 08:30:00"
    assert np.array_equal(decoded(kept), decoded(upload))  # not re-encoded: the same pixels, turned the same way
    assert not stored_file(server.home, body["image"]["sha256"]).exists()  # the bytes with the position are not kept

    served = inspector.get(f"/v1/scans/{body['scan_id']}/photo")
    assert served.status_code == 200 and served.content == kept
    assert inspector.get(f"/v1/scans/{body['scan_id']}").json()["stored_sha256"] == body["stored_sha256"]
    record = next(r for r in audit_records(bank, "scan") if r.subject == body["scan_id"])
    assert record.input_sha256 == body["image"]["sha256"]
    assert record.details["stored_sha256"] == body["stored_sha256"]


def test_privacy_a_retry_of_a_photo_with_gps_is_known_by_the_bytes_uploaded(inspector, ppe_photos):
    upload = with_gps(ppe_photos[1])
    headers = {"Idempotency-Key": "privacy-retry-1"}
    first = inspector.post("/v1/scans", files={"image": ("a.jpg", upload)}, headers=headers)
    again = inspector.post("/v1/scans", files={"image": ("a.jpg", upload)}, headers=headers)
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["scan_id"] == first.json()["scan_id"]


def test_privacy_a_photo_without_gps_is_stored_as_uploaded(server, inspector, ppe_photos):
    upload = ppe_photos[2].read_bytes()
    body = scan(inspector, upload)
    assert body["stored_sha256"] == body["image"]["sha256"] == hashlib.sha256(upload).hexdigest()
    assert stored_file(server.home, body["stored_sha256"]).read_bytes() == upload


def test_privacy_a_reviewed_photo_joins_the_bank_without_its_gps_position(server, inspector, bank):
    for photo in test_photos("fire-smoke")[:30]:
        upload = with_gps(photo)
        body = scan(inspector, upload, site="yard-1")
        if body["findings"]:
            break
    else:
        pytest.fail("no fire-smoke photo with a finding")
    review = inspector.post(f"/v1/findings/{body['findings'][0]['id']}/review", json={"decision": "reject"})
    assert review.status_code == 201, review.text
    case = bank.case(review.json()["case_id"])
    assert case.image_sha256 == body["stored_sha256"]
    assert ExifTags.IFD.GPSInfo not in Image.open(case.image_path).getexif()
    assert scan(inspector, upload)["bank_case_id"] == case.id  # the same photo sent again is known as that case


# -- file modes

def test_privacy_everything_the_service_wrote_is_private_to_its_user(server, inspector, ppe_photos):
    scan(inspector, ppe_photos[3].read_bytes())
    home = server.home
    assert (home / "scans").is_dir() and (home / "audit").is_dir()
    wrong = []
    for folder, folders, files in os.walk(home):
        for name in folders:
            mode = stat.S_IMODE((Path(folder) / name).stat().st_mode)
            if mode != 0o700:
                wrong.append(f"{Path(folder) / name}: {mode:o}")
        for name in files:
            mode = stat.S_IMODE((Path(folder) / name).stat().st_mode)
            if mode != 0o600:
                wrong.append(f"{Path(folder) / name}: {mode:o}")
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert not wrong, wrong


# -- deleting one scan

def test_privacy_delete_is_for_admins_only(inspector, server, ppe_photos):
    scan_id = scan(inspector, ppe_photos[4].read_bytes())["scan_id"]
    for role in (Role.INSPECTOR, Role.PIPELINE, Role.ML):
        with server.client(role) as client:
            assert_error(client.delete(f"/v1/scans/{scan_id}"), 403, "Forbidden")
    assert inspector.get(f"/v1/scans/{scan_id}").status_code == 200


def test_privacy_delete_of_an_unknown_scan_is_404(admin):
    body = assert_error(admin.delete("/v1/scans/no-such-scan"), 404, "UnknownScan")
    assert "no-such-scan" in body["message"]


def test_privacy_delete_removes_the_photo_the_result_and_the_pending_findings(server, inspector, admin, bank,
                                                                              ppe_photos):
    body = finding_scan(inspector, ppe_photos[5:15], note="gate 4")
    photo = stored_file(server.home, body["stored_sha256"])
    assert photo.is_file()
    response = admin.delete(f"/v1/scans/{body['scan_id']}")
    assert response.status_code == 200, response.text
    deleted = response.json()
    assert deleted["scan_id"] == body["scan_id"] and deleted["photo_removed"] is True
    assert deleted["findings_removed"] == len(body["findings"]) and deleted["findings_kept"] == 0
    assert not photo.exists()
    for path in ("", "/annotated", "/photo"):
        gone = assert_error(inspector.get(f"/v1/scans/{body['scan_id']}{path}"), 404, "UnknownScan")
        assert "deleted" in gone["message"]
    assert_error(inspector.post(f"/v1/findings/{body['findings'][0]['id']}/review", json={"decision": "confirm"}),
                 404, "UnknownFinding")
    assert_error(admin.delete(f"/v1/scans/{body['scan_id']}"), 404, "UnknownScan")
    assert_error(inspector.post("/v1/inspections", json={"site": "dock-4", "scan_ids": [body["scan_id"]]}), 404,
                 "UnknownScan")
    [record] = [r for r in audit_records(bank, "scan.delete") if r.subject == body["scan_id"]]
    assert record.actor == "test-admin" and record.details["findings_removed"] == len(body["findings"])
    assert record.input_sha256 == body["image"]["sha256"]
    with bank.engine.connect() as connection:
        row = connection.execute(text("SELECT note, deleted_at FROM scans WHERE id = :id"),
                                 {"id": body["scan_id"]}).one()
    assert row.note is None and row.deleted_at is not None
    assert AuditLog(bank.database).verify() == []


def test_privacy_delete_keeps_a_photo_another_scan_still_has(server, inspector, admin, ppe_photos):
    data = ppe_photos[16].read_bytes()
    first, second = scan(inspector, data), scan(inspector, data)
    assert admin.delete(f"/v1/scans/{first['scan_id']}").json()["photo_removed"] is False
    assert inspector.get(f"/v1/scans/{second['scan_id']}/photo").content == data
    assert admin.delete(f"/v1/scans/{second['scan_id']}").json()["photo_removed"] is True
    assert not stored_file(server.home, second["stored_sha256"]).exists()


def test_privacy_delete_refuses_a_scan_filed_in_an_inspection(inspector, admin, ppe_photos):
    body = scan(inspector, ppe_photos[17].read_bytes(), site="dock-5")
    inspection = inspector.post("/v1/inspections", json={"site": "dock-5", "scan_ids": [body["scan_id"]]})
    assert inspection.status_code == 201, inspection.text
    refused = assert_error(admin.delete(f"/v1/scans/{body['scan_id']}"), 409, "ScanProtected")
    assert f"inspection {inspection.json()['id']}" in refused["message"]
    assert inspector.get(f"/v1/scans/{body['scan_id']}/photo").status_code == 200


def test_privacy_delete_refuses_a_photo_of_the_bank_and_keeps_reviews_once_the_case_is_gone(
        inspector, admin, bank, ppe_photos):
    body = finding_scan(inspector, ppe_photos[18:30], site="dock-6")
    confirmed, *others = body["findings"]
    review = inspector.post(f"/v1/findings/{confirmed['id']}/review", json={"decision": "confirm"}).json()
    refused = assert_error(admin.delete(f"/v1/scans/{body['scan_id']}"), 409, "ScanProtected")
    assert f"case {review['case_id']} of the sample bank" in refused["message"]

    bank.delete_cases([review["case_id"]])
    deleted = admin.delete(f"/v1/scans/{body['scan_id']}").json()
    assert (deleted["findings_kept"], deleted["findings_removed"]) == (1, len(others))
    reviews = inspector.get("/v1/reviews", params={"scan_id": body["scan_id"]}).json()
    assert [(r["finding_id"], r["decision"]) for r in reviews["reviews"]] == [(confirmed["id"], "confirm")]


def test_privacy_delete_refuses_the_scans_of_a_rectification_not_yet_verified(inspector, admin, ppe_photos):
    body = finding_scan(inspector, ppe_photos[30:45], site="dock-7")
    finding = body["findings"][0]
    inspector.post(f"/v1/findings/{finding['id']}/review", json={"decision": "confirm"}).raise_for_status()
    rectification = inspector.post(f"/v1/findings/{finding['id']}/rectification",
                                   json={"responsible": "acme", "deadline": "2030-01-01T00:00:00Z"})
    assert rectification.status_code == 201, rectification.text
    closed = inspector.post(f"/v1/rectifications/{rectification.json()['id']}/close",
                            files={"image": ("after.jpg", ppe_photos[45].read_bytes())})
    assert closed.status_code == 200, closed.text
    after_scan = closed.json()["after_scan_id"]
    refused = assert_error(admin.delete(f"/v1/scans/{after_scan}"), 409, "ScanProtected")
    assert f"after-photo of rectification {rectification.json()['id']}" in refused["message"]
    refused = assert_error(admin.delete(f"/v1/scans/{body['scan_id']}"), 409, "ScanProtected")
    assert f"rectification {rectification.json()['id']}" in refused["message"]


# -- retention

def test_privacy_retention_deletes_old_scans_and_keeps_the_protected_ones(server, inspector, bank, ppe_photos):
    old = scan(inspector, with_gps(ppe_photos[46]), site="dock-8")
    filed = scan(inspector, ppe_photos[47].read_bytes(), site="dock-8")
    recent = scan(inspector, ppe_photos[48].read_bytes(), site="dock-8")
    inspection = inspector.post("/v1/inspections", json={"site": "dock-8", "scan_ids": [filed["scan_id"]]}).json()
    for body in (old, filed):
        backdate(bank, "scans", body["scan_id"], RETENTION_DAYS + 1)

    eventually(lambda: inspector.get(f"/v1/scans/{old['scan_id']}").status_code == 404, seconds=30)
    assert not stored_file(server.home, old["stored_sha256"]).exists()
    assert inspector.get(f"/v1/scans/{filed['scan_id']}/photo").status_code == 200
    assert inspector.get(f"/v1/scans/{recent['scan_id']}/photo").status_code == 200
    purge = next(r for r in reversed(audit_records(bank, "scan.purge")) if r.details["scans_deleted"])
    assert purge.actor == "service:retention" and purge.details["older_than_days"] == RETENTION_DAYS
    assert purge.details["scans_kept"] >= 1
    assert inspection["id"]


def test_privacy_retention_forgets_acknowledged_alert_snapshots_and_keeps_the_others(server, bank):
    photo = find_one_hazard_photo(server)
    other = io.BytesIO()
    Image.open(io.BytesIO(photo)).save(other, "JPEG", quality=80)  # the same hazard in another frame file
    raised = {}
    with server.client(Role.PIPELINE) as pipeline, server.client(Role.INSPECTOR) as inspector:
        for camera, frame in (("privacy-cam-1", photo), ("privacy-cam-2", other.getvalue())):
            pipeline.put(f"/v1/cameras/{camera}", json={"rule": {"min_frames": 1}}).raise_for_status()
            sent = send_frame(pipeline, camera, frame, 10)
            assert sent.status_code == 200 and sent.json()["alerts"], sent.text
            raised[camera] = sent.json()["alerts"][0]["alert_id"]
        acknowledged, waiting = raised["privacy-cam-1"], raised["privacy-cam-2"]
        inspector.post(f"/v1/alerts/{acknowledged}/ack", json={}).raise_for_status()
        frame_file = Home(server.home).frames / hashlib.sha256(photo).hexdigest()[:2]
        assert any(frame_file.iterdir())
        for alert_id in (acknowledged, waiting):
            backdate(bank, "alerts", alert_id, RETENTION_DAYS + 1)

        eventually(lambda: inspector.get(f"/v1/alerts/{acknowledged}/snapshot").status_code == 404, seconds=30)
        assert "retention" in inspector.get(f"/v1/alerts/{acknowledged}/snapshot").json()["message"]
        assert inspector.get(f"/v1/alerts/{waiting}/snapshot").status_code == 200
        assert not list(frame_file.glob(f"{hashlib.sha256(photo).hexdigest()}.*"))
        listed = {a["alert_id"]: a for a in inspector.get("/v1/alerts").json()["alerts"]}
        assert {acknowledged, waiting} <= set(listed)  # the alerts themselves stay
    purge = next(r for r in reversed(audit_records(bank, "scan.purge")) if r.details["snapshots_removed"])
    assert purge.details["frames_removed"] >= 1


def test_privacy_keep_photo_location_stores_the_bytes_uploaded(request, tmp_path, database, datasets, ppe_photos):
    with ExitStack() as stack:
        settings: dict[str, object] = {"keep_photo_location": True}
        if database[0] == "postgresql":  # a database of its own: the module's server has its keys in the other
            settings["database_url"] = stack.enter_context(request.getfixturevalue("postgres_server").database())
        running = stack.enter_context(live_server(tmp_path / "keeps-location", **settings))
        client = stack.enter_context(running.client(Role.INSPECTOR))
        upload = with_gps(ppe_photos[49])
        body = scan(client, upload)
        assert body["stored_sha256"] == body["image"]["sha256"]
        kept = stored_file(running.home, body["stored_sha256"]).read_bytes()
    assert kept == upload
    assert dict(Image.open(io.BytesIO(kept)).getexif().get_ifd(ExifTags.IFD.GPSInfo))[ExifTags.GPS.GPSLatitude] \
        == LATITUDE
