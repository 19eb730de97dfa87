"""Hostile photos through a real server: refused from their header, decoded within the memory budget, and never
failing another photo of their batch or of their model run."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from hazardvision.access import Role
from hazardvision.images import DECODE_BUDGET_FACTOR
from tests.service.conftest import LiveServer, assert_error, live_server

MIB = 2**20
SIDE = 7745  # 60 megapixels: just under the default pixel limit
PEAK_FACTOR = 4.0
"""A scan of a photo raises the server's peak memory by at most this many times its 8-bit RGB size: its decode
(at most DECODE_BUDGET_FACTOR times) and the 8-bit pixels the scan keeps while the detector runs."""


def png(pixels: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    return data.tobytes()


def sixteen_bit_png(side: int = SIDE) -> bytes:
    """A 16-bit grayscale PNG of side x side pixels: a grid of random grey squares, so that the detector looks at
    it (a uniform picture would skip detection as no signal), and about 130 KB."""
    grid = np.random.default_rng(1).integers(0, 65535, (17, 17), dtype=np.uint16)
    return png(np.ascontiguousarray(np.kron(grid, np.ones((485, 485), np.uint16))[:side, :side]))


def status(key: str) -> int:
    """A memory figure of this process, which runs the server in a thread, in bytes."""
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(key))


def peak_rise(action) -> int:
    """How far the process's peak RSS rises above its RSS while `action()` runs (Linux: VmHWM reset first)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    base = status("VmRSS")
    action()
    return status("VmHWM") - base


needs_proc = pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(),
                                reason="measures the server's peak memory through Linux's /proc")


@pytest.fixture(scope="module")
def server(tmp_path_factory, datasets):
    with live_server(tmp_path_factory.mktemp("bounded-home")) as running:
        yield running


def test_scan_extreme_aspect_ratio_png_answers_422_naming_the_reason(inspector):
    data = png(np.zeros((1, 60000), np.uint8))
    assert len(data) < 1000
    body = assert_error(inspector.post("/v1/scans", content=data, headers={"Content-Type": "image/png"}), 422,
                        "UnsupportedAspectRatio")
    assert "60000x1" in body["message"] and "20:1" in body["message"]


def test_scan_photo_over_the_decode_budget_answers_413(tmp_path, datasets):
    with live_server(tmp_path, max_decode_bytes=64 * MIB) as small, small.client(Role.INSPECTOR) as client:
        body = assert_error(client.post("/v1/scans", content=sixteen_bit_png(5000),
                                        headers={"Content-Type": "image/png"}), 413, "ImageTooLarge")
    assert "5000x5000 16-bit grayscale PNG" in body["message"] and "memory budget of 64 MiB" in body["message"]


