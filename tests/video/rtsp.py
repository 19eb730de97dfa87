"""An RTSP camera served over loopback from a test: GStreamer's RTSP server (tests/video/rtsp_server.py) run
by Debian's Python, which has `gi`. Missing, its tests skip, except under CI=true, where they fail."""

from __future__ import annotations

import os
import select
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PYTHON = os.environ.get("HAZARDVISION_TEST_GI_PYTHON", "/usr/bin/python3")
SCRIPT = Path(__file__).with_name("rtsp_server.py")
PACKAGES = ("python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
            "gstreamer1.0-plugins-ugly gstreamer1.0-libav")
_CHECK = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
          "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
          "missing = [e for e in ('multifilesrc', 'jpegdec', 'videoconvert', 'x264enc', 'rtph264pay') "
          "if Gst.ElementFactory.find(e) is None]; print(' '.join(missing))")


def require_gstreamer() -> None:
    """Skip (fail under CI=true) unless Debian's Python can run GStreamer's RTSP server with H.264."""
    reason = None
    try:
        checked = subprocess.run([PYTHON, "-c", _CHECK], check=False, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        reason = f"no {PYTHON}"
    else:
        if checked.returncode != 0:
            error = (checked.stderr.strip().splitlines() or ["no error output"])[-1]
            reason = f"{PYTHON} cannot load GStreamer's RTSP server through gi ({error})"
        elif checked.stdout.strip():
            reason = f"GStreamer lacks the elements {checked.stdout.strip()}"
    if reason is None:
        return
    reason += f": apt-get install {PACKAGES} (or set HAZARDVISION_TEST_GI_PYTHON)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the RTSP stream test must run)", pytrace=False)
    pytest.skip(reason)


class RtspCamera:
    """rtsp_server.py run by a test: `url`, and `drop` (clients cut off), `stop` and `start` (same port)."""

    def __init__(self, frames: Path, *, fps: int = 25, mount: str = "/cam") -> None:
        self.frames, self.fps, self.mount = frames, fps, mount
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        # GStreamer's warnings (a pipe nobody reads could fill up), kept for the camera's life: `close` closes it.
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    def start(self) -> None:
        """Serve (again on the port of the first start)."""
        self.process = subprocess.Popen(
            [PYTHON, str(SCRIPT), str(self.frames), "--port", str(self.port), "--mount", self.mount,
             "--fps", str(self.fps)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self._line(10)
        if not line.startswith("ready "):
            self.stop()
            raise RuntimeError(f"the RTSP server did not start: {line!r}, {self._errors()}")
        self.port = int(line.split()[1])

    def drop(self) -> None:
        """Disconnect every client; the server goes on serving."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write("drop\n")
        self.process.stdin.flush()
        if self._line(5) != "dropped":
            raise RuntimeError(f"the RTSP server did not drop its clients: {self._errors()}")

    def stop(self) -> None:
        """Stop the server, as a camera that reboots: its connections close."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        self.process = None

    def close(self) -> None:
        self.stop()
        self.log.close()

    def _line(self, timeout: float) -> str:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if select.select([self.process.stdout], [], [], 0.1)[0]:
                return self.process.stdout.readline().strip()
        return ""

    def _errors(self) -> str:
        self.log.seek(0)
        return self.log.read().strip()[-2000:] or "no error output"


@contextmanager
def serving(frames: Path, *, fps: int = 25, mount: str = "/cam") -> Iterator[RtspCamera]:
    """A running `RtspCamera` on a free loopback port, closed on exit."""
    camera = RtspCamera(frames, fps=fps, mount=mount)
    try:
        camera.start()
        yield camera
    finally:
        camera.close()
