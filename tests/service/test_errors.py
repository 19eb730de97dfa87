"""Every error path of a real server answers a 4xx with a JSON message, never a 5xx or a traceback."""

from __future__ import annotations

import struct
import time
import zlib

import cv2
import numpy as np
import pytest

from hazardvision.access import Role
from tests.service.conftest import assert_error, live_server

MAX_UPLOAD = 64 * 1024


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png_header() -> bytes:
    """A PNG that declares 100000 x 100000 pixels in a few dozen bytes (a decompression bomb's header)."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def noise_jpeg() -> bytes:
    """A real JPEG well above the test server's upload limit (noise does not compress)."""
    pixels = np.random.default_rng(0).integers(0, 255, (320, 320, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", pixels)[1].tobytes()


@pytest.fixture(scope="module")
def server(tmp_path_factory, datasets):
    with live_server(tmp_path_factory.mktemp("errors-home"), max_upload_bytes=MAX_UPLOAD, max_pixels=4_000_000,
                     similar_cases=0) as running:
        yield running


@pytest.fixture(scope="module")
def photo(ppe_photos):
    data = ppe_photos[0].read_bytes()
    assert len(data) < MAX_UPLOAD
    return data


@pytest.mark.parametrize(("name", "make", "status", "error"), [
    ("empty.jpg", lambda p: b"", 400, "InvalidImage"),
    ("truncated.jpg", lambda p: p[: len(p) // 2], 400, "InvalidImage"),
    ("notes.jpg", lambda p: b"this is a text file, not a photo\n" * 20, 400, "InvalidImage"),
    ("bomb.png", lambda p: huge_png_header(), 413, "ImageTooLarge"),
])
def test_errors_malformed_images(inspector, photo, name, make, status, error):
    data = make(photo)
    assert_error(inspector.post("/v1/scans", files={"image": (name, data, "image/jpeg")}), status, error)
    assert_error(inspector.post("/v1/scans", content=data, headers={"Content-Type": "image/jpeg"}), status, error)


def test_errors_oversize_body_is_refused_while_read(inspector):
    big = noise_jpeg()
    assert len(big) > MAX_UPLOAD
    assert_error(inspector.post("/v1/scans", content=big, headers={"Content-Type": "image/jpeg"}), 413,
                 "ImageTooLarge")
    chunked = inspector.post("/v1/scans", content=iter([big[i:i + 8192] for i in range(0, len(big), 8192)]),
                             headers={"Content-Type": "image/jpeg"})
    assert_error(chunked, 413, "ImageTooLarge")
    assert_error(inspector.post("/v1/scans", files={"image": ("big.jpg", big)}), 413, "ImageTooLarge")


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "application/octet-stream", None])
def test_errors_wrong_content_type(inspector, photo, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = inspector.post("/v1/scans", content=photo, headers=headers)
    assert "multipart/form-data" in assert_error(response, 415, "UnsupportedUpload")["message"]


def multipart(*parts: tuple[str, str | None, bytes]) -> tuple[bytes, dict[str, str]]:
    """A multipart body of (field, file name or None for a text field, content) parts."""
    body = b""
    for field, filename, content in parts:
        disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--b0undary\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return body + b"--b0undary--\r\n", {"Content-Type": "multipart/form-data; boundary=b0undary"}


@pytest.mark.parametrize(("parts", "expected"), [
    ([("photo", "a.jpg", b"x")], "unexpected file field"),
    ([("image", None, b"not a file")], "holds text"),
    ([("site", None, b"dock")], "no photo in the form"),
    ([("image", "a.jpg", b"1"), ("image", "b.jpg", b"2")], "at most 1"),
    ([("image", "a.jpg", b"1"), ("site", None, b"a"), ("site", None, b"b")], "given twice"),
    ([("image", "a.jpg", b"1"), ("colour", None, b"red")], "colour"),
])
def test_errors_malformed_forms(inspector, parts, expected):
    content, headers = multipart(*parts)
    response = inspector.post("/v1/scans", content=content, headers=headers)
    assert expected in assert_error(response, 422)["message"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer hv_not-a-key"}, {"Authorization": "Basic abc"}])
def test_errors_missing_or_unknown_key(server, photo, headers):
    with server.client(role=None) as anonymous:
        response = anonymous.post("/v1/scans", files={"image": ("a.jpg", photo)}, headers=headers)
        assert_error(response, 401, "Unauthenticated")
        assert_error(anonymous.get("/v1/models", headers=headers), 401, "Unauthenticated")


def test_errors_wrong_role(server, inspector, photo):
    finding = "0" * 32
    with server.client(Role.PIPELINE) as pipeline:
        assert_error(pipeline.post(f"/v1/findings/{finding}/review", json={"decision": "confirm", "reviewer": "x"}),
                     403, "Forbidden")
        assert_error(pipeline.get("/v1/reviews"), 403, "Forbidden")
    message = assert_error(inspector.post("/v1/models/ppe/activate", json={"version": "0.1.0"}), 403,
                           "Forbidden")["message"]
    assert "inspector" in message and "models.activate" in message


def test_errors_unknown_resources(server, inspector):
    assert_error(inspector.get("/v1/scans/0123456789abcdef"), 404, "UnknownScan")
    assert_error(inspector.get("/v1/scans/0123456789abcdef/annotated"), 404, "UnknownScan")
    assert_error(inspector.post("/v1/findings/nope/review", json={"decision": "reject", "reviewer": "x"}), 404,
                 "UnknownFinding")
    assert_error(inspector.get("/v1/cases/1/thumbnail", params={"annotation": 1}), 404, "UnknownCase")
    with server.client(Role.ADMIN) as admin:
        assert_error(admin.post("/v1/models/nopack/activate", json={"version": "0.1.0"}), 404, "UnknownModel")
        assert_error(admin.post("/v1/models/ppe/activate", json={"version": "0.0.0-none"}), 404, "UnknownModel")
    assert_error(inspector.get("/v1/nothing-here"), 404, "NotFound")
    assert_error(inspector.delete("/v1/scans"), 405, "MethodNotAllowed")


def test_errors_nul_characters_in_text_fields_are_refused(inspector, photo):
    # PostgreSQL cannot store NUL in text: refused at the edge on every database, with the field named.
    response = inspector.post("/v1/scans", params={"note": "wet\x00floor"}, files={"image": ("a.jpg", photo)})
    assert "note" in assert_error(response, 422, "ValidationError")["message"]
    review = {"decision": "reject", "reviewer": "in\x00spector"}
    assert "NUL" in assert_error(inspector.post("/v1/findings/abc/review", json=review), 422,
                                 "ValidationError")["message"]


@pytest.mark.parametrize(("body", "expected"), [
    (b"{not json", "not valid JSON"),
    (b'{"decision": "maybe", "reviewer": "x"}', "body.decision"),
    (b'{"reviewer": "x"}', "body.decision"),
    (b'{"decision": "confirm", "reviewer": "x", "extra": 1}', "body.extra"),
    (b"[]", "body"),
])
def test_errors_malformed_json(inspector, body, expected):
    response = inspector.post("/v1/findings/abc/review", content=body, headers={"Content-Type": "application/json"})
    assert expected in assert_error(response, 422, "ValidationError")["message"]


@pytest.mark.parametrize(("path", "params"), [
    ("/v1/reviews", {"limit": 0}),
    ("/v1/alerts", {"since": "yesterday"}),
    ("/v1/cases/abc/thumbnail", {"annotation": 1}),
    ("/v1/cases/1/thumbnail", {}),
])
def test_errors_invalid_query(server, path, params):
    with server.client(Role.ADMIN) as admin:
        assert_error(admin.get(path, params=params), 422, "ValidationError")


def test_errors_none_was_a_server_error(server):
    with server.client(Role.ADMIN) as admin:
        metrics = admin.get("/metrics").text
    answered = [line for line in metrics.splitlines() if line.startswith("hazardvision_http_requests_total")]
    assert len(answered) > 10
    assert [line for line in answered if 'status="5' in line and 'route="/readyz"' not in line] == []


def test_errors_models_that_cannot_load_keep_the_service_alive_but_not_ready(tmp_path, photo):
    models = tmp_path / "models"
    (models / "ppe").mkdir(parents=True)  # a pack without any version
    with live_server(tmp_path / "home", models=models, wait_ready=False) as broken, \
            broken.client(Role.INSPECTOR) as client:
        assert client.get("/healthz").status_code == 200
        deadline = time.monotonic() + 60
        while "could not be loaded" not in (client.get("/readyz").json()["message"] or "") \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "ppe" in ready.json()["message"]
        assert_error(client.post("/v1/scans", files={"image": ("a.jpg", photo)}), 503, "ModelsLoading")
