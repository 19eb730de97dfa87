"""Inspections and rectifications through a real server: a visit groups its scans; a confirmed hazard is
assigned, closed by an after-photo the service scans, and verified by another inspector; every step is audited."""

from __future__ import annotations

import datetime as dt

import cv2
import httpx
import numpy as np
import pytest

from hazardvision.access import ApiKeys, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit import AuditLog
from tests.service.conftest import assert_error, live_server

VISIT = {"site": "dock-9", "enterprise": "acme", "notes": "quarterly visit"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("inspections-home")) as running:
        yield running


@pytest.fixture(scope="module")
def verifier(server):
    """A second inspector's key: the one who verifies what the first closed."""
    bank = SampleBank(server.home)
    key = ApiKeys(bank).create("test-verifier", Role.INSPECTOR)[1]
    bank.engine.dispose()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def scans(inspector, ppe_photos):
    """Two scans at the visit's site, the first with at least two findings: one confirmed, one rejected."""
    found = []
    for photo in ppe_photos[:12]:
        scan = inspector.post("/v1/scans", files={"image": (photo.name, photo.read_bytes())},
                              data={"site": VISIT["site"], "enterprise": VISIT["enterprise"]}).json()
        if len(scan["findings"]) >= 2 or (found and scan["findings"]):
            found.append((photo, scan))
        if len(found) == 2:
            break
    assert len(found) == 2, "no two photos with findings among the first 12 of ppe-vest's test split"
    confirmed, rejected = found[0][1]["findings"][:2]
    for finding, decision in ((confirmed, "confirm"), (rejected, "reject")):
        response = inspector.post(f"/v1/findings/{finding['id']}/review",
                                  json={"decision": decision, "reviewer": "li wei"})
        assert response.status_code == 201, response.text
    return found


def _uniform_jpeg() -> bytes:
    """A grey frame: no hazard of any class (the frame-quality check reports it, never a finding)."""
    ok, data = cv2.imencode(".jpg", np.full((480, 640, 3), 128, np.uint8))
    assert ok
    return data.tobytes()


def test_inspection_groups_the_scans_of_a_visit(inspector, scans):
    scan_ids = [scan["scan_id"] for _, scan in scans]
    opened = inspector.post("/v1/inspections", json={**VISIT, "visited_on": "2026-11-30T09:00:00+08:00",
                                                     "scan_ids": scan_ids[:1]})
    assert opened.status_code == 201, opened.text
    inspection = opened.json()
    assert inspection["inspector"] == "test-inspector" and inspection["visited_on"] == "2026-11-30T01:00:00Z"
    assert inspection["scan_ids"] == scan_ids[:1]

    filed = inspector.post(f"/v1/inspections/{inspection['id']}/scans", json={"scan_ids": scan_ids}).json()
    assert filed["scan_ids"] == scan_ids
    assert [scan["scan_id"] for scan in filed["scans"]] == scan_ids
    assert {review["decision"] for review in filed["reviews"]} == {"confirm", "reject"}
    assert filed["scans"][0]["findings"] == scans[0][1]["findings"]

    listed = inspector.get("/v1/inspections", params={"site": "dock-9", "since": "2026-11-30T00:00:00Z",
                                                      "until": "2026-12-01T00:00:00Z"}).json()["inspections"]
    assert [item["id"] for item in listed] == [inspection["id"]]
    assert inspector.get("/v1/inspections", params={"enterprise": "other"}).json() == {"inspections": []}
    assert inspector.get(f"/v1/inspections/{inspection['id']}").json() == filed


def test_inspection_refuses_a_scan_of_another_inspection_and_unknown_ids(inspector, scans):
    scan_id = scans[1][1]["scan_id"]
    first = inspector.post("/v1/inspections", json={**VISIT, "scan_ids": [scan_id]})
    assert first.status_code in (201, 409), first.text  # 409: the grouping test filed it first
    other = inspector.post("/v1/inspections", json={"site": "dock-9"}).json()
    assert_error(inspector.post(f"/v1/inspections/{other['id']}/scans", json={"scan_ids": [scan_id]}), 409,
                 "InspectionConflict")
    assert_error(inspector.post(f"/v1/inspections/{other['id']}/scans", json={"scan_ids": ["nope"]}), 404,
                 "UnknownScan")
    assert_error(inspector.get("/v1/inspections/nope"), 404, "UnknownInspection")
    assert_error(inspector.post("/v1/inspections", json={"site": ""}), 422)
    # the refused requests left the other inspection as it was
    assert inspector.get(f"/v1/inspections/{other['id']}").json()["scan_ids"] == []


