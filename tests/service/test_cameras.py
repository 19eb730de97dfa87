"""Cameras and their alerts through a real server: the camera list, a reset that lets a restarted pipeline go on,
timestamps that cannot break a camera, alerts with their hazard details, acknowledgements and snapshots; webhook
URLs to internal addresses or with credentials refused; a camera changed only by the key that made it or an admin."""

from __future__ import annotations

import cv2
import httpx
import numpy as np
import pytest
from sqlalchemy import text

from hazardvision.access import ApiKeys, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.catalogue import load_catalogue
from hazardvision.data.audit import AuditLog
from tests.service.conftest import assert_error, find_one_hazard_photo, live_server, send_frame

SECRET = "a-long-shared-secret-for-tests"


@pytest.fixture(scope="module")
def server(tmp_path_factory, datasets):
    with live_server(tmp_path_factory.mktemp("cameras-home"), similar_cases=0) as running:
        yield running


@pytest.fixture(scope="module")
def hazard_photo(server):
    return find_one_hazard_photo(server)


@pytest.fixture(scope="module")
def hazard_alert(pipeline, hazard_photo):
    """The alert a held hazard raised on camera 'alerting-1', and the bytes of the frame that raised it."""
    assert pipeline.put("/v1/cameras/alerting-1", json={"rule": {"min_frames": 3}}).status_code == 200
    for i in range(4):
        response = send_frame(pipeline, "alerting-1", hazard_photo, 10 + i)
        assert response.status_code == 200, response.text
        if response.json()["alerts"]:
            return response.json()["alerts"][0]
    pytest.fail("the held hazard raised no alert")


def grey_frame(extension: str) -> bytes:
    return cv2.imencode(extension, np.full((240, 320, 3), 120, np.uint8))[1].tobytes()


def camera(client, camera_id):
    found = [c for c in client.get("/v1/cameras").json()["cameras"] if c["camera_id"] == camera_id]
    assert len(found) == 1, camera_id
    return found[0]


# -- GET /v1/cameras


def test_cameras_list_shows_settings_without_credentials_or_secret(pipeline, inspector):
    # ops.example does not resolve here: accepted now, resolved and checked at each delivery.
    config = {"webhook_url": "https://ops.example:8443/hooks?site=3", "webhook_secret": SECRET,
              "rule": {"min_frames": 4}, "tiling": "off"}
    put = pipeline.put("/v1/cameras/listed-1", json=config)
    assert put.status_code == 200, put.text
    response = inspector.get("/v1/cameras")  # whoever may read alerts
    assert response.status_code == 200, response.text
    assert SECRET not in response.text
    listed = camera(inspector, "listed-1")
    assert listed["webhook_url"] == "https://ops.example:8443/hooks?site=3" and listed["webhook"] is True
    assert (listed["configured"], listed["rule"]["min_frames"], listed["tiling"]) == (True, 4, "off")
    assert (listed["frames_analysed"], listed["last_frame_at"], listed["open_tracks"]) == (0, None, 0)
    assert pipeline.get("/v1/cameras/listed-1").json()["webhook_url"] == "https://ops.example:8443/hooks?site=3"


def test_cameras_list_counts_the_frames_and_tracks_of_a_camera_never_configured(pipeline, inspector, hazard_photo):
    for i in range(3):
        assert send_frame(pipeline, "seen-1", hazard_photo, 20 + i).status_code == 200
    seen = camera(inspector, "seen-1")
    assert (seen["configured"], seen["webhook"], seen["webhook_url"]) == (False, False, None)
    assert (seen["frames_analysed"], seen["last_timestamp"], seen["frame_status"]) == (3, 22, "ok")
    assert seen["last_frame_at"] is not None and seen["open_tracks"] >= 1


def test_cameras_list_needs_a_key(server):
    with server.client(None) as anonymous:
        assert_error(anonymous.get("/v1/cameras"), 401, "Unauthenticated")


# -- POST /v1/cameras/{id}/reset


