"""A camera with an `rtsp://` stream URL, read by the service itself, through a real server: an H.264 RTSP camera
(GStreamer's RTSP server, tests/video/rtsp.py) showing a real site photo with a PPE hazard raises alerts, drops
its connection mid-way, and the reader reconnects and raises alerts again, from frames after the drop."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest

from hazardvision.access import Role
from tests.conftest import test_photos
from tests.service.conftest import LiveServer, eventually, live_server
from tests.service.test_frames import PPE_HAZARDS
from tests.video.footage import Shot, clip_frames
from tests.video.rtsp import require_gstreamer, serving

FPS = 10
SIZE = (640, 480)
SETTINGS: dict[str, Any] = {
    "similar_cases": 0,
    "stream_networks": "127.0.0.0/8",  # the admin's network setting: the test camera is on loopback
    "stream_lease_seconds": 2,
    "stream_selection": {"fps": 4, "max_gap": 0.5},
}
RULE = {"min_frames": 3, "cooldown_seconds": 0}
"""No cooldown: each time the hazard comes back into view (every loop of the footage) it alerts again."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> Iterator[LiveServer]:
    require_gstreamer()
    with live_server(tmp_path_factory.mktemp("rtsp-home"), **SETTINGS) as running:
        yield running


@pytest.fixture(scope="module")
def footage(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frames the camera loops over: 2 s of a real photo in which the bundled pack finds a missing helmet or
    vest, clearly, then 1.5 s of a covered lens (the hazard's track ends), as JPEGs."""
    with server.client(Role.INSPECTOR) as inspector:
        for photo in test_photos("ppe-vest")[:30]:
            scan = inspector.post("/v1/scans", files={"image": (photo.name, photo.read_bytes())}).json()
            if any(f["class_name"] in PPE_HAZARDS and f["confidence"] >= 0.5 for f in scan["findings"]):
                break
        else:
            pytest.fail("no photo among the first 30 of ppe-vest's test split has a clear PPE hazard")
    folder = tmp_path_factory.mktemp("rtsp-footage")
    plan = [Shot(photo, 0.0, 2.0), Shot(None, 2.0, 1.5)]
    for index, frame in enumerate(clip_frames(plan, fps=FPS, size=SIZE)):
        cv2.imwrite(str(folder / f"{index:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


def hazard_alerts(client: httpx.Client, camera_id: str) -> list[dict[str, Any]]:
    alerts = client.get("/v1/alerts", params={"camera": camera_id, "kind": "hazard", "limit": 200}).json()["alerts"]
    return [alert for alert in alerts if alert["class_name"] in PPE_HAZARDS]


def test_camera_streams_rtsp_alerts_go_on_after_the_connection_drops(server: LiveServer, footage: Path) -> None:
    with serving(footage, fps=FPS) as camera, server.client(Role.PIPELINE) as pipeline:
        put = pipeline.put("/v1/cameras/rtsp-1", json={"stream_url": camera.url, "rule": RULE})
        assert put.status_code == 200, put.text
        assert put.json()["stream_url"].startswith("rtsp://127.0.0.1:")

        def stream() -> dict[str, Any]:
            return pipeline.get("/v1/cameras/rtsp-1").json()["stream"]

        before = eventually(lambda: hazard_alerts(pipeline, "rtsp-1"), 30)
        assert stream()["state"] == "live" and stream()["reconnects"] == 0
        assert before[0]["hazard"]["code"] and before[0]["snapshot_url"]

        camera.drop()  # the server cuts the reader off and goes on serving
        eventually(lambda: stream()["reconnects"] >= 1, 15)
        noticed = time.time()  # every frame read from here on came over the new connection

        def after_the_drop() -> list[dict[str, Any]]:
            return [a for a in hazard_alerts(pipeline, "rtsp-1") if a["raised_at"] > noticed]

        after = eventually(after_the_drop, 20)
        assert {a["alert_id"] for a in after}.isdisjoint(a["alert_id"] for a in before)
        status = stream()
        assert status["state"] == "live" and status["reconnects"] >= 1 and status["frames_analysed"] > 0
        snapshot = pipeline.get(after[0]["snapshot_url"])
        assert snapshot.status_code == 200 and snapshot.headers["content-type"] == "image/jpeg"
        assert pipeline.delete("/v1/cameras/rtsp-1").status_code == 200
