from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from hazardvision.detections import Detections
from hazardvision.errors import InvalidFrame, UnknownClass
from hazardvision.video.alerts import Alert, AlertAggregator, AlertRule
from hazardvision.video.tracking import Tracker

NAMES = ("helmet", "no_helmet", "fire")
HAZARDS = ("no_helmet", "fire")
FPS = 10.0


def box(x: float, y: float = 100.0) -> list[float]:
    return [x, y, x + 40, y + 80]


def tracked(*objects: tuple[int, list[float], float, str]) -> Detections:
    """One frame of tracker output from (tracker id, box, confidence, class name) tuples."""
    if not objects:
        return Detections.of(np.zeros((0, 4)), [], [], NAMES, tracker_id=[])
    ids, boxes, scores, classes = zip(*objects, strict=True)
    return Detections.of(boxes, scores, [NAMES.index(c) for c in classes], NAMES, tracker_id=ids)


def feed(aggregator: AlertAggregator, frames: list[Detections], start: float = 0.0, fps: float = FPS,
         camera: str = "gate") -> list[list[Alert]]:
    return [aggregator.update(camera, d, start + i / fps) for i, d in enumerate(frames)]


def flat(alerts_per_frame: list[list[Alert]]) -> list[Alert]:
    return [alert for alerts in alerts_per_frame for alert in alerts]


def test_alert_aggregator_hazard_held_over_30_frames_alerts_once():
    scores = [0.6, 0.7, 0.9, 0.8, 0.65] + [0.95] * 25
    frames = [tracked((7, box(100 + i), score, "no_helmet")) for i, score in enumerate(scores)]
    per_frame = feed(AlertAggregator(HAZARDS), frames)
    assert [len(alerts) for alerts in per_frame] == [0, 0, 0, 0, 1] + [0] * 25
    alert = per_frame[4][0]
    assert (alert.camera_id, alert.class_name, alert.tracker_id) == ("gate", "no_helmet", 7)
    assert (alert.first_seen, alert.raised_at, alert.frames) == (0.0, 0.4, 5)
    assert alert.box == (104.0, 100.0, 144.0, 180.0)
    assert alert.confidence == pytest.approx(0.9)
    assert len(alert.alert_id) == 32


def test_alert_aggregator_through_a_tracker_alerts_once_despite_flicker():
    tracker, aggregator = Tracker(), AlertAggregator(HAZARDS)
    alerts = []
    for i in range(30):
        seen = [] if i in (12, 13) else [box(100 + 3 * i)]  # two frames where the detector misses
        detections = Detections.of(np.asarray(seen).reshape(-1, 4), [0.8] * len(seen), [1] * len(seen), NAMES)
        t = i / FPS
        alerts += aggregator.update("gate", tracker.update(detections, t), t)
    assert [(a.class_name, a.tracker_id) for a in alerts] == [("no_helmet", 1)]


@pytest.mark.parametrize("frames_seen", [1, 4])
def test_alert_aggregator_brief_detection_raises_nothing(frames_seen):
    frames = [tracked((3, box(100), 0.9, "fire"))] * frames_seen + [tracked()] * 20
    assert flat(feed(AlertAggregator(HAZARDS), frames)) == []


def test_alert_aggregator_needs_both_min_frames_and_min_seconds():
    rule = AlertRule(min_frames=5, min_seconds=2.0)
    per_frame = feed(AlertAggregator(HAZARDS, rule), [tracked((1, box(100), 0.9, "fire"))] * 30)
    raised = [i for i, alerts in enumerate(per_frame) if alerts]
    assert raised == [20]  # 2.0 s after the first sighting, at 10 frames per second


def test_alert_aggregator_flickering_track_does_not_realert():
    present, absent = tracked((4, box(100), 0.9, "no_helmet")), tracked()
    frames = [present] * 10 + [absent] * 2 + [present] * 10 + [absent] + [present] * 10
    assert len(flat(feed(AlertAggregator(HAZARDS), frames))) == 1


def test_alert_aggregator_same_track_never_realerts_after_the_cooldown():
    rule = AlertRule(cooldown_seconds=60)
    frames = [tracked((4, box(100), 0.9, "no_helmet"))] * 300  # five minutes at one frame per second
    assert len(flat(feed(AlertAggregator(HAZARDS, rule), frames, fps=1.0))) == 1