def test_cameras_reset_lets_a_restarted_pipeline_go_on(server, pipeline, inspector, hazard_photo):
    for i in range(3):
        assert send_frame(pipeline, "restarted-1", hazard_photo, 500 + i).status_code == 200
    assert_error(send_frame(pipeline, "restarted-1", hazard_photo, 1), 409, "InvalidFrame")  # the restarted one
    assert camera(inspector, "restarted-1")["frames_analysed"] == 3  # the refused frame changed nothing

    reset = pipeline.post("/v1/cameras/restarted-1/reset")
    assert reset.status_code == 200, reset.text
    assert reset.json()["frames_analysed"] == 3 and reset.json()["last_timestamp"] == 502
    assert reset.json()["dropped_tracks"] >= 1
    going_on = send_frame(pipeline, "restarted-1", hazard_photo, 1)
    assert going_on.status_code == 200, going_on.text
    listed = camera(inspector, "restarted-1")
    assert (listed["frames_analysed"], listed["last_timestamp"]) == (1, 1)

    records = AuditLog.at(server.home).records(action="camera.reset")
    assert [(r.actor, r.subject, r.details["frames_analysed"]) for r in records] == [
        ("test-pipeline", "restarted-1", 3)]


def test_cameras_reset_keeps_the_settings_of_a_configured_camera(pipeline):
    assert pipeline.put("/v1/cameras/kept-1", json={"rule": {"min_frames": 7}}).status_code == 200
    reset = pipeline.post("/v1/cameras/kept-1/reset")  # configured, but never sent a frame here
    assert reset.status_code == 200 and reset.json()["dropped_tracks"] == 0
    assert pipeline.get("/v1/cameras/kept-1").json()["rule"]["min_frames"] == 7


def test_cameras_reset_of_an_unknown_camera_is_404(pipeline):
    body = assert_error(pipeline.post("/v1/cameras/never-seen/reset"), 404, "UnknownCamera")
    assert "never-seen" in body["message"] and "GET /v1/cameras" in body["message"]


def test_cameras_reset_needs_a_key_that_configures_cameras(inspector):
    assert_error(inspector.post("/v1/cameras/seen-1/reset"), 403, "Forbidden")


# -- frame timestamps


@pytest.mark.parametrize("timestamp", ["1e308", "inf", "-inf", "nan", "-0.5", "4102444800.5"])
def test_cameras_an_impossible_timestamp_is_refused_and_changes_nothing(pipeline, inspector, hazard_photo, timestamp):
    camera_id = f"clock-{timestamp}"
    assert send_frame(pipeline, camera_id, hazard_photo, 5).status_code == 200
    body = assert_error(send_frame(pipeline, camera_id, hazard_photo, timestamp), 422, "ValidationError")
    assert "timestamp" in body["message"] and "0 to 4102444800" in body["message"]
    raw = pipeline.post(f"/v1/cameras/{camera_id}/frames", content=hazard_photo,
                        headers={"Content-Type": "image/jpeg"}, params={"timestamp": timestamp})
    assert "0 to 4102444800" in assert_error(raw, 422, "ValidationError")["message"]
    assert send_frame(pipeline, camera_id, hazard_photo, 6).status_code == 200  # the camera goes on
    listed = camera(inspector, camera_id)
    assert (listed["frames_analysed"], listed["last_timestamp"]) == (2, 6)


def test_cameras_unix_time_and_the_range_edges_are_valid_timestamps(pipeline, hazard_photo):
    for timestamp in (0, 1_764_600_000.25, 4_102_444_800):
        response = send_frame(pipeline, "clock-edges", hazard_photo, timestamp)
        assert response.status_code == 200 and response.json()["timestamp"] == timestamp


