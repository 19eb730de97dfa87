"""Camera frames keep their rate under photo-scan load, through a real server: frames have workers of their own
(`frame_workers`), so they never queue behind the photo scans that keep every inference worker busy."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from hazardvision.access import Role
from hazardvision.images import load_image
from hazardvision.packs.letterbox import letterbox
from hazardvision.service.settings import Settings
from tests.conftest import test_photos
from tests.service.conftest import LiveServer, live_server

FPS = 2
SECONDS = 6.0
LATE_SECONDS = 1.0
"""A frame answered later than this after its time missed the camera's rate."""
FLOOD_CLIENTS = 4  # twice the inference workers: photos always queue


def letterboxed_jpeg(pixels: np.ndarray, width: int, height: int, noise: np.random.Generator | None = None) -> bytes:
    """The picture letterboxed to width x height as JPEG, with a little sensor noise when `noise` is given."""
    canvas, _ = letterbox(pixels, height, width, height, width)
    if noise is not None:
        canvas = np.clip(canvas.astype(np.int16) + noise.normal(0, 3, canvas.shape).astype(np.int16), 0, 255)
    return cv2.imencode(".jpg", canvas.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


@pytest.fixture(scope="module")
def server(tmp_path_factory, datasets):
    with live_server(tmp_path_factory.mktemp("frame-priority-home"), similar_cases=0, frame_workers=1) as running:
        yield running


def flood(server: LiveServer, photos: list[bytes], stop: threading.Event, answers: list[int]) -> None:
    """Post photo scans one after the other until `stop`; keep each answer's status."""
    with server.client(Role.INSPECTOR) as inspector:
        sent = 0
        while not stop.is_set():
            response = inspector.post("/v1/scans", files={"image": ("site.jpg", photos[sent % len(photos)])})
            answers.append(response.status_code)
            sent += 1


def test_frames_camera_keeps_its_rate_while_photo_scans_flood(server, datasets):
    # Photos at 1280x720, tiled by default (a model run per tile): long runs on both inference workers, which
    # frames queued behind them would wait for.
    photos = [letterboxed_jpeg(load_image(p).pixels, 1280, 720) for p in test_photos("hardhat-head")[:8]]
    noise = np.random.default_rng(12)
    held = [load_image(p).pixels for p in test_photos("ppe-vest")[:4]]
    frames = [letterboxed_jpeg(pixels, 640, 360, noise) for pixels in held for _ in range(FPS)]  # a second each
    stop, answers = threading.Event(), []
    flooding = [threading.Thread(target=flood, args=(server, photos, stop, answers), daemon=True)
                for _ in range(FLOOD_CLIENTS)]
    for thread in flooding:
        thread.start()
    analysed, due = 0, int(SECONDS * FPS)
    with server.client(Role.PIPELINE) as pipeline:
        assert pipeline.put("/v1/cameras/gate-load", json={}).status_code == 200
        first = pipeline.post("/v1/cameras/gate-load/frames?timestamp=0", content=frames[0],
                              headers={"Content-Type": "image/jpeg"})
        assert first.status_code == 200, first.text
        time.sleep(1.0)  # every flood client has a scan in flight
        start, index = time.perf_counter(), 0
        while index < due:
            time.sleep(max(0.0, start + index / FPS - time.perf_counter()))
            index = max(index, int((time.perf_counter() - start) * FPS))  # a live camera sends its newest frame
            at = start + index / FPS
            if index >= due:
                break
            answer = pipeline.post(f"/v1/cameras/gate-load/frames?timestamp={1 + index / FPS:.3f}",
                                   content=frames[index % len(frames)], headers={"Content-Type": "image/jpeg"})
            assert answer.status_code == 200, answer.text
            if answer.json()["frame_quality"]["status"] == "ok" and time.perf_counter() <= at + LATE_SECONDS:
                analysed += 1
            index += 1
    scans_meanwhile = len(answers)
    stop.set()
    for thread in flooding:
        thread.join(60)
    assert analysed >= 0.75 * due, f"{analysed} of {due} frames analysed in time"
    assert scans_meanwhile >= 1, "photo scans were starved while the camera sent frames"
    assert answers and set(answers) == {200}, answers


def test_frames_without_workers_of_their_own_still_answer(tmp_path, datasets):
    # frame_workers 0: frames share the inference workers with photo scans (as before they had their own).
    with live_server(tmp_path / "home", similar_cases=0, frame_workers=0) as running, \
            running.client(Role.PIPELINE) as pipeline:
        pixels = load_image(test_photos("ppe-vest")[0]).pixels
        answer = pipeline.post("/v1/cameras/gate-shared/frames?timestamp=1",
                               content=letterboxed_jpeg(pixels, 640, 360, np.random.default_rng(1)),
                               headers={"Content-Type": "image/jpeg"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["frame_quality"]["status"] == "ok"


def test_frames_settings_refuse_negative_frame_workers(tmp_path):
    with pytest.raises(ValueError, match="frame_workers"):
        Settings(home=tmp_path, frame_workers=-1)
