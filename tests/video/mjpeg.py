"""An HTTP MJPEG camera served over loopback from a test: real photos with sensor noise, dropped mid-way."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np


def noisy_frames(photo: Path, count: int, *, size: tuple[int, int] | None = None, seed: int = 0) -> list[bytes]:
    """`count` JPEG frames of a real photo, each with its own sensor noise (so no two are the same)."""
    pixels = cv2.imread(str(photo))
    if size is not None:
        pixels = cv2.resize(pixels, size)
    rng = np.random.default_rng(seed)
    return [cv2.imencode(".jpg", np.clip(pixels + rng.normal(0, 3, pixels.shape), 0, 255).astype(np.uint8),
                         [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for _ in range(count)]


class MjpegCamera(http.server.ThreadingHTTPServer):
    """Serves `frames` as multipart/x-mixed-replace, `fps` a second; a connection drops after `per_connection`
    frames (None: it loops over the frames until the client leaves)."""

    daemon_threads = True

    def __init__(self, frames: list[bytes], *, per_connection: int | None = None, fps: float = 25.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.frames, self.per_connection, self.fps = frames, per_connection, fps
        self.connections = 0
        self.open_connections = 0
        self.frames_sent = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/video.mjpg"

    def url_with_credentials(self, user: str, password: str) -> str:
        return f"http://{user}:{password}@127.0.0.1:{self.server_address[1]}/video.mjpg"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: MjpegCamera

    def do_GET(self) -> None:
        camera = self.server
        with camera.lock:
            camera.connections += 1
            camera.open_connections += 1
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        try:
            for sent in range(camera.per_connection or 10**9):
                jpeg = camera.frames[sent % len(camera.frames)]
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                                 + jpeg + b"\r\n")
                self.wfile.flush()
                camera.frames_sent += 1
                time.sleep(1 / camera.fps)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with camera.lock:
                camera.open_connections -= 1

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(frames: list[bytes], **options: object) -> Iterator[MjpegCamera]:
    """A running `MjpegCamera`, shut down on exit."""
    camera = MjpegCamera(frames, **options)  # type: ignore[arg-type]
    thread = threading.Thread(target=camera.serve_forever, daemon=True)
    thread.start()
    try:
        yield camera
    finally:
        camera.shutdown()
        camera.server_close()
