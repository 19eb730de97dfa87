"""A live stream served over loopback (HTTP MJPEG) that drops mid-way: the reader reconnects and frames go on."""

from __future__ import annotations

import http.server
import itertools
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import cv2
import numpy as np
import pytest

from hazardvision.video.sources import LiveStream, StreamPolicy

LOOPBACK = StreamPolicy.of(["127.0.0.0/8"])


def opened(url: str, **options: object) -> LiveStream:
    """A stream that closes itself after 30 s, so that a reader that never delivers fails the test, not CI."""
    stream = LiveStream(url, policy=LOOPBACK, open_timeout=3, read_timeout=3, backoff=(0.2, 1.0), **options)
    timer = threading.Timer(30, stream.close)
    timer.daemon = True
    timer.start()
    return stream


class _Camera(http.server.BaseHTTPRequestHandler):
    frames: ClassVar[list[bytes]] = []
    per_connection = 15
    connections = 0

    def do_GET(self) -> None:
        type(self).connections += 1
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        try:
            for jpeg in self.frames[: self.per_connection]:  # then the connection drops
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                                 + jpeg + b"\r\n")
                self.wfile.flush()
                time.sleep(0.04)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def camera(real_photo) -> Iterator[str]:
    photo = cv2.resize(cv2.imread(str(real_photo)), (320, 240))
    rng = np.random.default_rng(0)
    _Camera.frames = [cv2.imencode(".jpg", np.clip(photo + rng.normal(0, 3, photo.shape), 0, 255).astype(np.uint8))[1]
                      .tobytes() for _ in range(15)]
    _Camera.connections = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Camera)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/video.mjpg"
    server.shutdown()
    server.server_close()


def test_live_stream_reconnects_after_a_drop_and_its_frames_go_on(camera):
    stream = opened(camera)
    seen = []
    try:
        for frame in stream.frames():
            seen.append((frame.index, frame.timestamp, frame.pixels().shape))
            if len(seen) >= 20 and stream.status.reconnects >= 1:
                break
    finally:
        stream.close()
    assert _Camera.connections >= 2
    assert stream.status.reconnects >= 1
    assert stream.status.last_error
    indexes = [index for index, _, _ in seen]
    assert indexes == sorted(indexes) and max(indexes) >= 15  # frames of the second connection arrived
    assert all(shape == (240, 320, 3) for _, _, shape in seen)
    times = [timestamp for _, timestamp, _ in seen]
    assert times == sorted(times)


def test_live_stream_keeps_only_the_newest_frame_when_analysis_is_slow(camera):
    stream = opened(camera)
    taken = []
    try:
        for frame in stream.frames():
            taken.append(frame.index)
            time.sleep(0.3)  # analysis far slower than the camera's 25 frames a second
            if len(taken) == 4:
                break
    finally:
        stream.close()
    assert stream.status.frames_dropped > 0
    assert all(later - earlier > 1 for earlier, later in itertools.pairwise(taken))


def test_an_unreachable_stream_is_retried_with_backoff_and_reported():
    stream = LiveStream("http://127.0.0.1:9/none.mjpg", policy=LOOPBACK, open_timeout=1, read_timeout=1,
                        backoff=(0.1, 0.4))
    try:
        deadline = time.monotonic() + 5
        while stream.status.reconnects < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stream.close()
    assert stream.status.reconnects >= 3
    assert stream.status.last_error
    assert stream.status.frames_read == 0