def test_cameras_openapi_documents_the_timestamp_range(server):
    with server.client(None) as anonymous:
        spec = anonymous.get("/openapi.json").json()
    frames = spec["paths"]["/v1/cameras/{camera_id}/frames"]["post"]
    [query] = [p for p in frames["parameters"] if p["name"] == "timestamp"]
    form = frames["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["timestamp"]
    assert "0 to 4102444800" in query["description"] and "0 to 4102444800" in form["description"]


# -- alerts: hazard details, acknowledgements, snapshots


def test_cameras_alerts_carry_the_catalogue_hazard_details(pipeline, hazard_alert):
    entry = load_catalogue().entry(hazard_alert["class_name"])
    hazard = hazard_alert["hazard"]
    assert (hazard["code"], hazard["severity"], hazard["name"]) == (entry.code, entry.severity.value,
                                                                    entry.name.model_dump())
    assert hazard["rules"] and hazard["rules"][0]["ref"] == entry.rules[0].ref
    assert entry.advice is not None and hazard["advice"] == entry.advice.model_dump()
    assert hazard_alert["camera_trouble"] is None
    listed = pipeline.get("/v1/alerts", params={"camera": "alerting-1"}).json()["alerts"]
    assert [a["hazard"] for a in listed] == [hazard]
    assert listed[0]["acknowledged"] is False and listed[0]["acknowledged_by"] is None


def test_cameras_camera_alerts_say_what_is_wrong_with_the_picture(pipeline):
    assert pipeline.put("/v1/cameras/covered-2", json={"rule": {"min_frames": 2}}).status_code == 200
    alerts = []
    for i in range(3):
        response = send_frame(pipeline, "covered-2", grey_frame(".png"), 30 + i)
        assert response.status_code == 200, response.text
        alerts += response.json()["alerts"]
    assert len(alerts) == 1 and alerts[0]["kind"] == "camera" and alerts[0]["hazard"] is None
    assert alerts[0]["camera_trouble"]["status"] == "no_signal"
    assert "no picture reaches the camera" in alerts[0]["camera_trouble"]["meaning"]
    snapshot = pipeline.get(alerts[0]["snapshot_url"])  # sent as PNG, answered as JPEG
    assert snapshot.status_code == 200 and snapshot.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(snapshot.content, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)


def test_cameras_snapshot_is_the_frame_that_raised_the_alert(inspector, hazard_alert, hazard_photo):
    response = inspector.get(f"/v1/alerts/{hazard_alert['alert_id']}/snapshot")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.content == hazard_photo  # a JPEG frame is kept as sent
    assert hazard_alert["snapshot_url"] == f"/v1/alerts/{hazard_alert['alert_id']}/snapshot"


def test_cameras_snapshot_of_an_unknown_alert_is_404(inspector):
    assert "GET /v1/alerts" in assert_error(inspector.get("/v1/alerts/0123abcd/snapshot"), 404,
                                            "UnknownAlert")["message"]


def test_cameras_acknowledging_an_alert_records_who_and_when_once(server, pipeline, inspector, hazard_alert):
    alert_id = hazard_alert["alert_id"]
    assert_error(pipeline.post(f"/v1/alerts/{alert_id}/ack", json={}), 403, "Forbidden")
    acked = inspector.post(f"/v1/alerts/{alert_id}/ack", json={"note": "helmet handed out"})
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert (body["acknowledged"], body["acknowledged_by"], body["ack_note"]) == (True, "test-inspector",
                                                                                  "helmet handed out")
    assert body["acknowledged_at"] is not None and body["hazard"] == hazard_alert["hazard"]

    again = assert_error(inspector.post(f"/v1/alerts/{alert_id}/ack"), 409, "AlertConflict")
    assert "test-inspector" in again["message"]
    acknowledged = pipeline.get("/v1/alerts", params={"acknowledged": "true"}).json()["alerts"]
    assert alert_id in [a["alert_id"] for a in acknowledged]
    assert alert_id not in [a["alert_id"] for a in pipeline.get("/v1/alerts",
                                                                 params={"acknowledged": "false"}).json()["alerts"]]
    records = AuditLog.at(server.home).records(action="alert.ack")
    assert [(r.actor, r.subject, r.details["note"]) for r in records] == [
        ("test-inspector", alert_id, "helmet handed out")]


def test_cameras_acknowledging_without_a_note_or_an_unknown_alert(inspector, pipeline):
    assert pipeline.put("/v1/cameras/covered-3", json={"rule": {"min_frames": 1}}).status_code == 200
    alert = send_frame(pipeline, "covered-3", grey_frame(".jpg"), 1).json()["alerts"][0]
    acked = inspector.post(f"/v1/alerts/{alert['alert_id']}/ack")
    assert acked.status_code == 200 and acked.json()["ack_note"] is None
    body = assert_error(inspector.post("/v1/alerts/no-such-alert/ack", json={"note": "x"}), 404, "UnknownAlert")
    assert "no-such-alert" in body["message"]
    assert_error(inspector.post(f"/v1/alerts/{alert['alert_id']}/ack", json={"note": "x" * 4001}), 422)


# -- webhook URLs: only public addresses by default, no credentials


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://10.20.30.40/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::1]:9000/hook", "loopback"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "private"),
    ("http://localhost:8000/hook", "loopback"),  # a name that resolves to loopback
    ("https://ops:hunter2@ops.example/hook", "credentials"),
])
def test_cameras_webhook_urls_to_internal_addresses_or_with_credentials_are_refused(server, pipeline, url, reason):
    body = assert_error(pipeline.put("/v1/cameras/probe-1", json={"webhook_url": url, "webhook_secret": SECRET}),
                        422, "InvalidWebhook")
    assert reason in body["message"] and "hunter2" not in body["message"]
    assert pipeline.get("/v1/cameras/probe-1").json()["configured"] is False
    assert "hunter2" not in pipeline.get("/v1/cameras").text


