"""Cameras with a stream URL, read by the service itself, through a real server: a loopback MJPEG camera of
real site photos raises an alert and a signed webhook, a drop shows `reconnecting` and the reading goes on,
an unreachable stream is reported and retried, and removing the URL or the camera stops the reader."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from hazardvision.access import Role
from hazardvision.bank.bank import SampleBank
from hazardvision.data.service_records import CameraRecord
from hazardvision.data.stream_leases import StreamLeases
from tests.conftest import test_photos
from tests.service.conftest import assert_error, eventually, live_server
from tests.service.test_frames import PPE_HAZARDS, running_receiver
from tests.video.mjpeg import noisy_frames, serving

SECRET = "a-long-shared-secret-for-stream-tests"
STREAM_SETTINGS = {
    "similar_cases": 0,
    "webhooks": {"allowed_networks": ["127.0.0.0/8"]},
    "stream_networks": "127.0.0.0/8",  # the admin's network setting: the test cameras are on loopback
    "stream_lease_seconds": 2,
    "stream_selection": {"fps": 4, "max_gap": 0.5},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory, datasets):
    with live_server(tmp_path_factory.mktemp("streams-home"), **STREAM_SETTINGS) as running:
        yield running


@pytest.fixture(scope="module")
def receiver():
    running = running_receiver()
    yield running
    running.shutdown()


@pytest.fixture(scope="module")
def ppe_photo(server):
    """A real site photo in which the bundled pack finds a missing helmet or vest, clearly."""
    with server.client(Role.INSPECTOR) as inspector:
        for photo in test_photos("ppe-vest")[:30]:
            scan = inspector.post("/v1/scans", files={"image": (photo.name, photo.read_bytes())}).json()
            if any(f["class_name"] in PPE_HAZARDS and f["confidence"] >= 0.5 for f in scan["findings"]):
                return photo
    pytest.fail("no photo among the first 30 of ppe-vest's test split has a clear PPE hazard")


def stream_of(client, camera_id):
    response = client.get(f"/v1/cameras/{camera_id}")
    assert response.status_code == 200, response.text
    return response.json()["stream"]


def test_camera_streams_a_stream_raises_an_alert_and_a_signed_webhook(server, pipeline, receiver, ppe_photo):
    with serving(noisy_frames(ppe_photo, 20), fps=10) as camera:
        url = camera.url_with_credentials("viewer", "stream-password-1")
        put = pipeline.put("/v1/cameras/stream-1", json={
            "stream_url": url, "webhook_url": receiver.url, "webhook_secret": SECRET,
            "rule": {"min_frames": 3, "cooldown_seconds": 600}})
        assert put.status_code == 200, put.text
        assert put.json()["stream_url"] == camera.url and "stream-password-1" not in put.text

        def alerted():
            alerts = pipeline.get("/v1/alerts", params={"camera": "stream-1"}).json()["alerts"]
            return [a for a in alerts if a["class_name"] in PPE_HAZARDS]

        alerts = eventually(alerted, 60)
        assert alerts[0]["hazard"]["code"] and alerts[0]["snapshot_url"]
        # The alert is stored before the reader counts the frame that raised it: the count may lag a moment.
        status = eventually(lambda: (found := stream_of(pipeline, "stream-1"))["frames_analysed"] >= 3 and found)
        assert status["state"] == "live" and status["reader"]
        assert status["frames_read"] >= status["frames_analysed"]
        listed = {c["camera_id"]: c for c in pipeline.get("/v1/cameras").json()["cameras"]}["stream-1"]
        assert listed["stream"]["reader"] == status["reader"] and listed["frames_analysed"] >= 3
        assert "stream-password-1" not in pipeline.get("/v1/cameras").text

        deliveries = eventually(lambda: [d for d in receiver.deliveries
                                         if json.loads(d[1])["alert"]["camera_id"] == "stream-1"], 30)
        headers, body = deliveries[0]
        expected = "sha256=" + hmac.new(SECRET.encode(), f"{headers['x-hazardvision-timestamp']}.".encode() + body,
                                        hashlib.sha256).hexdigest()
        assert hmac.compare_digest(expected, headers["x-hazardvision-signature"])

        # Removing the URL stops the reader: the camera's connection closes, and no new one opens.
        assert pipeline.put("/v1/cameras/stream-1", json={"rule": {"min_frames": 3}}).status_code == 200
        eventually(lambda: camera.open_connections == 0, 15)
        assert stream_of(pipeline, "stream-1") is None
        connections = camera.connections
        time.sleep(1.5)
        assert camera.connections == connections


def test_camera_streams_credentials_are_stored_encrypted(server, pipeline):
    url = "rtsp://admin:cam-secret-99@127.0.0.1:9/stream"
    assert pipeline.put("/v1/cameras/sealed-1", json={"stream_url": url}).status_code == 200
    bank = SampleBank(server.home)
    with bank.database.session() as session:
        row = session.get(CameraRecord, "sealed-1")
        assert row is not None and row.stream_url == "rtsp://127.0.0.1:9/stream"
        assert row.stream_credentials and row.stream_credentials.startswith("fernet:")
        assert "cam-secret-99" not in row.stream_credentials
    bank.close()
    assert pipeline.delete("/v1/cameras/sealed-1").status_code == 200


def test_camera_streams_a_drop_shows_reconnecting_and_the_reading_goes_on(pipeline, ppe_photo):
    with serving(noisy_frames(ppe_photo, 10), per_connection=25, fps=10) as camera:
        assert pipeline.put("/v1/cameras/drop-1", json={"stream_url": camera.url}).status_code == 200
        eventually(lambda: stream_of(pipeline, "drop-1")["state"] == "live", 30)
        reconnecting = eventually(lambda: (s := stream_of(pipeline, "drop-1"))["state"] == "reconnecting" and s, 30)
        assert reconnecting["last_error"]
        analysed = reconnecting["frames_analysed"]

        def going_on():
            status = stream_of(pipeline, "drop-1")
            return status["state"] == "live" and status["frames_analysed"] > analysed and status

        after = eventually(going_on, 30)
        assert camera.connections >= 2 and after["reconnects"] >= 1
        # Deleting the camera stops its reader.
        assert pipeline.delete("/v1/cameras/drop-1").status_code == 200
        eventually(lambda: camera.open_connections == 0, 15)
    listed = {c["camera_id"]: c for c in pipeline.get("/v1/cameras").json()["cameras"]}.get("drop-1")
    assert listed is None or (not listed["configured"] and listed["stream"] is None  # listed for its alerts
                              and listed["frames_analysed"] == 0)


def test_camera_streams_an_unreachable_stream_is_reported_and_retried(server, pipeline):
    assert pipeline.put("/v1/cameras/gone-1", json={"stream_url": "http://127.0.0.1:9/none.mjpg"}).status_code == 200

    def retried():
        status = stream_of(pipeline, "gone-1")
        return status["state"] == "reconnecting" and status["reconnects"] >= 2 and status

    status = eventually(retried, 30)
    assert status["last_error"] and status["next_retry_at"] and status["reader"]
    assert httpx_ready(server)
    assert pipeline.delete("/v1/cameras/gone-1").status_code == 200


def httpx_ready(server) -> bool:
    import httpx

    return httpx.get(f"{server.url}/readyz").status_code == 200


@pytest.mark.parametrize(("url", "reason"), [
    ("file:///etc/passwd", "stream URLs are"),
    ("ftp://127.0.0.1/cam", "stream URLs are"),
    ("http://169.254.169.254/latest", "outside the networks"),
    ("rtsp://10.1.2.3/cam", "outside the networks"),  # not in this service's network setting
    ("http://127.0.0.1:99999/cam", "malformed"),
])
def test_camera_streams_urls_outside_the_allowed_schemes_and_networks_are_refused(pipeline, url, reason):
    body = assert_error(pipeline.put("/v1/cameras/refused-1", json={"stream_url": url}), 422)
    assert reason in body["message"]


def test_camera_streams_the_lease_names_this_process(server, pipeline):
    assert pipeline.put("/v1/cameras/lease-1", json={"stream_url": "http://127.0.0.1:9/x.mjpg"}).status_code == 200
    reader = eventually(lambda: stream_of(pipeline, "lease-1")["reader"], 15)
    bank = SampleBank(server.home)
    leases = StreamLeases(bank.database)
    assert leases.current()["lease-1"].holder == reader
    assert pipeline.delete("/v1/cameras/lease-1").status_code == 200
    eventually(lambda: "lease-1" not in leases.current(), 10)
    bank.close()