def test_rectification_is_closed_by_a_passing_after_photo_and_verified_by_another_inspector(
        server, inspector, verifier, scans):
    confirmed, rejected = scans[0][1]["findings"][:2]
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat()
    response = inspector.post(f"/v1/findings/{confirmed['id']}/rectification",
                              json={"responsible": "site contractor", "deadline": deadline})
    assert response.status_code == 201, response.text
    opened = response.json()
    assert opened["status"] == "open" and not opened["overdue"] and opened["class_name"] == confirmed["class_name"]
    assert opened["enterprise"] == "acme"
    assert_error(inspector.post(f"/v1/findings/{confirmed['id']}/rectification",
                                json={"responsible": "x", "deadline": deadline}), 409, "RectificationConflict")
    assert_error(inspector.post(f"/v1/findings/{rejected['id']}/rectification",
                                json={"responsible": "x", "deadline": deadline}), 409, "RectificationConflict")
    assert_error(verifier.post(f"/v1/rectifications/{opened['id']}/verify", json={"accept": True}), 409)

    closed = inspector.post(f"/v1/rectifications/{opened['id']}/close",
                            files={"image": ("after.jpg", _uniform_jpeg())})
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["after_passed"] is True
    after = inspector.get(f"/v1/scans/{closed.json()['after_scan_id']}").json()
    assert after["findings"] == [] and after["context"]["site"] == "dock-9"

    assert_error(inspector.post(f"/v1/rectifications/{opened['id']}/verify", json={"accept": True}), 409,
                 "RectificationConflict")  # the closer never verifies
    verified = verifier.post(f"/v1/rectifications/{opened['id']}/verify", json={"accept": True}).json()
    assert verified["status"] == "verified" and verified["verified_by"] == "test-verifier"
    assert verified["closed_by"] == "test-inspector"

    listed = inspector.get("/v1/rectifications", params={"enterprise": "acme", "status": "verified"}).json()
    assert [item["id"] for item in listed["rectifications"]] == [opened["id"]]
    actions = [(record.action, record.subject) for record in AuditLog.at(server.home).records()]
    assert [action for action, subject in actions if subject == opened["id"]] == [
        "rectification.assign", "rectification.close", "rectification.verify"]


def test_rectification_of_a_failed_after_photo_needs_a_reason_or_opens_again(inspector, verifier, ppe_photos):
    photo = next(photo for photo in ppe_photos[12:40] if (scan := inspector.post(
        "/v1/scans", files={"image": (photo.name, photo.read_bytes())},
        data={"enterprise": "acme"}).json())["findings"])
    finding = scan["findings"][0]
    assert inspector.post(f"/v1/findings/{finding['id']}/review",
                          json={"decision": "confirm", "reviewer": "li wei"}).status_code == 201
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    opened = inspector.post(f"/v1/findings/{finding['id']}/rectification",
                            json={"responsible": "shift lead", "deadline": past}).json()
    assert opened["overdue"] is True
    overdue = inspector.get("/v1/rectifications", params={"status": "overdue"}).json()["rectifications"]
    assert opened["id"] in [item["id"] for item in overdue]

    def close_with_the_same_photo() -> dict:
        response = inspector.post(f"/v1/rectifications/{opened['id']}/close",
                                  files={"image": (photo.name, photo.read_bytes())})
        assert response.status_code == 200, response.text
        return response.json()

    assert close_with_the_same_photo()["after_passed"] is False  # the hazard is still in the picture
    assert_error(verifier.post(f"/v1/rectifications/{opened['id']}/verify", json={"accept": True}), 409,
                 "RectificationConflict")
    reopened = verifier.post(f"/v1/rectifications/{opened['id']}/verify", json={"accept": False}).json()
    assert reopened["status"] == "open" and reopened["after_scan_id"] is None

    close_with_the_same_photo()
    accepted = verifier.post(f"/v1/rectifications/{opened['id']}/verify",
                             json={"accept": True, "override_reason": "the worker in the photo left the site"})
    assert accepted.json()["status"] == "verified", accepted.text
    assert accepted.json()["override_reason"] == "the worker in the photo left the site"


def test_inspections_refuse_a_pipeline_key_and_bad_photos(server, inspector):
    with server.client(Role.PIPELINE) as pipeline:
        assert_error(pipeline.get("/v1/inspections"), 403, "Forbidden")
        assert_error(pipeline.post("/v1/inspections", json=VISIT), 403, "Forbidden")
        assert_error(pipeline.get("/v1/rectifications"), 403, "Forbidden")
    assert_error(inspector.post("/v1/rectifications/nope/close", files={"image": ("a.jpg", _uniform_jpeg())}),
                 404, "UnknownRectification")
    assert_error(inspector.get("/v1/rectifications", params={"status": "lost"}), 422)