def test_cameras_webhook_secret_is_stored_encrypted(server, pipeline):
    config = {"webhook_url": "https://hooks.example/alerts", "webhook_secret": SECRET}
    assert pipeline.put("/v1/cameras/sealed-1", json=config).status_code == 200
    bank = SampleBank(server.home)
    with bank.engine.connect() as connection:
        stored = connection.execute(text("SELECT webhook_secret FROM cameras WHERE id = 'sealed-1'")).scalar_one()
    bank.engine.dispose()
    assert stored.startswith("fernet:") and SECRET not in stored
    key = server.home / "keys" / "webhook.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_cameras_changes_are_audited_with_the_url_and_owner(server, pipeline):
    config = {"webhook_url": "https://hooks.example:8443/alerts?site=3", "webhook_secret": SECRET}
    assert pipeline.put("/v1/cameras/audited-1", json=config).status_code == 200
    [record] = [r for r in AuditLog.at(server.home).records(action="camera.configure") if r.subject == "audited-1"]
    assert record.details["webhook_url"] == "https://hooks.example:8443/alerts?site=3"
    assert record.details["owner"] == "test-pipeline" and SECRET not in str(record.details)


# -- owners: the key that configured a camera first, or an admin, changes it


@pytest.fixture(scope="module")
def other_pipeline(server):
    bank = SampleBank(server.home)
    _record, key = ApiKeys(bank).create("other-pipeline", Role.PIPELINE)
    bank.engine.dispose()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
        yield client


def test_cameras_another_pipeline_cannot_reconfigure_or_reset_a_camera_it_did_not_create(
        pipeline, other_pipeline, server, hazard_photo):
    config = {"webhook_url": "https://hooks.example/a", "webhook_secret": SECRET, "rule": {"min_frames": 3}}
    assert pipeline.put("/v1/cameras/owned-1", json=config).status_code == 200
    assert send_frame(pipeline, "owned-1", hazard_photo, 1).status_code == 200
    hijack = {"webhook_url": "https://attacker.example/steal", "webhook_secret": SECRET}
    body = assert_error(other_pipeline.put("/v1/cameras/owned-1", json=hijack), 403, "Forbidden")
    assert "test-pipeline" in body["message"]
    assert_error(other_pipeline.post("/v1/cameras/owned-1/reset"), 403, "Forbidden")
    kept = pipeline.get("/v1/cameras/owned-1").json()
    assert kept["webhook_url"] == "https://hooks.example/a" and kept["rule"]["min_frames"] == 3
    assert camera(pipeline, "owned-1")["frames_analysed"] == 1  # not reset

    assert pipeline.put("/v1/cameras/owned-1", json={"rule": {"min_frames": 4}}).status_code == 200  # its owner
    with server.client(Role.ADMIN) as admin:
        assert admin.put("/v1/cameras/owned-1", json={"rule": {"min_frames": 5}}).status_code == 200
        assert admin.post("/v1/cameras/owned-1/reset").status_code == 200
    assert other_pipeline.put("/v1/cameras/other-1", json={}).status_code == 200  # its own camera
    assert_error(pipeline.put("/v1/cameras/other-1", json={}), 403, "Forbidden")


