"""Events from tracked detections: minimum frames, end of a track, the best frame, camera events, blurring."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hazardvision.catalogue import load_catalogue
from hazardvision.detections import Detections
from hazardvision.frame_quality import FrameQuality, FrameStatus
from hazardvision.video.events import EventBuilder, blur_people, folder_writer, view_score

CATALOGUE = load_catalogue()
CLASSES = ("no_helmet", "helmet", "person")
RNG = np.random.default_rng(1)
SHARP = RNG.integers(0, 255, (240, 320, 3), dtype=np.uint8)
BLURRED = cv2.GaussianBlur(SHARP, (31, 31), 0)


def tracked(*rows: tuple[int, str, float, tuple[float, float, float, float]], threshold: float | None = None
            ) -> Detections:
    """Detections with tracker ids from (track, class, confidence, box) rows."""
    if not rows:
        return Detections.empty()
    found = Detections(
        xyxy=np.array([row[3] for row in rows], np.float32), confidence=np.array([row[2] for row in rows], np.float32),
        class_id=np.array([CLASSES.index(row[1]) for row in rows], np.int64), class_names=CLASSES,
        tracker_id=np.array([row[0] for row in rows], np.int64))
    if threshold is not None:
        found.data["threshold"] = np.full(len(rows), threshold, np.float32)
    return found


BOX = (100.0, 60.0, 180.0, 160.0)


def test_event_spans_its_track_and_ends_after_the_track_is_gone():
    builder = EventBuilder(CATALOGUE, "cam", min_frames=3, end_after=1.0)
    ended = []
    for step in range(10):
        ended += builder.add(step * 0.2, SHARP, tracked((7, "no_helmet", 0.5 + step / 100, BOX)))
    assert ended == []
    ended += builder.add(2.5, SHARP, tracked())  # 0.7 s after the last sighting: still open
    assert ended == []
    ended += builder.add(3.0, SHARP, tracked())
    [event] = ended
    assert (event.kind, event.class_name, event.tracker_id, event.frames) == ("hazard", "no_helmet", 7, 10)
    assert (event.start, event.end) == (0.0, 1.8)
    assert event.peak_confidence == pytest.approx(0.59)
    assert event.hazard is not None and event.hazard.code and event.hazard.name.en


def test_flickers_and_context_objects_are_not_events():
    builder = EventBuilder(CATALOGUE, "cam", min_frames=3, end_after=1.0)
    builder.add(0.0, SHARP, tracked((1, "no_helmet", 0.9, BOX), (2, "helmet", 0.9, BOX), (3, "person", 0.9, BOX)))
    builder.add(0.2, SHARP, tracked((1, "no_helmet", 0.9, BOX), (2, "helmet", 0.9, BOX), (3, "person", 0.9, BOX)))
    assert builder.finish() == []
    assert builder.dropped == 1


def test_a_track_of_weak_detections_under_its_class_threshold_is_not_an_event():
    builder = EventBuilder(CATALOGUE, "cam", min_frames=2, end_after=1.0)
    for step in range(5):
        builder.add(step * 0.2, SHARP, tracked((4, "no_helmet", 0.3, BOX), threshold=0.45))
    assert builder.finish() == []


def test_best_frame_is_the_sharp_one_and_is_saved(tmp_path):
    builder = EventBuilder(CATALOGUE, "cam", min_frames=2, snapshots=folder_writer(tmp_path))
    builder.add(0.0, BLURRED, tracked((1, "no_helmet", 0.9, BOX)))
    builder.add(0.5, SHARP, tracked((1, "no_helmet", 0.6, BOX)))
    builder.add(1.0, BLURRED, tracked((1, "no_helmet", 0.9, BOX)))
    [event] = builder.finish()
    assert event.best_frame_time == 0.5
    assert event.snapshot is not None
    saved = cv2.imread(event.snapshot)
    assert saved.shape == SHARP.shape


def test_view_score_prefers_confident_sharp_and_whole_views():
    assert view_score(SHARP, BOX, 0.9) > view_score(BLURRED, BOX, 0.9)
    assert view_score(SHARP, BOX, 0.9) > view_score(SHARP, BOX, 0.5)
    assert view_score(SHARP, BOX, 0.9) > view_score(SHARP, (0.0, 60.0, 80.0, 160.0), 0.9)


def test_blur_people_blurs_people_and_what_they_wear_only():
    found = tracked((1, "person", 0.9, (10, 10, 110, 110)), (2, "no_helmet", 0.9, (150, 10, 250, 110)))
    out = blur_people(SHARP, found, CATALOGUE)
    assert not np.array_equal(out[10:110, 10:110], SHARP[10:110, 10:110])
    assert np.array_equal(out[150:, :], SHARP[150:, :])
    assert np.array_equal(SHARP, SHARP.copy())  # the input is left alone


def quality(status: FrameStatus) -> FrameQuality:
    return FrameQuality(status, status.value, 0.0, 0.0, 0.0)


def test_a_stretch_of_lost_picture_is_one_camera_event():
    builder = EventBuilder(CATALOGUE, "cam", min_frames=3)
    events = []
    for step in range(3):
        events += builder.add_quality(step, quality(FrameStatus.OK))
    for step in range(3, 8):
        events += builder.add_quality(step, quality(FrameStatus.VIEW_OBSTRUCTED))
    events += builder.add_quality(8, quality(FrameStatus.NO_SIGNAL))  # one frame: not an event
    events += builder.add_quality(9, quality(FrameStatus.OK))
    [event] = events
    assert (event.kind, event.class_name, event.start, event.end, event.frames) == (
        "camera", "view_obstructed", 3, 7, 5)
