"""The service's main flows on PostgreSQL, through one real server: a scan, a review into the bank and back out
as a similar case, frames and alerts, keys, and the audit trail. The same flows on SQLite are the other
tests of this folder; this module starts one extra server (its cost: one model load and about twenty scans)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hazardvision.access import ApiKeys, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit import AuditLog
from hazardvision.errors import ApiKeyConflict
from hazardvision.similar.maintenance import sync_indexes
from tests.conftest import bundled_packs, test_photos
from tests.databases import PostgresServer
from tests.service.conftest import LiveServer, eventually, find_one_hazard_photo, jpeg_bytes, labelled_bank, live_server

pytestmark = pytest.mark.database("postgresql")

CONTEXT = {"site": "dock-9", "enterprise": "acme", "note": "east scaffold", "captured_at": "2026-04-02T12:00:00+02:00"}


@pytest.fixture(scope="module")
def postgres_home(tmp_path_factory, postgres_server: PostgresServer) -> Iterator[tuple[Path, str]]:
    """A home whose database is a fresh PostgreSQL database holding six labelled photos and their index."""
    with postgres_server.database() as url:
        home = tmp_path_factory.mktemp("postgres-home")
        bank = SampleBank(home, url=url)
        labelled_bank(bank, tmp_path_factory.mktemp("labelled"), test_photos("ppe-vest")[20:26])
        sync_indexes(bank, bundled_packs())
        bank.engine.dispose()
        yield home, url


@pytest.fixture(scope="module")
def server(postgres_home, datasets) -> Iterator[LiveServer]:
    home, url = postgres_home
    with live_server(home, database_url=url) as running:
        yield running


@pytest.fixture(scope="module")
def bank(postgres_home) -> Iterator[SampleBank]:
    home, url = postgres_home
    opened = SampleBank(home, url=url)
    yield opened
    opened.engine.dispose()


@pytest.fixture(scope="module")
def scanned(inspector, ppe_photos):
    """A photo whose scan has a finding, and that scan."""
    for photo in ppe_photos[:10]:
        response = inspector.post("/v1/scans", files={"image": (photo.name, photo.read_bytes())}, data=CONTEXT)
        assert response.status_code == 200, response.text
        if response.json()["findings"]:
            return photo, response.json()
    pytest.skip("no photo among the first ten of ppe-vest's test split gives a finding with this model")


def test_postgres_scan_is_recorded_with_its_context_in_utc(server, inspector, scanned):
    _, scan = scanned
    assert not (server.home / "bank.sqlite3").exists()  # the service keeps nothing in SQLite
    again = inspector.get(f"/v1/scans/{scan['scan_id']}")
    assert again.status_code == 200, again.text
    assert again.json() == scan
    assert scan["context"]["captured_at"].replace("Z", "+00:00") == "2026-04-02T10:00:00+00:00"


def test_postgres_review_becomes_a_case_and_a_similar_case_of_a_later_scan(inspector, scanned, bank):
    photo, scan = scanned
    finding = scan["findings"][0]
    response = inspector.post(f"/v1/findings/{finding['id']}/review",
                              json={"decision": "confirm", "reviewer": "li.wei", "note": "no vest by the crane"})
    assert response.status_code == 201, response.text
    review = response.json()
    case = bank.case(review["case_id"])
    assert (case.source, case.site, case.enterprise) == ("service-scans", "dock-9", "acme")
    assert bank.verify() == []
    conflict = inspector.post(f"/v1/findings/{finding['id']}/review", json={"decision": "reject", "reviewer": "x"})
    assert conflict.status_code == 409, conflict.text

    def similar_case_found() -> bool:  # the index follows the review in the background
        again = inspector.post("/v1/scans", files={"image": ("again.jpg", jpeg_bytes(photo, quality=75))}).json()
        similar = [case for found in again["findings"] for case in found["similar_cases"]]
        return any(case["annotation_id"] == review["annotation_id"] and case["case_id"] == review["case_id"]
                   for case in similar)

    eventually(similar_case_found)
    listed = inspector.get("/v1/reviews", params={"site": "dock-9"}).json()["reviews"]
    assert [r["case_id"] for r in listed] == [review["case_id"]]


def test_postgres_frames_raise_alerts_that_are_listed(server):
    photo = find_one_hazard_photo(server)
    with server.client(Role.PIPELINE) as pipeline:
        put = pipeline.put("/v1/cameras/gate-1", json={"rule": {"min_frames": 2, "cooldown_seconds": 600},
                                                       "tiling": "off"})
        assert put.status_code == 200, put.text
        raised = []
        for i in range(6):
            response = pipeline.post("/v1/cameras/gate-1/frames", files={"image": ("frame.jpg", photo)},
                                     data={"timestamp": str(100 + i * 0.2)})
            assert response.status_code == 200, response.text
            raised += [alert["alert_id"] for alert in response.json()["alerts"]]
        assert raised, "the hazard photo raised no alert"
        listed = pipeline.get("/v1/alerts", params={"camera": "gate-1"}).json()["alerts"]
        assert sorted(a["alert_id"] for a in listed) == sorted(raised)
        assert pipeline.get("/v1/alerts", params={"since": "2100-01-01T00:00:00Z"}).json()["alerts"] == []
        assert pipeline.get("/v1/cameras/gate-1").json()["tiling"] == "off"


def test_postgres_keys_revoked_are_refused_and_their_name_is_free_again(server, bank):
    keys = ApiKeys(bank)
    _, key = keys.create("night-shift", Role.INSPECTOR)
    with pytest.raises(ApiKeyConflict):
        keys.create("night-shift", Role.INSPECTOR)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        assert client.get("/v1/alerts").status_code == 200
        keys.revoke("night-shift")
        assert client.get("/v1/alerts").status_code == 401
    assert keys.create("night-shift", Role.INSPECTOR)[0].active


def test_postgres_audit_trail_holds_the_scans_and_camera_settings_and_verifies(server, scanned, postgres_home):
    log = AuditLog.at(*postgres_home[:1], url=postgres_home[1])
    assert log.verify() == []
    assert not (server.home / "audit" / "audit.jsonl").exists()  # the chain lives in PostgreSQL
    assert scanned[1]["scan_id"] in [r.subject for r in log.records(action="scan")]