def test_cameras_another_pipeline_neither_lists_nor_reads_a_camera_it_does_not_own(
        pipeline, other_pipeline, server, inspector):
    assert pipeline.put("/v1/cameras/private-1", json={"webhook_url": "https://hooks.example/private",
                                                       "webhook_secret": SECRET}).status_code == 200
    assert send_frame(other_pipeline, "unclaimed-1", grey_frame(".jpg"), 1).status_code == 200
    listed = camera_ids(other_pipeline)
    assert "private-1" not in listed and "unclaimed-1" in listed  # nobody owns an unconfigured camera
    body = assert_error(other_pipeline.get("/v1/cameras/private-1"), 403, "Forbidden")
    assert "test-pipeline" in body["message"] and "hooks.example" not in body["message"]
    assert {"private-1", "unclaimed-1"} <= camera_ids(pipeline)
    assert pipeline.get("/v1/cameras/private-1").json()["webhook_url"] == "https://hooks.example/private"
    with server.client(Role.ADMIN) as admin:
        assert admin.get("/v1/cameras/private-1").status_code == 200
        assert "private-1" in camera_ids(admin)
    assert "private-1" in camera_ids(inspector)  # an inspector key without sites reads every camera


def camera_ids(client):
    return {entry["camera_id"] for entry in client.get("/v1/cameras").json()["cameras"]}


def test_cameras_configured_before_owners_are_changed_by_an_admin_only(server, pipeline):
    assert pipeline.put("/v1/cameras/legacy-1", json={}).status_code == 200
    bank = SampleBank(server.home)
    with bank.engine.begin() as connection:  # as a camera configured before migration 11
        connection.execute(text("UPDATE cameras SET owner = NULL WHERE id = 'legacy-1'"))
    bank.engine.dispose()
    body = assert_error(pipeline.put("/v1/cameras/legacy-1", json={}), 403, "Forbidden")
    assert "admin" in body["message"]
    assert_error(pipeline.post("/v1/cameras/legacy-1/reset"), 403, "Forbidden")
    with server.client(Role.ADMIN) as admin:
        assert admin.put("/v1/cameras/legacy-1", json={"rule": {"min_frames": 2}}).status_code == 200


# -- verdicts: an alert marked true or false, and alerts listed by filters


def camera_alert(pipeline, camera_id, timestamp=1.0):
    """A camera alert (no signal) raised at once on a grey frame: quick, and needs no model to find anything."""
    assert pipeline.put(f"/v1/cameras/{camera_id}", json={"rule": {"min_frames": 1}}).status_code == 200
    return send_frame(pipeline, camera_id, grey_frame(".jpg"), timestamp).json()["alerts"][0]


def test_cameras_an_alert_marked_false_keeps_who_when_and_why_and_is_audited(server, pipeline, inspector):
    alert = camera_alert(pipeline, "false-1")
    body = assert_error(inspector.post(f"/v1/alerts/{alert['alert_id']}/ack", json={"verdict": "false"}), 422)
    assert "note" in str(body)
    marked = inspector.post(f"/v1/alerts/{alert['alert_id']}/ack",
                            json={"verdict": "false", "note": "lens cap left on during maintenance"})
    assert marked.status_code == 200, marked.text
    view = marked.json()
    assert (view["verdict"], view["verdict_by"], view["verdict_note"]) == (
        "false", "test-inspector", "lens cap left on during maintenance")
    assert view["verdict_at"] is not None and view["acknowledged"] and view["acknowledged_by"] == "test-inspector"
    again = assert_error(inspector.post(f"/v1/alerts/{alert['alert_id']}/ack", json={"verdict": "true"}), 409,
                         "AlertConflict")
    assert "verdict" in again["message"]
    [record] = [r for r in AuditLog.at(server.home).records(action="alert.verdict") if r.subject == alert["alert_id"]]
    assert record.actor == "test-inspector"
    assert (record.details["verdict"], record.details["note"], record.details["acknowledged_now"]) == (
        "false", "lens cap left on during maintenance", True)


def test_cameras_an_acknowledged_alert_may_get_a_verdict_once_later(inspector, pipeline):
    alert = camera_alert(pipeline, "false-2")
    assert inspector.post(f"/v1/alerts/{alert['alert_id']}/ack", json={"note": "looking"}).status_code == 200
    assert inspector.post(f"/v1/alerts/{alert['alert_id']}/ack").status_code == 409  # as before: final
    judged = inspector.post(f"/v1/alerts/{alert['alert_id']}/ack", json={"verdict": "true"})
    assert judged.status_code == 200, judged.text
    assert (judged.json()["verdict"], judged.json()["ack_note"], judged.json()["verdict_note"]) == ("true", "looking",
                                                                                                    None)


