from __future__ import annotations

import math

import numpy as np
import pytest

from hazardvision.detections import Detections
from hazardvision.errors import InvalidFrame
from hazardvision.video.tracking import Tracker, TrackerSettings

NAMES = ("helmet", "no_helmet")
FPS = 10.0


def box(x: float, y: float = 100.0, w: float = 40.0, h: float = 80.0) -> list[float]:
    return [x, y, x + w, y + h]


def frame(*objects: tuple[str, list[float], float, str]) -> Detections:
    """Detections of one frame from (object label, box, confidence, class name) tuples."""
    if not objects:
        return Detections.of(np.zeros((0, 4)), [], [], NAMES, data={"object": np.asarray([], dtype=str)})
    labels, boxes, scores, classes = zip(*objects, strict=True)
    return Detections.of(boxes, scores, [NAMES.index(name) for name in classes], NAMES, data={"object": labels})


def ids_by_object(tracked: Detections) -> dict[str, int]:
    assert tracked.tracker_id is not None
    return dict(zip(tracked.data["object"].tolist(), tracked.tracker_id.tolist(), strict=True))


def run(tracker: Tracker, frames: list[Detections], start: float = 0.0) -> list[dict[str, int]]:
    return [ids_by_object(tracker.update(d, start + i / FPS)) for i, d in enumerate(frames)]


def test_tracker_moving_object_keeps_its_id():
    seen = run(Tracker(), [frame(("a", box(10 + 8 * i), 0.9, "no_helmet")) for i in range(20)])
    assert seen == [{"a": 1}] * 20


def test_tracker_new_object_is_shown_after_min_hits():
    tracker = Tracker(TrackerSettings(min_hits=3))
    frames = [frame(("a", box(10), 0.9, "helmet"))] + [
        frame(("a", box(10), 0.9, "helmet"), ("b", box(300 + 5 * i), 0.9, "helmet")) for i in range(4)
    ]
    seen = run(tracker, frames)
    assert seen == [{"a": 1}, {"a": 1}, {"a": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 2}]


def test_tracker_crossing_objects_keep_their_ids():
    frames = [
        frame(("a", box(15 * i, y=100), 0.9, "no_helmet"), ("b", box(420 - 15 * i, y=110), 0.85, "no_helmet"))
        for i in range(30)
    ]
    seen = run(Tracker(), frames)
    assert seen == [{"a": 1, "b": 2}] * 30


def test_tracker_weak_detections_keep_a_track_alive():
    scores = [0.9] * 5 + [0.3] * 5 + [0.9] * 5
    frames = [frame(("a", box(10 + 6 * i), score, "no_helmet")) for i, score in enumerate(scores)]
    seen = run(Tracker(), frames)
    assert seen == [{"a": 1}] * 15


def test_tracker_without_second_stage_loses_weak_frames():
    scores = [0.9] * 5 + [0.3] * 5
    frames = [frame(("a", box(10 + 6 * i), score, "no_helmet")) for i, score in enumerate(scores)]
    seen = run(Tracker(TrackerSettings(low_threshold=0.5)), frames)
    assert seen == [{"a": 1}] * 5 + [{}] * 5


def test_tracker_weak_detection_never_starts_a_track():
    seen = run(Tracker(), [frame(("a", box(10), 0.55, "helmet"), ("b", box(300), 0.3, "helmet"))] * 5)
    assert seen == [{}] * 5


@pytest.mark.parametrize(("gap_seconds", "same_id"), [(0.6, True), (1.5, False)])
def test_tracker_keeps_lost_track_only_for_max_age(gap_seconds, same_id):
    tracker = Tracker(TrackerSettings(max_age_seconds=1.0))
    run(tracker, [frame(("a", box(100), 0.9, "no_helmet"))] * 5)  # last seen at 0.4 s
    back = 0.4 + gap_seconds
    tracker.update(frame(), 0.5)
    first = ids_by_object(tracker.update(frame(("a", box(100), 0.9, "no_helmet")), back))
    second = ids_by_object(tracker.update(frame(("a", box(100), 0.9, "no_helmet")), back + 0.1))
    if same_id:
        assert first == second == {"a": 1}
    else:
        assert first == {}  # a new, tentative track
        assert second == {"a": 2}


