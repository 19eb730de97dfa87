"""Slow, idle and too many connections, through real sockets against a real server."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from hazardvision.access import Role
from tests.service.conftest import LiveServer, live_server

TIMEOUT = 1.0  # the server's client_timeout_seconds in these tests


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("connections"), wait_ready=False, client_timeout_seconds=TIMEOUT,
                     max_connections=250) as running:
        yield running


def _connect(server: LiveServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _closed_after(sock: socket.socket) -> tuple[float, bytes]:
    """Seconds until the server closes the connection, and what it sent before."""
    started, received = time.monotonic(), b""
    while chunk := sock.recv(4096):
        received += chunk
    return time.monotonic() - started, received


def test_an_idle_connection_is_closed_within_the_timeout(server):
    with _connect(server) as sock:
        seconds, received = _closed_after(sock)
    assert seconds < TIMEOUT + 2 and received == b""


def test_headers_sent_a_byte_at_a_time_are_cut(server):
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    with _connect(server) as sock:
        started = time.monotonic()
        try:
            for byte in request:
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
        except OSError:  # reset while trickling: cut
            pass
        _, received = _closed_after(sock)
    assert time.monotonic() - started < TIMEOUT + 3
    assert received.startswith(b"HTTP/1.1 408 ") and b"RequestTimeout" in received


def test_a_body_that_stops_arriving_is_cut(server):
    key = server.keys[Role.ADMIN].encode()
    with _connect(server) as sock:
        sock.sendall(b"POST /v1/scans HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key + b"\r\n"
                     b"Content-Type: image/jpeg\r\nContent-Length: 1000\r\n\r\n" + b"\xff" * 10)
        seconds, received = _closed_after(sock)
    assert seconds < TIMEOUT + 2
    assert received.startswith(b"HTTP/1.1 408 ")


def test_healthz_answers_while_200_connections_are_idle(server):
    idle = [_connect(server) for _ in range(200)]
    try:
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
    finally:
        for sock in idle:
            sock.close()


def test_a_connection_past_the_limit_gets_503_and_is_closed(server):
    idle = [_connect(server) for _ in range(250)]
    try:
        with _connect(server) as extra:
            _, received = _closed_after(extra)
        assert received.startswith(b"HTTP/1.1 503 ") and b"TooManyConnections" in received
        assert b"retry-after: 1" in received.lower()
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
