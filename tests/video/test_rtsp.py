"""A live RTSP camera served over loopback (GStreamer's RTSP server, H.264) that restarts or drops its clients
mid-way: the reader goes to reconnecting, comes back, and the frames go on."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from hazardvision.video.sources import LiveStream, StreamPolicy, StreamStatus, VideoFrame
from tests.conftest import test_photos
from tests.video.footage import clip_frames, shots
from tests.video.rtsp import require_gstreamer, serving

LOOPBACK = StreamPolicy.of(["127.0.0.0/8"])
SIZE = (320, 240)
FPS = 25


@pytest.fixture(scope="module")
def frames(datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seconds of two real photos, panning, with noise on every frame, as the JPEGs the camera loops over."""
    require_gstreamer()
    folder = tmp_path_factory.mktemp("rtsp-camera")
    photos = [test_photos("ppe-vest")[0], test_photos("hardhat-head")[0]]
    for index, frame in enumerate(clip_frames(shots(photos, 1.0), fps=FPS, size=SIZE)):
        cv2.imwrite(str(folder / f"{index:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


def take(frames: Iterator[VideoFrame], count: int, *, from_index: int = 0) -> list[VideoFrame]:
    """The next `count` frames the stream delivers whose index is at least `from_index`."""
    taken: list[VideoFrame] = []
    for frame in frames:
        if frame.index >= from_index:
            taken.append(frame)
        if len(taken) == count:
            break
    return taken


def wait_for(condition: Callable[[StreamStatus], bool], stream: LiveStream, what: str) -> set[str]:
    """Poll the stream's status until `condition` holds (10 s at most); the states seen on the way."""
    states = {stream.status.state}
    deadline = time.monotonic() + 10
    while not condition(stream.status):
        assert time.monotonic() < deadline, f"{what}: still {stream.status} after 10 s"
        time.sleep(0.02)
        states.add(stream.status.state)
    return states


@pytest.mark.parametrize("outage", ["the camera restarts", "the server drops its clients"])
def test_rtsp_stream_reconnects_after_an_outage_and_frames_go_on(frames: Path, outage: str) -> None:
    sources = [np.asarray(cv2.imread(str(path)), dtype=np.int16) for path in sorted(frames.glob("*.jpg"))]
    with serving(frames, fps=FPS) as camera:
        stream = LiveStream(camera.url, policy=LOOPBACK, open_timeout=3, read_timeout=3, backoff=(0.2, 1.0))
        timer = threading.Timer(25, stream.close)  # a reader that never delivers fails the test, not CI
        timer.daemon = True
        timer.start()
        try:
            delivered = stream.frames()
            before = take(delivered, 10)
            assert len(before) == 10, f"the camera sent {len(before)} frames, not 10: {stream.status}"
            if outage == "the camera restarts":
                camera.stop()
                # At least one attempt made while the camera was down, refused, then the camera is back.
                states = wait_for(lambda status: status.reconnects >= 2, stream, "retrying the stopped camera")
                refused = stream.status.last_error
                camera.start()
            else:
                camera.drop()
                states = wait_for(lambda status: status.reconnects >= 1, stream, "noticing the drop")
                refused = stream.status.last_error
            cut = stream.status.frames_read
            after = take(delivered, 10, from_index=cut)
            status = dataclasses.replace(stream.status)  # as it was before closing
        finally:
            timer.cancel()
            stream.close()

    assert "reconnecting" in states
    assert refused, "the outage left no error on the stream's status"
    assert len(after) == 10, f"{len(after)} frames after the outage, not 10: {status}"
    assert status.state == "reading"
    assert status.reconnects >= 1
    seen = before + after
    assert all(frame.size == SIZE for frame in seen)
    times = [frame.timestamp for frame in seen]
    assert all(later > earlier for earlier, later in itertools.pairwise(times))
    # What comes after the outage is the camera's picture, decoded (H.264 at this size stays close to it).
    for frame in (after[0], after[-1]):
        closest = min(float(np.abs(frame.pixels().astype(np.int16) - source).mean()) for source in sources)
        assert closest < 6, f"frame {frame.index} is {closest:.1f} grey levels from every frame the camera sent"