def test_tracker_follows_objects_through_frame_rate_changes():
    times = [0.0, 0.1, 0.2, 0.7, 0.75, 0.8, 1.6, 1.7, 2.5]
    tracker = Tracker()
    # 100 px/s across the image whatever the gap between frames.
    seen = [ids_by_object(tracker.update(frame(("a", box(10 + 100 * t), 0.9, "no_helmet")), t)) for t in times]
    assert seen == [{"a": 1}] * len(times)


def test_tracker_matches_within_the_same_class_only():
    tracker = Tracker()
    first = ids_by_object(tracker.update(frame(("a", box(100), 0.9, "helmet")), 0.0))
    # The same place, now a bare head: a different object for the tracker, tentative at first.
    swapped = [ids_by_object(tracker.update(frame(("b", box(100), 0.9, "no_helmet")), t)) for t in (0.1, 0.2)]
    assert first == {"a": 1}
    assert swapped == [{}, {"b": 2}]


def test_tracker_overlapping_objects_of_two_classes_keep_their_ids():
    frames = [frame(("h", box(100 + i), 0.9, "helmet"), ("n", box(102 + i), 0.8, "no_helmet")) for i in range(10)]
    assert run(Tracker(), frames) == [{"h": 1, "n": 2}] * 10


def test_tracker_never_reuses_ids():
    tracker = Tracker(TrackerSettings(max_age_seconds=0.2))
    ids = []
    for round_start in (0.0, 1.0, 2.0):
        seen = run(tracker, [frame(("a", box(100), 0.9, "no_helmet"))] * 3, start=round_start)
        ids.extend(seen[-1].values())
    assert ids == [1, 2, 3]


@pytest.mark.parametrize("timestamp", [0.4, math.nan, math.inf])
def test_tracker_frame_out_of_order_raises(timestamp):
    tracker = Tracker()
    tracker.update(frame(("a", box(100), 0.9, "no_helmet")), 0.5)
    with pytest.raises(InvalidFrame, match="timestamp"):
        tracker.update(frame(("a", box(100), 0.9, "no_helmet")), timestamp)
    # The refused frame changed nothing: the track continues.
    assert ids_by_object(tracker.update(frame(("a", box(100), 0.9, "no_helmet")), 0.6)) == {"a": 1}


def test_tracker_same_timestamp_twice_is_accepted():
    tracker = Tracker()
    tracker.update(frame(("a", box(100), 0.9, "no_helmet")), 1.0)
    assert ids_by_object(tracker.update(frame(("a", box(100), 0.9, "no_helmet")), 1.0)) == {"a": 1}


def test_tracker_keeps_detection_boxes_and_data():
    d = frame(("a", box(100), 0.9, "no_helmet"), ("b", box(300), 0.05, "helmet"))
    tracked = Tracker().update(d, 0.0)
    assert tracked.xyxy.tolist() == [box(100)]
    assert tracked.data["object"].tolist() == ["a"]
    assert tracked.class_names == NAMES


def test_tracker_settings_reject_inverted_thresholds():
    with pytest.raises(ValueError, match="low_threshold"):
        TrackerSettings(low_threshold=0.7, high_threshold=0.5)


def test_tracker_starts_tracks_from_each_detection_s_class_threshold():
    """A hazard reported by a photo scan at its class's threshold (here 0.3) starts and holds a track."""
    def reported(score: float, threshold: float) -> Detections:
        return Detections.of([box(10)], [score], [1], NAMES, data={"object": ["a"], "threshold": [threshold]})

    assert run(Tracker(), [reported(0.35, 0.3)] * 3) == [{"a": 1}] * 3
    assert run(Tracker(), [reported(0.25, 0.3)] * 3) == [{"a": 1}] * 3  # within the hysteresis (0.8 x 0.3)
    assert run(Tracker(), [reported(0.2, 0.3)] * 3) == [{}] * 3  # under it: weak, as before