@needs_proc
def test_scan_sixteen_bit_png_stays_within_the_memory_budget(inspector):
    data = sixteen_bit_png()
    assert len(data) < 200_000
    output = SIDE * SIDE * 3
    answers: list[httpx.Response] = []
    rise = peak_rise(lambda: answers.append(inspector.post("/v1/scans", content=data,
                                                           headers={"Content-Type": "image/png"})))
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].json()["image"]["width"] == SIDE
    print(f"scan of a {len(data)}-byte 16-bit {SIDE}x{SIDE} PNG: peak RSS +{rise / MIB:.0f} MiB "
          f"({rise / output:.2f}x its 8-bit RGB size)")
    assert rise <= PEAK_FACTOR * output, f"+{rise / MIB:.0f} MiB"

    scan_id = answers[0].json()["scan_id"]

    def three_annotated() -> None:
        threads = [threading.Thread(target=lambda: answers.append(inspector.get(f"/v1/scans/{scan_id}/annotated")))
                   for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    rise = peak_rise(three_annotated)
    assert all(a.status_code == 200 and a.content[:2] == b"\xff\xd8" for a in answers[1:]), answers
    print(f"three concurrent GET /annotated of that scan: peak RSS +{rise / MIB:.0f} MiB ({rise / output:.2f}x)")
    # At most two decodes at once (the test server's two inference workers), each within its budget.
    assert rise <= 2 * DECODE_BUDGET_FACTOR * output + output, f"+{rise / MIB:.0f} MiB"


def test_scan_batch_poisoned_photo_fails_only_itself(inspector, ppe_photos):
    good = [photo.read_bytes() for photo in ppe_photos[:3]]
    files = [("image", ("good-0.jpg", good[0])), ("image", ("strip.png", png(np.zeros((1, 60000), np.uint8)))),
             ("image", ("good-1.jpg", good[1])), ("image", ("good-2.jpg", good[2]))]
    response = inspector.post("/v1/scans/batch", files=files)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [200, 422, 200, 200]
    assert results[1]["error"]["error"] == "UnsupportedAspectRatio"
    for result in (results[0], results[2], results[3]):
        assert inspector.get(f"/v1/scans/{result['scan']['scan_id']}").status_code == 200


def test_scan_photo_the_detector_fails_on_fails_only_itself(tmp_path, ppe_photos):
    """With the aspect-ratio guard relaxed, a 1300x1 photo reaches the detector and breaks its model run (its
    letterbox has no rows): the photos sharing that run, of its batch and of other requests, are still answered."""
    good = [photo.read_bytes() for photo in ppe_photos[:4]]
    poison = png(np.linspace(0, 255, 1300).astype(np.uint8)[None, :])  # a gradient: a scene to frame quality
    with live_server(tmp_path, max_aspect_ratio=2000, batch_window_ms=50) as relaxed, \
            relaxed.client(Role.INSPECTOR) as client:
        singles: list[httpx.Response] = []
        others = [threading.Thread(target=lambda data=data: singles.append(
            client.post("/v1/scans", content=data, headers={"Content-Type": "image/jpeg"}))) for data in good[2:]]
        for thread in others:
            thread.start()
        batch = client.post("/v1/scans/batch", files=[("image", ("good-0.jpg", good[0])),
                                                      ("image", ("strip.png", poison)),
                                                      ("image", ("good-1.jpg", good[1]))])
        for thread in others:
            thread.join()
        alone = client.post("/v1/scans", content=poison, headers={"Content-Type": "image/png"})
    assert batch.status_code == 200, batch.text
    assert [r["status"] for r in batch.json()["results"]] == [200, 500, 200]
    assert batch.json()["results"][1]["error"]["error"] == "InternalError"
    assert [s.status_code for s in singles] == [200, 200]
    assert alone.status_code == 500 and alone.json()["error"] == "InternalError"


def send_chunked(server: LiveServer, path: str, first: bytes, chunk: bytes, chunks: int) -> tuple[bytes, int]:
    """POST a chunked body (no Content-Length): `first`, then `chunks` x `chunk`, stopping once the server
    answers; the answer's first bytes and how many body bytes were sent by then."""
    host, port = server.url.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=60) as connection:
        connection.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {server.keys[Role.INSPECTOR]}\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        connection.sendall(f"{len(first):x}\r\n".encode() + first + b"\r\n")
        sent = len(first)
        connection.settimeout(0.0)
        for _ in range(chunks):
            try:
                answer = connection.recv(4096)
            except BlockingIOError:
                answer = b""
            if answer:
                return answer + _rest(connection), sent
            connection.settimeout(60)
            try:
                connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            connection.settimeout(0.0)
            sent += len(chunk)
        connection.settimeout(60)
        return _rest(connection), sent


def _rest(connection: socket.socket) -> bytes:
    """What the server sends until it closes the connection (or resets it: the client was still sending)."""
    connection.settimeout(60)
    received = b""
    try:
        while chunk := connection.recv(4096):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_scan_batch_body_over_the_limit_is_refused_while_it_streams(tmp_path, datasets):
    """A 100 MiB batch body without Content-Length is answered 413 once the batch limit (4 MiB here) has been
    read, long before the client has sent it all (what it has sent by then also fills the sockets' buffers)."""
    with live_server(tmp_path, max_upload_bytes=MIB, max_batch_images=4) as small:
        part = (b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\n'
                b"Content-Type: image/jpeg\r\n\r\n")
        answer, sent = send_chunked(small, "/v1/scans/batch", part, b"z" * (64 * 1024), chunks=1600)
    print(f"chunked batch body: 413 after {sent / MIB:.1f} MiB sent of 100 MiB (limit 4 MiB)")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"connection: close" in answer.lower()  # the middleware's answer, not the app's
    assert sent < 32 * MIB, f"{sent} bytes sent before the answer"


@needs_proc
def test_scan_batch_of_sixteen_bit_pngs_stays_within_the_request_budget(inspector):
    """Four 60-megapixel photos fill a batch's default budget: a fifth is refused from its header, undecoded, and
    the server's peak memory stays under the four photos' 8-bit pixels plus two decodes in flight."""
    data = sixteen_bit_png()
    files = [("image", (f"big-{i}.png", data, "image/png")) for i in range(5)]
    answers: list[httpx.Response] = []
    rise = peak_rise(lambda: answers.append(inspector.post("/v1/scans/batch", files=files)))
    assert answers[0].status_code == 200, answers[0].text
    results = answers[0].json()["results"]
    assert [r["status"] for r in results] == [200, 200, 200, 200, 413]
    assert "the limit per request" in results[4]["error"]["message"]
    output = SIDE * SIDE * 3
    print(f"batch of five 16-bit {SIDE}x{SIDE} PNGs (four scanned): peak RSS +{rise / MIB:.0f} MiB "
          f"({rise / output:.2f}x one photo's 8-bit RGB size)")
    assert rise <= (4 + 2 * DECODE_BUDGET_FACTOR) * output, f"+{rise / MIB:.0f} MiB"
