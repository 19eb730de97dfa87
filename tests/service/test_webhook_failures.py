"""Failed webhook deliveries through a real server: a delivery that gives up is stored with its camera, alert,
target (no credentials or query), attempts and last error; listed for an admin and the camera's owner; redelivered
once, signed as a first delivery under the same delivery id, and marked delivered or given the new error; audited."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import httpx
import numpy as np
import pytest

from hazardvision.access import ApiKeys, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit import AuditLog
from hazardvision.video.webhooks import verify_signature
from tests.service.conftest import assert_error, live_server, send_frame

SECRET = "a-long-shared-secret-for-tests"


class Receiver(ThreadingHTTPServer):
    """A webhook receiver that answers 503 while `failing`, and keeps what it was sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.failing = True

    def url(self, path: str = "/hooks/alerts") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(503 if self.server.failing else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def receiver():
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Two quick attempts per delivery; the receiver listens on 127.0.0.1, which an admin must allow.
    with live_server(tmp_path_factory.mktemp("webhook-failures-home"), similar_cases=0,
                     webhooks={"allowed_networks": ["127.0.0.0/8"], "max_attempts": 2, "base_delay_seconds": 0.05,
                               "timeout_seconds": 2}) as running:
        yield running


@pytest.fixture(scope="module")
def other_pipeline(server):
    bank = SampleBank(server.home)
    _record, key = ApiKeys(bank).create("other-pipeline", Role.PIPELINE)
    bank.engine.dispose()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
        yield client


def grey_frame() -> bytes:
    return cv2.imencode(".jpg", np.full((240, 320, 3), 120, np.uint8))[1].tobytes()


def failed_alert(pipeline, receiver, camera_id):
    """Configure `camera_id` with the (failing) receiver, raise a camera alert, and wait for its failure."""
    config = {"webhook_url": receiver.url("/hooks/alerts?token=abc"), "webhook_secret": SECRET,
              "rule": {"min_frames": 1}}
    assert pipeline.put(f"/v1/cameras/{camera_id}", json=config).status_code == 200
    alert = send_frame(pipeline, camera_id, grey_frame(), 1).json()["alerts"][0]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = pipeline.get("/v1/webhooks/failures", params={"camera": camera_id}).json()["failures"]
        if found:
            return alert, found[0]
        time.sleep(0.1)
    pytest.fail(f"no failed delivery of camera {camera_id} was listed")


def test_webhook_failures_a_delivery_that_gives_up_is_stored_and_listed(server, pipeline, receiver):
    alert, failure = failed_alert(pipeline, receiver, "hooked-1")
    assert failure["alert_id"] == alert["alert_id"] and failure["camera_id"] == "hooked-1"
    assert (failure["status"], failure["attempts"], failure["http_status"]) == ("failed", 2, 503)
    assert "503" in failure["last_error"] and failure["delivered_at"] is None and failure["redeliveries"] == 0
    assert failure["url"] == receiver.url("/hooks/alerts")  # no query: it may carry a token
    sent = [headers for headers, _ in receiver.deliveries
            if headers["x-hazardvision-delivery"] == failure["delivery_id"]]
    assert len(sent) == 2
    with server.client(Role.ADMIN) as admin:
        assert failure["failure_id"] in {f["failure_id"] for f in admin.get("/v1/webhooks/failures").json()["failures"]}
        assert admin.get("/v1/webhooks/failures", params={"status": "delivered", "camera": "hooked-1"}
                         ).json()["failures"] == []


def test_webhook_failures_are_redelivered_signed_under_the_same_delivery_id(server, pipeline, receiver):
    alert, failure = failed_alert(pipeline, receiver, "hooked-2")
    url = f"/v1/webhooks/failures/{failure['failure_id']}/redeliver"
    still = pipeline.post(url)  # the receiver still fails: the new failure is recorded
    assert still.status_code == 200, still.text
    assert (still.json()["status"], still.json()["attempts"], still.json()["redeliveries"]) == ("failed", 3, 1)
    receiver.failing = False
    try:
        before = len(receiver.deliveries)
        done = pipeline.post(url)
        assert done.status_code == 200, done.text
    finally:
        receiver.failing = True
    view = done.json()
    assert (view["status"], view["http_status"], view["redelivered_by"]) == ("delivered", 204, "test-pipeline")
    assert view["delivered_at"] is not None
    headers, body = receiver.deliveries[before]
    assert headers["x-hazardvision-delivery"] == failure["delivery_id"]
    assert verify_signature(SECRET, headers["x-hazardvision-timestamp"], body, headers["x-hazardvision-signature"],
                            tolerance_seconds=300)
    payload = json.loads(body)
    assert payload["event"] == "alert" and payload["alert"]["alert_id"] == alert["alert_id"]
    assert_error(pipeline.post(url), 409, "WebhookFailureConflict")
    records = [r for r in AuditLog.at(server.home).records(action="webhook.redeliver")
               if r.subject == failure["failure_id"]]
    assert [(r.actor, r.details["status"], r.details["http_status"]) for r in records] == [
        ("test-pipeline", "failed", 503), ("test-pipeline", "delivered", 204)]


def test_webhook_failures_are_seen_and_redelivered_by_the_owner_or_an_admin_only(
        server, pipeline, other_pipeline, receiver):
    _alert, failure = failed_alert(pipeline, receiver, "hooked-3")
    assert failure["failure_id"] not in {f["failure_id"] for f in
                                         other_pipeline.get("/v1/webhooks/failures").json()["failures"]}
    url = f"/v1/webhooks/failures/{failure['failure_id']}/redeliver"
    assert_error(other_pipeline.post(url), 404, "UnknownWebhookFailure")
    with server.client(Role.INSPECTOR) as inspector:
        assert_error(inspector.get("/v1/webhooks/failures"), 403, "Forbidden")
    with server.client(Role.ADMIN) as admin:
        assert admin.post(url).json()["redelivered_by"] == "test-admin"


def test_webhook_failures_of_a_deleted_camera_stay_and_cannot_be_redelivered(server, pipeline, receiver):
    _alert, failure = failed_alert(pipeline, receiver, "hooked-4")
    assert pipeline.delete("/v1/cameras/hooked-4").status_code == 200
    with server.client(Role.ADMIN) as admin:
        listed = admin.get("/v1/webhooks/failures", params={"camera": "hooked-4"}).json()["failures"]
        assert [f["failure_id"] for f in listed] == [failure["failure_id"]]
        body = assert_error(admin.post(f"/v1/webhooks/failures/{failure['failure_id']}/redeliver"), 409,
                            "WebhookFailureConflict")
        assert "no webhook" in body["message"]
        assert_error(admin.post("/v1/webhooks/failures/no-such-failure/redeliver"), 404, "UnknownWebhookFailure")
