"""Video frames through a real server: a hazard held over many frames alerts once, and the alert reaches a
real webhook receiver with a signature the receiver can check; a receiver's redirect is not followed."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hazardvision.access import Role
from hazardvision.data.audit import AuditLog
from tests.conftest import served_versions, test_photos
from tests.service.conftest import assert_error, find_one_hazard_photo, live_server
from tests.service.conftest import send_frame as send

SECRET = "a-long-shared-secret-for-tests"


class Receiver(ThreadingHTTPServer):
    """A webhook receiver that keeps what it was sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.deliveries: list[tuple[dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/alerts"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
        if self.path.startswith("/redirect/"):  # to the receiver on the port the path names
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{self.path.rsplit('/', 1)[1]}/hooks/alerts")
            self.send_header("Content-Length", "0")
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def running_receiver():
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def receiver():
    server = running_receiver()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory, datasets):
    # The receivers listen on 127.0.0.1, which webhooks reach only where an admin allows it.
    with live_server(tmp_path_factory.mktemp("frames-home"), similar_cases=0,
                     webhooks={"allowed_networks": ["127.0.0.0/8"]}) as running:
        yield running


@pytest.fixture(scope="module")
def one_hazard_photo(server):
    return find_one_hazard_photo(server)


def test_frames_a_held_hazard_raises_exactly_one_alert(pipeline, receiver, one_hazard_photo):
    config = {"webhook_url": receiver.url, "webhook_secret": SECRET,
              "rule": {"min_frames": 3, "cooldown_seconds": 600}}
    put = pipeline.put("/v1/cameras/gate-1", json=config)
    assert put.status_code == 200, put.text
    assert put.json()["webhook_url"] == receiver.url and "webhook_secret" not in put.json()
    alerts = []
    for i in range(12):
        response = send(pipeline, "gate-1", one_hazard_photo, 100 + i * 0.2)
        assert response.status_code == 200, response.text
        alerts += response.json()["alerts"]
        if i == 0:
            assert any(o["is_hazard"] for o in response.json()["objects"])
    assert len(alerts) == 1
    assert alerts[0]["camera_id"] == "gate-1" and alerts[0]["frames"] == 3 and alerts[0]["raised_at"] == 100.4
    listed = pipeline.get("/v1/alerts", params={"camera": "gate-1"}).json()["alerts"]
    assert [a["alert_id"] for a in listed] == [alerts[0]["alert_id"]]
    assert pipeline.get("/v1/alerts", params={"camera": "another"}).json()["alerts"] == []
    assert pipeline.get("/v1/alerts", params={"since": "2100-01-01T00:00:00Z"}).json()["alerts"] == []


def test_frames_alert_webhook_is_signed_for_the_receiver(receiver, pipeline):
    deadline = time.monotonic() + 30
    while not receiver.deliveries and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(receiver.deliveries) == 1
    headers, body = receiver.deliveries[0]
    timestamp = headers["x-hazardvision-timestamp"]
    expected = "sha256=" + hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, headers["x-hazardvision-signature"])
    payload = json.loads(body)
    assert payload["event"] == "alert" and payload["alert"]["camera_id"] == "gate-1"
    assert payload["alert"]["hazard"]["code"] and payload["alert"]["hazard"]["advice"]["zh"]
    assert payload["model_versions"] == served_versions()


def test_frames_out_of_order_is_a_conflict(pipeline, one_hazard_photo):
    assert send(pipeline, "gate-2", one_hazard_photo, 50).status_code == 200
    assert_error(send(pipeline, "gate-2", one_hazard_photo, 49), 409, "InvalidFrame")


def test_frames_need_a_timestamp_and_a_frames_key(server, pipeline, one_hazard_photo):
    missing = pipeline.post("/v1/cameras/gate-3/frames", files={"image": ("f.jpg", one_hazard_photo)})
    assert "timestamp" in assert_error(missing, 422, "ValidationError")["message"]
    raw = pipeline.post("/v1/cameras/gate-3/frames", content=one_hazard_photo,
                        headers={"Content-Type": "image/jpeg"}, params={"timestamp": 1.5})
    assert raw.status_code == 200 and raw.json()["timestamp"] == 1.5
    with server.client(Role.INSPECTOR) as inspector:
        assert_error(send(inspector, "gate-3", one_hazard_photo, 2), 403, "Forbidden")
        assert_error(inspector.put("/v1/cameras/gate-3", json={}), 403, "Forbidden")


def test_frames_camera_settings_are_checked(pipeline):
    assert_error(pipeline.put("/v1/cameras/gate-4", json={"webhook_url": "http://example.test/x"}), 422)
    assert_error(pipeline.put("/v1/cameras/gate-4", json={"webhook_url": "ftp://x/y", "webhook_secret": SECRET}),
                 422)
    assert_error(pipeline.put("/v1/cameras/gate-4", json={"rule": {"classes": ["helmet"]}}), 422, "UnknownClass")
    assert pipeline.get("/v1/cameras/gate-4").json()["configured"] is False


def test_frames_every_alert_is_audited(server):
    log = AuditLog.at(server.home)
    assert log.verify() == []
    alerts = log.records(action="alert")
    assert len(alerts) == 1
    assert alerts[0].actor == "test-pipeline" and alerts[0].input_sha256 and alerts[0].model_versions
    assert [r.subject for r in log.records(action="camera.configure")] == ["gate-1"]


PPE_HAZARDS = {"no_helmet", "no_vest"}


def jpeg(pixels) -> bytes:
    import cv2

    return cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