def test_alert_aggregator_new_track_at_the_same_place_respects_cooldown():
    aggregator = AlertAggregator(HAZARDS, AlertRule(cooldown_seconds=60))
    first = flat(feed(aggregator, [tracked((1, box(100), 0.9, "no_helmet"))] * 10))
    # The tracker lost the hazard and picked it up again under a new id: the same hazard.
    within = flat(feed(aggregator, [tracked((2, box(104), 0.9, "no_helmet"))] * 10, start=10.0))
    # Another place, or another hazard class at the same place, is another hazard.
    elsewhere = flat(feed(aggregator, [tracked((3, box(400), 0.9, "no_helmet"))] * 10, start=20.0))
    other_class = flat(feed(aggregator, [tracked((4, box(100), 0.9, "fire"))] * 10, start=30.0))
    after = flat(feed(aggregator, [tracked((5, box(100), 0.9, "no_helmet"))] * 10, start=70.0))
    assert [a.tracker_id for a in first] == [1]
    assert within == []
    assert [a.tracker_id for a in elsewhere] == [3]
    assert [a.tracker_id for a in other_class] == [4]
    assert [a.tracker_id for a in after] == [5]


def test_alert_aggregator_cooldown_place_follows_a_moving_hazard():
    aggregator = AlertAggregator(HAZARDS)
    walk = [tracked((1, box(100 + 20 * i), 0.9, "no_helmet")) for i in range(20)]  # ends at x=480
    assert len(flat(feed(aggregator, walk))) == 1
    picked_up = [tracked((2, box(490 + 20 * i), 0.9, "no_helmet")) for i in range(10)]
    assert flat(feed(aggregator, picked_up, start=3.0)) == []


def test_alert_aggregator_ignores_classes_that_are_not_hazards_or_not_chosen():
    frames = [tracked((1, box(100), 0.9, "helmet"), (2, box(300), 0.9, "fire"), (3, box(500), 0.9, "no_helmet"))]
    everything = flat(feed(AlertAggregator(HAZARDS), frames * 10))
    fire_only = flat(feed(AlertAggregator(HAZARDS, AlertRule(classes=("fire",))), frames * 10))
    assert sorted(a.class_name for a in everything) == ["fire", "no_helmet"]
    assert [a.class_name for a in fire_only] == ["fire"]


def test_alert_aggregator_rule_with_a_class_that_is_no_hazard_raises():
    with pytest.raises(UnknownClass, match="helmet"):
        AlertAggregator(HAZARDS, AlertRule(classes=("helmet",)))


def test_alert_aggregator_keeps_cameras_apart():
    aggregator = AlertAggregator(HAZARDS)
    frames = [tracked((1, box(100), 0.9, "fire"))] * 10
    alerts = flat(feed(aggregator, frames, camera="gate")) + flat(feed(aggregator, frames, camera="yard"))
    assert [a.camera_id for a in alerts] == ["gate", "yard"]


def test_alert_aggregator_frame_out_of_order_raises():
    aggregator = AlertAggregator(HAZARDS)
    aggregator.update("gate", tracked(), 5.0)
    with pytest.raises(InvalidFrame, match="time order"):
        aggregator.update("gate", tracked(), 4.0)
    aggregator.update("yard", tracked(), 4.0)  # another camera has its own clock


def test_alert_aggregator_untracked_detections_raise():
    with pytest.raises(ValueError, match="Tracker"):
        AlertAggregator(HAZARDS).update("gate", Detections.empty(NAMES), 0.0)


def test_alert_rule_unknown_setting_raises():
    with pytest.raises(ValidationError, match="min_frame"):
        AlertRule.model_validate({"min_frame": 3})


def test_alert_serialises_to_json():
    alert = flat(feed(AlertAggregator(HAZARDS), [tracked((1, box(100), 0.9, "fire"))] * 5))[0]
    payload = json.loads(json.dumps(alert.model_dump(mode="json")))
    assert payload["class_name"] == "fire"
    assert payload["box"] == [100.0, 100.0, 140.0, 180.0]


def test_aggregator_alerts_only_on_a_track_whose_mean_confidence_reaches_its_class_threshold():
    from hazardvision.detections import Detections
    from hazardvision.video.alerts import AlertAggregator, AlertRule

    def tracked(score: float) -> Detections:
        return Detections.of([[0, 0, 10, 10]], [score], [0], ("no_helmet",), tracker_id=[1],
                             data={"threshold": [0.3]})

    aggregator = AlertAggregator(["no_helmet"], AlertRule(min_frames=3))
    scores = [0.25, 0.26, 0.27, 0.31, 0.45]
    alerts = [aggregator.update("cam", tracked(score), t) for t, score in enumerate(scores)]
    assert [len(a) for a in alerts] == [0, 0, 0, 0, 1]  # held from the third frame, mean 0.308 at the fifth
