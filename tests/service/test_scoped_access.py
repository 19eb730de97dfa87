"""Scoped access: which keys read which scans, findings, reviews, inspections, rectifications and alerts (and
change them); rejected findings show no picture."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from hazardvision.access import ApiKeys, KeyRecord, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.cli import app as cli_app
from hazardvision.data.audit import AuditLog
from hazardvision.data.bank_records import Annotation, Origin
from hazardvision.data.migrations import LATEST
from hazardvision.data.scans import Visibility
from hazardvision.service.scopes import visibility_of
from hazardvision.similar.thumbnails import thumbnail_path
from tests.databases import DATABASES
from tests.service.conftest import LiveServer, assert_error, live_server, send_frame


class _NoCameras:
    def owned_by(self, *, owner: str) -> set[str]:
        return {"gate-1"} if owner == "pipe" else set()


def _key(role: Role, sites: tuple[str, ...] = ()) -> KeyRecord:
    import datetime as dt
    name = "pipe" if role is Role.PIPELINE else role.value
    return KeyRecord(id=1, name=name, role=role, prefix="hv_x", created_at=dt.datetime.now(dt.UTC), sites=sites)


@pytest.mark.parametrize(("key", "scope", "expected"), [
    (_key(Role.ADMIN, ("a",)), "own", None),
    (_key(Role.INSPECTOR), "own", None),  # no sites: every site, as before scopes
    (_key(Role.INSPECTOR, ("a",)), "own", Visibility("inspector", frozenset({"a"}))),
    (_key(Role.ML, ("a", "b")), "own", Visibility("ml", frozenset({"a", "b"}))),
    (_key(Role.PIPELINE), "own", Visibility("pipe", cameras=frozenset({"gate-1"}))),
    (_key(Role.PIPELINE), "all", None),
    (_key(Role.INSPECTOR, ("a",)), "all", None),
])
def test_visibility_of_a_key_follows_its_role_sites_cameras_and_the_setting(key, scope, expected):
    assert visibility_of(key, scope, _NoCameras()) == expected  # type: ignore[arg-type]


def test_visibility_admits_own_scans_its_sites_and_its_cameras():
    seen = Visibility("pipe", frozenset({"dock-3"}), frozenset({"gate-1"}))
    assert seen.admits(actor="pipe", site=None, camera=None)
    assert seen.admits(actor="other", site="dock-3", camera=None)
    assert seen.admits(actor="other", site=None, camera="gate-1")
    assert not seen.admits(actor="other", site="yard-9", camera="gate-2")


def test_keys_create_with_sites_keeps_them_and_migration_17_adds_the_column(tmp_path, database_url):
    result = CliRunner().invoke(cli_app, ["keys", "create", "--role", "inspector", "--name", "li", "--site", "dock-3",
                                          "--site", "yard-9", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    bank = SampleBank(tmp_path)
    (record,) = ApiKeys(bank).list()
    assert record.sites == ("dock-3", "yard-9")
    with bank.engine.begin() as connection:  # a version 16 bank: keys without sites
        connection.execute(text("ALTER TABLE api_keys DROP COLUMN sites"))
        connection.execute(text("DELETE FROM schema_version WHERE version >= 17"))
    bank.close()
    upgraded = SampleBank(tmp_path)
    assert upgraded.stats().schema_version == LATEST
    (record,) = ApiKeys(upgraded).list()
    assert record.sites == ()  # an older key reads every site, as it did
    upgraded.close()


@pytest.fixture(scope="module", params=DATABASES)
def server(request, tmp_path_factory, datasets) -> Iterator[LiveServer]:
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_server").create()
    home = tmp_path_factory.mktemp(f"scoped-{request.param}")
    try:
        with live_server(home, database_url=url) as running:
            bank = SampleBank(home, url=url)
            keys = ApiKeys(bank)
            running.keys.update({"dock": keys.create("dock-inspector", Role.INSPECTOR, sites=["dock-3"])[1],
                                 "pipe-b": keys.create("pipe-b", Role.PIPELINE)[1],
                                 **_site_keys(keys)})
            bank.engine.dispose()
            running.database_url = url  # type: ignore[attr-defined]
            yield running
    finally:
        if url:
            request.getfixturevalue("postgres_server").drop(url)


def _site_keys(keys: ApiKeys) -> dict[Any, str]:
    """Keys of each role created with the site dock-3 (besides `dock`) and an inspector's of yard-9, for the tests
    of inspections, rectifications and alerts."""
    return {"dock-2": keys.create("dock-inspector-2", Role.INSPECTOR, sites=["dock-3"])[1],
            "yard": keys.create("yard-inspector", Role.INSPECTOR, sites=["yard-9"])[1],
            "ml-dock": keys.create("ml-dock", Role.ML, sites=["dock-3"])[1],
            "admin-dock": keys.create("admin-dock", Role.ADMIN, sites=["dock-3"])[1],
            "pipe-dock": keys.create("pipe-dock", Role.PIPELINE, sites=["dock-3"])[1]}


def _as(server: LiveServer, name: str) -> httpx.Client:
    client = server.client(None)
    client.headers["Authorization"] = f"Bearer {server.keys[name]}"  # type: ignore[index]
    return client


def _scan(client, photo, **fields):
    response = client.post("/v1/scans", files={"image": (photo.name, photo.read_bytes(), "image/jpeg")}, data=fields)
    assert response.status_code == 200, response.text
    return response.json()


def _with_findings(client, photos, **fields):
    for photo in photos[:12]:
        scan = _scan(client, photo, **fields)
        if scan["findings"]:
            return scan, photo
    pytest.skip("no photo of the first twelve has a finding")


def test_scans_findings_and_reviews_are_read_within_the_key_s_scope(server, ppe_photos):
    admin, inspector = server.client(Role.ADMIN), server.client(Role.INSPECTOR)
    dock, pipe_b = server.client(None), server.client(None)
    dock.headers["Authorization"] = f"Bearer {server.keys['dock']}"  # type: ignore[index]
    pipe_b.headers["Authorization"] = f"Bearer {server.keys['pipe-b']}"  # type: ignore[index]
    pipe = server.client(Role.PIPELINE)
    # the pipeline now owns gate-1
    assert pipe.put("/v1/cameras/gate-1", json={"rule": {"min_frames": 3}}).status_code == 200
    at_dock, _ = _with_findings(admin, ppe_photos, site="dock-3")
    at_yard, _ = _with_findings(admin, ppe_photos, site="yard-9", camera="gate-1")
    own = _scan(pipe_b, ppe_photos[0])
    readers = {"admin": admin, "inspector": inspector, "dock": dock, "pipe": pipe, "pipe-b": pipe_b}
    expected = {"admin": {at_dock["scan_id"], at_yard["scan_id"], own["scan_id"]},
                # an inspector key without sites reads every site
                "inspector": {at_dock["scan_id"], at_yard["scan_id"], own["scan_id"]},
                "dock": {at_dock["scan_id"]}, "pipe": {at_yard["scan_id"]}, "pipe-b": {own["scan_id"]}}
    for name, client in readers.items():
        for scan_id in (at_dock["scan_id"], at_yard["scan_id"], own["scan_id"]):
            for suffix in ("", "/annotated", "/photo"):
                response = client.get(f"/v1/scans/{scan_id}{suffix}")
                if scan_id in expected[name]:
                    assert response.status_code == 200, (name, scan_id, suffix)
                else:  # out of scope answers as an unknown scan does
                    assert assert_error(response, 404, "UnknownScan")["message"] == \
                        f"no scan {scan_id!r}; scan ids are returned by POST /v1/scans"
    queue = {f["scan_id"] for f in dock.get("/v1/findings", params={"limit": 200}).json()["findings"]}
    assert queue == {at_dock["scan_id"]}
    assert at_yard["scan_id"] in {f["scan_id"] for f in inspector.get("/v1/findings",
                                                                          params={"limit": 200}).json()["findings"]}
    yard_finding = at_yard["findings"][0]["id"]
    assert_error(dock.post(f"/v1/findings/{yard_finding}/review", json={"decision": "confirm"}), 404,
                 "UnknownFinding")
    dock_finding = at_dock["findings"][0]["id"]
    assert dock.post(f"/v1/findings/{dock_finding}/review", json={"decision": "reject"}).status_code == 201
    assert admin.post(f"/v1/findings/{yard_finding}/review", json={"decision": "reject"}).status_code == 201
    assert {r["scan_id"] for r in dock.get("/v1/reviews").json()["reviews"]} == {at_dock["scan_id"]}
    assert {r["scan_id"] for r in admin.get("/v1/reviews").json()["reviews"]} >= {at_dock["scan_id"],
                                                                                    at_yard["scan_id"]}
    for client in readers.values():
        client.close()


def test_a_rejected_finding_s_thumbnail_is_not_served(server, ppe_photos):
    # That a rescan names the false alarm without its thumbnail: tests/service/test_reviews.py.
    admin = server.client(Role.ADMIN)
    scan, _ = _with_findings(admin, ppe_photos, site="quarry-1")
    finding = scan["findings"][0]
    review = admin.post(f"/v1/findings/{finding['id']}/review", json={"decision": "reject"})
    assert review.status_code == 201, review.text
    case_id = review.json()["case_id"]
    bank = SampleBank(server.home, url=server.database_url)  # type: ignore[attr-defined]
    with bank.database.session() as session:
        rejected = session.scalars(select(Annotation.id).where(Annotation.case_id == case_id,
                                                                Annotation.origin == Origin.REJECTED.value)).all()
    bank.engine.dispose()
    assert rejected
    for annotation in rejected:
        path = thumbnail_path(server.home, annotation)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # as if the index had made one: the route must refuse it all the same
            path.write_bytes(b"\xff\xd8\xff\xd9")
        assert_error(admin.get(f"/v1/cases/{case_id}/thumbnail", params={"annotation": annotation}), 404)

    admin.close()


# -- inspections and rectifications

GREY = cv2.imencode(".jpg", np.full((240, 320, 3), 120, np.uint8))[1].tobytes()
"""A frame that shows no scene: a camera alert (no signal) at once, and an after-photo with no finding."""
DEADLINE = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat()


def _like_unknown(client: httpx.Client, method: str, path: str, real_id: str, error: str, **request: Any) -> None:
    """`path` with `real_id` answers word for word what it answers for an id that does not exist."""
    unknown_id = "0" * len(real_id)
    real = client.request(method, path.format(real_id), **request)
    unknown = client.request(method, path.format(unknown_id), **request)
    assert assert_error(real, 404, error)["message"] == \
        assert_error(unknown, 404, error)["message"].replace(unknown_id, real_id), (method, path)


def test_inspections_and_rectifications_are_read_and_changed_within_the_key_s_scope(server, ppe_photos):
    admin, inspector, admin_dock = server.client(Role.ADMIN), server.client(Role.INSPECTOR), _as(server, "admin-dock")
    dock, dock_2, yard = _as(server, "dock"), _as(server, "dock-2"), _as(server, "yard")
    scan, _ = _with_findings(admin, ppe_photos, site="dock-3")
    finding = scan["findings"][0]["id"]
    assert admin.post(f"/v1/findings/{finding}/review", json={"decision": "confirm"}).status_code == 201
    opened = dock.post("/v1/inspections", json={"site": "dock-3", "scan_ids": [scan["scan_id"]]})
    assert opened.status_code == 201, opened.text
    at_dock = opened.json()["id"]
    elsewhere = dock.post("/v1/inspections", json={"site": "quay-1"}).json()["id"]  # opened by dock: dock reads it
    at_yard = yard.post("/v1/inspections", json={"site": "yard-9"}).json()["id"]

    # out of scope: every read and change answers as for an unknown id
    _like_unknown(yard, "GET", "/v1/inspections/{}", at_dock, "UnknownInspection")
    _like_unknown(yard, "GET", "/v1/inspections/{}/record.pdf", at_dock, "UnknownInspection")
    _like_unknown(yard, "POST", "/v1/inspections/{}/scans", at_dock, "UnknownInspection",
                  json={"scan_ids": [scan["scan_id"]]})
    _like_unknown(dock_2, "GET", "/v1/inspections/{}", elsewhere, "UnknownInspection")
    # a scan out of scope is neither filed nor read through an inspection
    refused = assert_error(yard.post(f"/v1/inspections/{at_yard}/scans", json={"scan_ids": [scan["scan_id"]]}),
                           404, "UnknownScan")["message"]
    unknown = assert_error(yard.post(f"/v1/inspections/{at_yard}/scans", json={"scan_ids": ["0" * 32]}),
                           404, "UnknownScan")["message"]
    assert refused == unknown.replace("0" * 32, scan["scan_id"])
    assert_error(yard.post("/v1/inspections", json={"site": "yard-9", "scan_ids": [scan["scan_id"]]}), 404,
                 "UnknownScan")
    _like_unknown(yard, "POST", "/v1/findings/{}/rectification", finding, "UnknownFinding",
                  json={"responsible": "crew", "deadline": DEADLINE})
    assigned = dock.post(f"/v1/findings/{finding}/rectification", json={"responsible": "crew", "deadline": DEADLINE})
    assert assigned.status_code == 201, assigned.text
    fix = assigned.json()["id"]
    _like_unknown(yard, "GET", "/v1/rectifications/{}", fix, "UnknownRectification")
    _like_unknown(yard, "POST", "/v1/rectifications/{}/close", fix, "UnknownRectification",
                  files={"image": ("after.jpg", GREY)})
    _like_unknown(yard, "POST", "/v1/rectifications/{}/verify", fix, "UnknownRectification", json={"accept": True})

    # in scope: the key's sites, and what it opened
    assert dock_2.get(f"/v1/inspections/{at_dock}").json()["scans"][0]["scan_id"] == scan["scan_id"]
    assert dock.get(f"/v1/inspections/{elsewhere}").status_code == 200
    closed = dock.post(f"/v1/rectifications/{fix}/close", files={"image": ("after.jpg", GREY)})
    assert closed.status_code == 200 and closed.json()["after_passed"] is True, closed.text
    verified = dock_2.post(f"/v1/rectifications/{fix}/verify", json={"accept": True})
    assert verified.status_code == 200 and verified.json()["status"] == "verified", verified.text

    def listed(client: httpx.Client, what: str) -> set[str]:
        response = client.get(f"/v1/{what}", params={"limit": 200})
        assert response.status_code == 200, response.text
        return {row["id"] for row in response.json()[what]}

    visits = {at_dock, elsewhere, at_yard}
    assert listed(dock, "inspections") & visits == {at_dock, elsewhere}
    assert listed(dock_2, "inspections") & visits == {at_dock}
    assert listed(yard, "inspections") & visits == {at_yard}
    assert fix in listed(dock_2, "rectifications") and fix not in listed(yard, "rectifications")
    for everything in (admin, admin_dock, inspector):  # an admin key with sites, an inspector key without
        assert listed(everything, "inspections") >= visits and fix in listed(everything, "rectifications")
        assert everything.get(f"/v1/inspections/{at_dock}").json()["scan_ids"] == [scan["scan_id"]]
        assert everything.get(f"/v1/rectifications/{fix}").status_code == 200
    for client in (admin, inspector, admin_dock, dock, dock_2, yard):
        client.close()


# -- alerts


def test_alerts_and_their_snapshots_are_read_and_acknowledged_within_the_key_s_scope(server):
    pipe, pipe_b = server.client(Role.PIPELINE), _as(server, "pipe-b")
    assert pipe.put("/v1/cameras/scope-a", json={"rule": {"min_frames": 1}}).status_code == 200
    assert pipe.put("/v1/cameras/scope-c", json={"rule": {"min_frames": 1}}).status_code == 200
    owned = send_frame(pipe, "scope-a", GREY, 1).json()["alerts"][0]["alert_id"]  # its camera, its frame
    sent = send_frame(pipe_b, "scope-c", GREY, 1).json()["alerts"][0]["alert_id"]  # pipe-b's frame, pipe's camera
    assert pipe_b.put("/v1/cameras/scope-b", json={"rule": {"min_frames": 1}}).status_code == 200
    deleted = send_frame(pipe_b, "scope-b", GREY, 1).json()["alerts"][0]["alert_id"]
    assert pipe_b.delete("/v1/cameras/scope-b").status_code == 200  # its alert stays pipe-b's: it sent the frame
    ours = {owned, sent, deleted}
    expected = {Role.ADMIN: ours, Role.INSPECTOR: ours, Role.ML: ours, "admin-dock": ours,
                Role.PIPELINE: {owned, sent}, "pipe-b": {sent, deleted},
                "dock": set(), "ml-dock": set(), "pipe-dock": set()}  # alerts have no site
    for name, readable in expected.items():
        client = server.client(name) if isinstance(name, Role) else _as(server, name)
        listed = {a["alert_id"] for a in client.get("/v1/alerts", params={"limit": 1000}).json()["alerts"]}
        assert listed & ours == readable, name
        if ours - readable:  # one of each key's, to keep the test short
            _like_unknown(client, "GET", "/v1/alerts/{}/snapshot", min(ours - readable), "UnknownAlert")
        if readable:
            assert client.get(f"/v1/alerts/{min(readable)}/snapshot").status_code == 200, name
        client.close()
    dock, inspector = _as(server, "dock"), server.client(Role.INSPECTOR)
    _like_unknown(dock, "POST", "/v1/alerts/{}/ack", owned, "UnknownAlert", json={"note": "seen"})
    _like_unknown(dock, "POST", "/v1/alerts/{}/ack", owned, "UnknownAlert", json={"verdict": "true"})
    acked = inspector.post(f"/v1/alerts/{owned}/ack", json={"note": "seen"})
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "test-inspector", acked.text
    for client in (pipe, pipe_b, dock, inspector):
        client.close()


# -- scan_scope=all


def test_scan_scope_all_lets_every_key_read_and_change_every_inspection_rectification_and_alert(
        tmp_path_factory, ppe_photos):
    home = tmp_path_factory.mktemp("scoped-all")
    with live_server(home, scan_scope="all", similar_cases=0) as running:
        bank = SampleBank(home)
        keys = ApiKeys(bank)
        running.keys.update({"dock": keys.create("dock-inspector", Role.INSPECTOR, sites=["dock-3"])[1],
                             "pipe-b": keys.create("pipe-b", Role.PIPELINE)[1]})
        bank.engine.dispose()
        admin, pipe, dock, pipe_b = (running.client(Role.ADMIN), running.client(Role.PIPELINE), _as(running, "dock"),
                                     _as(running, "pipe-b"))
        scan, _ = _with_findings(admin, ppe_photos, site="yard-9")
        finding = scan["findings"][0]["id"]
        assert admin.post(f"/v1/findings/{finding}/review", json={"decision": "confirm"}).status_code == 201
        yard_id = admin.post("/v1/inspections", json={"site": "yard-9", "scan_ids": [scan["scan_id"]]}).json()["id"]
        assert pipe.put("/v1/cameras/all-a", json={"rule": {"min_frames": 1}}).status_code == 200
        alert = send_frame(pipe, "all-a", GREY, 1).json()["alerts"][0]["alert_id"]
        assert dock.get(f"/v1/inspections/{yard_id}").status_code == 200
        assert yard_id in {row["id"] for row in dock.get("/v1/inspections").json()["inspections"]}
        fix = dock.post(f"/v1/findings/{finding}/rectification", json={"responsible": "crew", "deadline": DEADLINE})
        assert fix.status_code == 201, fix.text
        assert fix.json()["id"] in {row["id"] for row in admin.get("/v1/rectifications").json()["rectifications"]}
        assert alert in {a["alert_id"] for a in pipe_b.get("/v1/alerts").json()["alerts"]}
        assert pipe_b.get(f"/v1/alerts/{alert}/snapshot").status_code == 200
        assert dock.post(f"/v1/alerts/{alert}/ack").status_code == 200
        for client in (admin, pipe, dock, pipe_b):
            client.close()


# -- migration 18


def test_migration_18_names_each_alert_s_sender_from_the_audit_log(tmp_path, database_url):
    bank = SampleBank(tmp_path)
    AuditLog(bank.database).append("pipe-7", "alert", "a1", details={"camera_id": "gate-1"})
    with bank.engine.begin() as connection:  # a version 17 bank: alerts without their sender
        connection.execute(text("ALTER TABLE alerts DROP COLUMN actor"))
        for alert_id in ("a1", "a2"):  # a2: no audit record names it
            connection.execute(text(
                "INSERT INTO alerts (id, kind, camera_id, class_name, tracker_id, first_seen, raised_at, frames, x1, "
                "y1, x2, y2, confidence, image_sha256, model_versions, created_at) VALUES (:id, 'hazard', 'gate-1', "
                "'fire', 1, 0, 1, 3, 0, 0, 1, 1, 0.9, 'x', '{}', '2026-01-01')"), {"id": alert_id})
        connection.execute(text("DELETE FROM schema_version WHERE version >= 18"))
    bank.close()
    upgraded = SampleBank(tmp_path)
    assert upgraded.stats().schema_version == LATEST
    with upgraded.engine.begin() as connection:
        assert connection.execute(text("SELECT id, actor FROM alerts ORDER BY id")).all() == [("a1", "pipe-7"),
                                                                                               ("a2", None)]
    upgraded.close()
