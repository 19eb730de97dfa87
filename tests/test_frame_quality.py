"""Frame quality: frames that show no scene are reported as such and never scanned for hazards."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hazardvision.catalogue import load_catalogue
from hazardvision.datasets.readers import read_yolo
from hazardvision.frame_quality import CameraCondition, FrameStatus, FreezeWatch, assess, grey_sample
from hazardvision.images import decode_image, load_image
from hazardvision.scan import Scanner
from tests.conftest import DATASET_NAMES, bundled_packs


def generated_frames() -> list[tuple[str, np.ndarray, FrameStatus]]:
    """100 frames a camera sends when it shows no scene: uniform, dark, blown out, noise; some with sensor noise."""
    rng = np.random.default_rng(0)
    frames = []
    sizes = [(352, 640), (720, 1280), (480, 640), (1080, 1920)]
    for i in range(25):
        h, w = sizes[i % 4]
        colour = rng.integers(40, 220, 3)  # darker or brighter frames are the dark and blown-out cases
        uniform = np.broadcast_to(colour.astype(np.uint8), (h, w, 3)).copy()
        if i % 2:
            uniform = np.clip(uniform + rng.normal(0, 1.0, uniform.shape), 0, 255).astype(np.uint8)
        frames.append((f"uniform-{i}", uniform, FrameStatus.NO_SIGNAL))
        dark = np.clip(rng.normal(rng.uniform(2, 9), 2.0, (h, w, 3)), 0, 255).astype(np.uint8)
        frames.append((f"dark-{i}", dark, FrameStatus.VIEW_OBSTRUCTED))
        blown = np.clip(rng.normal(254, 1.5, (h, w, 3)), 0, 255).astype(np.uint8)
        frames.append((f"blown-{i}", blown, FrameStatus.VIEW_OBSTRUCTED))
        noise = rng.integers(0, 256, (h, w, 1 if i % 3 == 0 else 3), dtype=np.uint8)
        frames.append((f"noise-{i}", np.repeat(noise, 3, axis=2) if noise.shape[2] == 1 else noise,
                       FrameStatus.NO_SIGNAL))
    return frames


@pytest.mark.parametrize(("name", "frame", "status"), generated_frames(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_assess_reports_frames_without_a_scene(name, frame, status):
    quality = assess(frame)
    assert quality.status is status, (name, quality)
    assert quality.reason


def test_scanner_gives_no_finding_on_generated_frames_and_reports_their_status():
    scanner = Scanner(bundled_packs(), load_catalogue())
    frames = generated_frames()
    images = [decode_image(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
              for _, frame, _ in frames]
    results = scanner.scan(images, [name for name, _, _ in frames])
    assert len(results) == 100
    for (name, _, status), result in zip(frames, results, strict=True):
        assert result.findings == [] and result.objects == [], name
        assert result.frame_quality.status == status.value and result.frame_quality.reason


def test_assess_passes_every_real_test_photo(datasets):
    flagged, fire_or_smoke_flagged, total = [], [], 0
    for name in DATASET_NAMES:
        dataset = read_yolo(datasets / name / "data.yaml")
        for sample in (f for f in dataset.files if f.split == "test" and not f.errors):
            total += 1
            if not assess(load_image(sample.image).pixels).ok:
                flagged.append(sample.image.name)
                if {b.source_class for b in sample.boxes} & {"fire", "smoke"}:
                    fire_or_smoke_flagged.append(sample.image.name)
    assert len(flagged) <= 0.01 * total, flagged
    assert fire_or_smoke_flagged == []


def a_scene(seed: int) -> np.ndarray:
    """A picture with structure (blurred noise: neighbouring pixels alike), as a camera shows a scene."""
    noise = np.random.default_rng(seed).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 3) * 4


def test_freeze_watch_tells_a_stuck_picture_from_a_live_one():
    rng = np.random.default_rng(1)
    scene = a_scene(1)
    stuck = FreezeWatch(seconds=10)
    assert [stuck.update(grey_sample(scene), t) for t in range(12)] == [False] * 10 + [True] * 2
    live = FreezeWatch(seconds=10)
    noisy = [np.clip(scene + rng.normal(0, 2, scene.shape), 0, 255).astype(np.uint8) for _ in range(12)]
    assert not any(live.update(grey_sample(frame), t) for t, frame in enumerate(noisy))


def test_camera_condition_alerts_once_per_episode():
    scene = a_scene(2)
    assert assess(scene).ok
    grey = np.full((120, 160, 3), 128, np.uint8)
    condition = CameraCondition(frozen_seconds=10, min_frames=3)
    alerts = []
    for t in range(30):
        quality, alert = condition.update(scene, float(t))
        alerts.append((t, quality.status, alert))
    raised = [(t, status) for t, status, alert in alerts if alert]
    assert raised == [(12, FrameStatus.FROZEN)]  # frozen from t=10, held for 3 frames
    for t in range(30, 36):
        frame = grey if t < 34 else a_scene(t)  # a lost signal, then a changing picture again
        quality, alert = condition.update(frame, float(t))
        if alert:
            raised.append((t, quality.status))
    assert raised == [(12, FrameStatus.FROZEN), (32, FrameStatus.NO_SIGNAL)]
