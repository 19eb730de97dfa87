"""Scanning through a real server: multipart and raw uploads, reading back, annotated JPEG, batches, metrics."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hazardvision.access import Role
from hazardvision.data.audit import AuditLog
from hazardvision.results import ScanResult
from tests.conftest import served_versions
from tests.service.conftest import assert_error, jpeg_bytes, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory, datasets):
    with live_server(tmp_path_factory.mktemp("scans-home")) as running:
        yield running


def test_scan_multipart_returns_the_result_with_its_context(inspector, ppe_photos):
    photo = ppe_photos[0]
    response = inspector.post("/v1/scans", files={"image": (photo.name, photo.read_bytes(), "image/jpeg")},
                              data={"site": "dock-3", "enterprise": "acme", "note": "north gate",
                                    "captured_at": "2026-05-01T08:30:00+08:00"})
    assert response.status_code == 200, response.text
    body = response.json()
    service_fields = ("scan_id", "stored_sha256", "created_at", "context")
    ScanResult.model_validate({k: v for k, v in body.items() if k not in service_fields})
    assert body["source"] == photo.name
    assert body["context"]["site"] == "dock-3" and body["context"]["note"] == "north gate"
    assert body["context"]["captured_at"] == "2026-05-01T00:30:00Z"
    assert {m["pack"] for m in body["models"]} == set(served_versions())
    for finding in body["findings"]:
        assert finding["hazard"]["advice"]["en"] and finding["hazard"]["rules"]


def test_scan_raw_body_takes_its_context_from_the_query(inspector, ppe_photos):
    photo = ppe_photos[1]
    response = inspector.post("/v1/scans", content=photo.read_bytes(), headers={"Content-Type": "image/jpeg"},
                              params={"filename": "gate.jpg", "camera": "phone-7"})
    assert response.status_code == 200, response.text
    assert response.json()["source"] == "gate.jpg"
    assert response.json()["context"]["camera"] == "phone-7"


def test_scan_get_returns_what_the_scan_answered(inspector, ppe_photos):
    posted = inspector.post("/v1/scans", files={"image": ("a.jpg", ppe_photos[2].read_bytes())}).json()
    fetched = inspector.get(f"/v1/scans/{posted['scan_id']}")
    assert fetched.status_code == 200
    assert fetched.json() == posted


def test_scan_annotated_is_a_jpeg_of_the_photo(inspector, ppe_photos):
    data = ppe_photos[0].read_bytes()
    scan_id = inspector.post("/v1/scans", files={"image": ("a.jpg", data)}).json()["scan_id"]
    response = inspector.get(f"/v1/scans/{scan_id}/annotated")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    drawn = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert drawn is not None and drawn.shape == original.shape


def test_scan_batch_answers_each_photo_even_with_a_broken_one(inspector, ppe_photos):
    broken = ppe_photos[3].read_bytes()[:2000]
    files = [("image", ("good-1.jpg", ppe_photos[3].read_bytes())), ("image", ("broken.jpg", broken)),
             ("image", ("good-2.jpg", jpeg_bytes(ppe_photos[4], quality=80)))]
    response = inspector.post("/v1/scans/batch", files=files, data={"site": "dock-3"})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["source"] for r in results] == ["good-1.jpg", "broken.jpg", "good-2.jpg"]
    assert [r["status"] for r in results] == [200, 400, 200]
    assert results[1]["error"]["error"] == "InvalidImage" and "truncated" in results[1]["error"]["message"]
    assert results[0]["scan"]["context"]["site"] == "dock-3"
    assert inspector.get(f"/v1/scans/{results[2]['scan']['scan_id']}").status_code == 200


def test_scan_health_needs_no_key_and_metrics_any_key(server, inspector):
    with server.client(role=None) as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        ready = anonymous.get("/readyz").json()
        assert ready["ready"] and set(ready["models"]) == set(served_versions())
        assert_error(anonymous.get("/metrics"), 401, "Unauthenticated")  # metrics_public is off by default
    metrics = inspector.get("/metrics").text
    assert 'hazardvision_http_requests_total{method="POST",route="/v1/scans",status="200"}' in metrics
    for pack, version in served_versions().items():
        assert f'hazardvision_model_active{{pack="{pack}",version="{version}"}} 1.0' in metrics
    assert "hazardvision_inference_batch_size_bucket" in metrics
    assert "hazardvision_http_request_duration_seconds_bucket" in metrics


def test_scan_openapi_describes_every_field(server):
    with server.client(role=None) as anonymous:
        spec = anonymous.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]

    def described(prop):  # a field typed by a model may carry its description on that model
        target = prop.get("$ref", "").rsplit("/", 1)[-1]
        return bool(prop.get("description") or (target and schemas[target].get("description")))

    undocumented = [f"{name}.{field}" for name, schema in schemas.items()
                    for field, prop in schema.get("properties", {}).items() if not described(prop)]
    assert undocumented == []
    assert "HTTPValidationError" not in schemas  # every 422 documents the service's own error body
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            for parameter in operation.get("parameters", []):
                assert parameter.get("description") or parameter["schema"].get("description"), (path, method,
                                                                                                  parameter)


def test_scan_every_scan_is_audited(server, inspector):
    log = AuditLog.at(server.home)
    assert log.verify() == []
    scans = log.records(action="scan")
    assert len(scans) >= 5
    assert all(r.actor == "test-inspector" and r.input_sha256 and r.model_versions == served_versions()
               for r in scans)


def test_scan_retried_with_its_idempotency_key_is_recorded_once(server, inspector, ppe_photos):
    photo = ppe_photos[3].read_bytes()

    def send(key: str, data: bytes = photo, client=inspector):
        return client.post("/v1/scans", files={"image": ("retry.jpg", data, "image/jpeg")},
                           headers={"Idempotency-Key": key})

    log = AuditLog.at(server.home)
    first = send("3f1c-retry")
    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = send("3f1c-retry")  # the client lost the first answer and retries
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert [r.subject for r in log.records(action="scan")].count(first.json()["scan_id"]) == 1

    other = send("3f1c-retry", ppe_photos[4].read_bytes())  # the key of another request, reused
    assert other.status_code == 422 and other.json()["error"] == "IdempotencyKeyReused"
    assert first.json()["scan_id"] in other.json()["message"]
    with server.client(Role.ADMIN) as admin:  # keys are per API key: another client's key is its own
        assert send("3f1c-retry", client=admin).json()["scan_id"] != first.json()["scan_id"]
    for bad in ("", "x" * 201, "has space"):
        refused = send(bad)
        assert refused.status_code == 422 and "Idempotency-Key" in refused.text, bad


def test_scan_concurrent_retries_with_one_idempotency_key_store_one_scan(server, ppe_photos):
    import concurrent.futures

    photo = ppe_photos[5].read_bytes()

    def send(_: int) -> dict:
        with server.client(Role.INSPECTOR) as client:
            response = client.post("/v1/scans", files={"image": ("race.jpg", photo, "image/jpeg")},
                                   headers={"Idempotency-Key": "race-91d2"})
            assert response.status_code == 200, response.text
            return response.json()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, range(4)))
    assert len({answer["scan_id"] for answer in answers}) == 1
    scans = [r.subject for r in AuditLog.at(server.home).records(action="scan")]
    assert scans.count(answers[0]["scan_id"]) == 1