def with_noise(data: bytes, seed: int) -> bytes:
    """The photo as one more camera frame: a little sensor noise, so that no two frames are the same."""
    import cv2
    import numpy as np

    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    noise = np.random.default_rng(seed).normal(0, 2.0, pixels.shape)
    return jpeg(np.clip(pixels + noise, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def ppe_photos(server):
    """The first five real PPE test photos whose photo scan reports at least two missing helmets or vests."""
    chosen = []
    with server.client(Role.INSPECTOR) as inspector:
        for photo in test_photos("ppe-vest") + test_photos("hardhat-head"):
            scan = inspector.post("/v1/scans", files={"image": (photo.name, photo.read_bytes())}).json()
            hazards = [f for f in scan["findings"] if f["class_name"] in PPE_HAZARDS]
            if len(hazards) >= 2:
                chosen.append((photo, len(hazards)))
            if len(chosen) == 5:
                return chosen
    pytest.fail(f"only {len(chosen)} PPE test photos with two PPE hazards or more: the pack finds too few")


def test_frames_every_ppe_hazard_a_photo_scan_reports_alerts_once(pipeline, ppe_photos):
    for number, (photo, expected) in enumerate(ppe_photos):
        camera = f"ppe-{number}"
        assert pipeline.put(f"/v1/cameras/{camera}", json={"rule": {"min_frames": 5}}).status_code == 200
        alerts = []
        for i in range(10):
            response = send(pipeline, camera, with_noise(photo.read_bytes(), i), 10 + i * 0.5)
            assert response.status_code == 200, response.text
            assert response.json()["frame_quality"]["status"] == "ok"
            alerts += [a for a in response.json()["alerts"] if a["class_name"] in PPE_HAZARDS]
        assert len(alerts) == expected, (photo.name, [a["class_name"] for a in alerts])
        assert all(a["kind"] == "hazard" for a in alerts)


def test_frames_a_frozen_picture_raises_one_camera_alert_and_no_repeated_hazard_alert(pipeline, ppe_photos):
    photo, hazards = ppe_photos[0]
    data = photo.read_bytes()
    alerts, statuses = [], []
    for i in range(30):
        response = send(pipeline, "frozen-1", data, 1000 + i)
        assert response.status_code == 200, response.text
        alerts += response.json()["alerts"]
        statuses.append(response.json()["frame_quality"]["status"])
    camera = [a for a in alerts if a["kind"] == "camera"]
    assert [a["class_name"] for a in camera] == ["frozen"]
    hazard_alerts = [a for a in alerts if a["kind"] == "hazard"]
    assert len(hazard_alerts) <= hazards + 2  # each hazard at most once, while the picture still counted as live
    assert len({(a["class_name"], a["tracker_id"]) for a in hazard_alerts}) == len(hazard_alerts)
    assert statuses[:10] == ["ok"] * 10 and set(statuses[10:]) == {"frozen"}
    listed = pipeline.get("/v1/alerts", params={"camera": "frozen-1"}).json()["alerts"]
    assert sum(a["kind"] == "camera" for a in listed) == 1


def test_frames_without_a_picture_alert_as_the_camera_not_as_hazards(pipeline):
    import numpy as np

    grey = jpeg(np.full((360, 640, 3), 120, np.uint8))
    alerts = []
    for i in range(8):
        response = send(pipeline, "covered-1", grey, 50 + i)
        assert response.status_code == 200 and response.json()["objects"] == []
        assert response.json()["frame_quality"]["status"] == "no_signal"
        alerts += response.json()["alerts"]
    assert [(a["kind"], a["class_name"]) for a in alerts] == [("camera", "no_signal")]


def webhook_metrics(server):
    with server.client(Role.ADMIN) as admin:
        return [line for line in admin.get("/metrics").text.splitlines() if line.startswith("hazardvision_webhook")]


def test_frames_a_receivers_redirect_is_not_followed(server, pipeline, one_hazard_photo):
    allowed, elsewhere = running_receiver(), running_receiver()
    try:
        url = f"http://127.0.0.1:{allowed.server_address[1]}/redirect/{elsewhere.server_address[1]}"
        config = {"webhook_url": url, "webhook_secret": SECRET, "rule": {"min_frames": 2, "cooldown_seconds": 600}}
        assert pipeline.put("/v1/cameras/redirected-1", json=config).status_code == 200
        failed_before = next(line for line in webhook_metrics(server) if 'status="failed"' in line)
        alerts = []
        for i in range(6):
            alerts += send(pipeline, "redirected-1", one_hazard_photo, 10 + i).json()["alerts"]
        assert len(alerts) == 1
        deadline = time.monotonic() + 30
        while not allowed.deliveries and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # what a followed redirect would take
        assert len(allowed.deliveries) == 1 and elsewhere.deliveries == []
        failed = next(line for line in webhook_metrics(server) if 'status="failed"' in line)
        assert float(failed.split()[-1]) == float(failed_before.split()[-1]) + 1
    finally:
        allowed.shutdown()
        elsewhere.shutdown()


def test_frames_webhook_metrics_name_no_delivery_target(server, receiver):
    lines = webhook_metrics(server)
    assert {line.split("{")[0].split(" ")[0] for line in lines} == {
        "hazardvision_webhook_deliveries_total", "hazardvision_webhook_retries_total", "hazardvision_webhook_pending"}
    port = str(receiver.server_address[1])
    assert [line for line in lines if "127.0.0.1" in line or port in line or "url" in line or "host" in line] == []
    labels = {line.partition("{")[2].partition("}")[0] for line in lines if "{" in line}
    assert labels == {f'status="{status}"' for status in ("delivered", "failed", "dropped", "refused")}