def test_cameras_alerts_are_listed_by_kind_class_hazard_verdict_and_time(pipeline, inspector, hazard_alert):
    alert = camera_alert(pipeline, "filtered-1")
    ids = {a["alert_id"] for a in pipeline.get("/v1/alerts", params={"camera": "filtered-1"}).json()["alerts"]}
    assert ids == {alert["alert_id"]}

    def listed(**params):
        return {a["alert_id"] for a in pipeline.get("/v1/alerts", params={"limit": 1000, **params}).json()["alerts"]}

    assert alert["alert_id"] in listed(kind="camera") and alert["alert_id"] not in listed(kind="hazard")
    assert hazard_alert["alert_id"] in listed(kind="hazard")
    assert alert["alert_id"] in listed(class_name="no_signal")
    code, class_name = hazard_alert["hazard"]["code"], hazard_alert["class_name"]
    assert hazard_alert["alert_id"] in listed(hazard=code) and hazard_alert["alert_id"] in listed(
        class_name=class_name, hazard=code)
    assert alert["alert_id"] not in listed(hazard=code) and listed(hazard="NO-SUCH-CODE") == set()
    assert alert["alert_id"] in listed(verdict="none")
    assert inspector.post(f"/v1/alerts/{alert['alert_id']}/ack", json={"verdict": "false", "note": "test card"}
                          ).status_code == 200
    assert alert["alert_id"] in listed(verdict="false") and alert["alert_id"] not in listed(verdict="none")
    assert alert["alert_id"] not in listed(verdict="true")
    assert listed(until="2000-01-01T00:00:00Z") == set()
    assert alert["alert_id"] in listed(since="2000-01-01T00:00:00Z", until="2100-01-01T00:00:00Z")
    assert_error(pipeline.get("/v1/alerts", params={"verdict": "maybe"}), 422, "ValidationError")
    assert_error(pipeline.get("/v1/alerts", params={"kind": "other"}), 422, "ValidationError")


# -- DELETE /v1/cameras/{camera_id}


def test_cameras_deleting_a_camera_removes_its_settings_and_tracks_and_keeps_its_alerts(
        server, pipeline, inspector, hazard_photo):
    alert = camera_alert(pipeline, "deleted-1")
    config = {"webhook_url": "https://hooks.example/d", "webhook_secret": SECRET, "rule": {"min_frames": 1}}
    assert pipeline.put("/v1/cameras/deleted-1", json=config).status_code == 200
    assert send_frame(pipeline, "deleted-1", hazard_photo, 5).status_code == 200
    assert_error(inspector.delete("/v1/cameras/deleted-1"), 403, "Forbidden")
    deleted = pipeline.delete("/v1/cameras/deleted-1")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["configured"] is True and deleted.json()["alerts_kept"] >= 1
    view = pipeline.get("/v1/cameras/deleted-1").json()
    assert view["configured"] is False and view["webhook_url"] is None
    status = camera(pipeline, "deleted-1")  # listed still, for its alerts, but with nothing in memory
    assert (status["configured"], status["frames_analysed"], status["last_timestamp"]) == (False, 0, None)
    assert alert["alert_id"] in {a["alert_id"] for a in pipeline.get("/v1/alerts", params={"camera": "deleted-1"})
                                 .json()["alerts"]}
    assert inspector.get(f"/v1/alerts/{alert['alert_id']}/snapshot").status_code == 200
    assert send_frame(pipeline, "deleted-1", hazard_photo, 1).status_code == 200  # starts afresh: no 409
    [record] = [r for r in AuditLog.at(server.home).records(action="camera.delete") if r.subject == "deleted-1"]
    assert record.actor == "test-pipeline" and record.details["webhook_url"] == "https://hooks.example/d"
    assert record.details["owner"] == "test-pipeline" and SECRET not in str(record.details)


def test_cameras_deleting_is_for_the_owner_or_an_admin_and_404_for_an_unknown_camera(
        server, pipeline, other_pipeline):
    assert pipeline.put("/v1/cameras/deleted-2", json={}).status_code == 200
    assert_error(other_pipeline.delete("/v1/cameras/deleted-2"), 403, "Forbidden")
    assert pipeline.get("/v1/cameras/deleted-2").json()["configured"] is True
    with server.client(Role.ADMIN) as admin:
        assert admin.delete("/v1/cameras/deleted-2").status_code == 200
    body = assert_error(pipeline.delete("/v1/cameras/never-seen-9"), 404, "UnknownCamera")
    assert "GET /v1/cameras" in body["message"]
