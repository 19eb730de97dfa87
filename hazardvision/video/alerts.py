"""`AlertAggregator`: one alert per tracked hazard, not one per frame.

A track of a hazard class raises one alert once it has been seen in `min_frames` frames and
`min_seconds` have passed since its first sighting, and (when its detections carry their class's
operating threshold, `data["threshold"]`) while its mean confidence is at that threshold, where a
photo scan would report it: frame noise around the threshold then neither adds nor drops an
alert (all conditions). After that:

- the same track never alerts again, however long it stays or flickers (tracker ids are never
  reused, so a track id is one hazard);
- a new track of the same class whose box (where it started, or where it is when it would
  alert) overlaps the place of an alert raised less than `cooldown_seconds` ago is taken for
  that hazard picked up again by the tracker (after an occlusion, say) and stays silent for good;
  the boxes of an alert's tracks keep its place up to date as the hazard moves;
- once the cooldown has passed, a new track there alerts again: a hazard that comes back is news.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hazardvision.boxes import IntArray, box_iou
from hazardvision.detections import Detections
from hazardvision.errors import InvalidFrame, UnknownClass

Box = tuple[float, float, float, float]


class AlertRule(BaseModel):
    """When a tracked hazard raises an alert."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_frames: int = Field(default=5, ge=1, description="Frames a track must be seen in before it alerts.")
    min_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Seconds from a track's first sighting before it alerts; required together with min_frames.",
    )
    cooldown_seconds: float = Field(
        default=60.0,
        ge=0,
        description="After an alert, new tracks of the same class at an overlapping place stay silent this long.",
    )
    classes: tuple[str, ...] | None = Field(
        default=None,
        description="Hazard classes that alert; by default every hazard class the aggregator is given.",
    )
    overlap_iou: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="IoU from which a new track's box counts as the place of an earlier alert.",
    )
    forget_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long a track that is no longer seen is remembered (far longer than the tracker keeps it).",
    )


class Alert(BaseModel):
    """A hazard that held long enough to tell someone."""

    model_config = ConfigDict(frozen=True)

    alert_id: str = Field(description="Unique id of the alert (uuid4, hex).")
    kind: Literal["hazard", "camera"] = Field(
        default="hazard", description="hazard: a tracked hazard; camera: the camera's picture is lost or tampered "
        "with (class_name is then the frame status: no_signal, view_obstructed or frozen), never a finding.")
    camera_id: str = Field(description="The camera whose frames showed the hazard.")
    class_name: str = Field(description="Catalogue class of the hazard, e.g. 'no_helmet' (for a camera alert, "
                            "the frame status).")
    tracker_id: int = Field(description="Id of the track on that camera.")
    first_seen: float = Field(description="Timestamp (seconds) of the track's first frame.")
    raised_at: float = Field(description="Timestamp (seconds) of the frame that raised the alert.")
    frames: int = Field(description="Frames the track had been seen in when the alert was raised.")
    box: Box = Field(description="The hazard's box (x1, y1, x2, y2 in frame pixels) when the alert was raised.")
    confidence: float = Field(description="Highest detector confidence over the track so far.")


@dataclass
class _Place:
    """Where an alert was raised, following the hazard while its tracks are seen."""

    class_name: str
    raised_at: float
    box: Box


@dataclass
class _TrackRecord:
    first_seen: float
    last_seen: float
    first_box: Box
    box: Box
    confidence: float
    threshold: float = 0.0
    """The class's operating threshold: a track alerts only while its mean confidence reaches it."""
    total: float = 0.0
    """Sum of the track's confidences over its frames."""
    frames: int = 0
    settled: bool = False  # alerted, or silenced as an earlier alert's hazard
    place: _Place | None = None


@dataclass
class _Camera:
    last_timestamp: float = -math.inf
    tracks: dict[tuple[str, int], _TrackRecord] = field(default_factory=dict)
    places: list[_Place] = field(default_factory=list)


class AlertAggregator:
    """Turns one camera's tracked detections into alerts; feed it every frame the tracker returns.

    Args:
        hazard_classes: the catalogue classes that are hazards (others, such as `helmet`, never alert).
        rule: when to alert; its `classes`, if given, must be among `hazard_classes`.
    """

    def __init__(self, hazard_classes: Iterable[str], rule: AlertRule | None = None) -> None:
        self.rule = rule or AlertRule()
        hazards = tuple(hazard_classes)
        if self.rule.classes is not None:
            unknown = sorted(set(self.rule.classes) - set(hazards))
            if unknown:
                raise UnknownClass(
                    f"the alert rule names classes {unknown} that are not hazard classes; "
                    f"choose among {sorted(hazards)}"
                )
        self.classes = frozenset(hazards if self.rule.classes is None else self.rule.classes)
        self._cameras: dict[str, _Camera] = {}

    def update(self, camera_id: str, tracked: Detections, timestamp: float) -> list[Alert]:
        """Alerts raised by this frame (usually none); `tracked` comes from `Tracker.update`."""
        if tracked.tracker_id is None:
            raise ValueError("alerts need tracked detections: pass the detections through a Tracker first")
        camera = self._cameras.setdefault(camera_id, _Camera())
        if not math.isfinite(timestamp) or timestamp < camera.last_timestamp:
            raise InvalidFrame(
                f"frame timestamp {timestamp} of camera {camera_id!r} is not a number of seconds at or after "
                f"the previous frame's {camera.last_timestamp}; send each camera's frames in time order"
            )
        camera.last_timestamp = timestamp
        rule = self.rule
        for key, row in self._rows_by_track(tracked, tracked.tracker_id).items():
            self._observe(camera, key, tracked, row, timestamp)

        alerts: list[Alert] = []
        ready = [
            (key, record)
            for key, record in camera.tracks.items()
            if not record.settled
            and record.last_seen == timestamp
            and record.frames >= rule.min_frames
            and record.total / record.frames >= record.threshold
            and timestamp - record.first_seen >= rule.min_seconds
        ]
        for (class_name, tracker_id), record in sorted(ready, key=lambda item: item[0][1]):
            record.settled = True
            record.place = self._recent_place(camera, class_name, (record.first_box, record.box), timestamp)
            if record.place is not None:
                continue  # the hazard of an alert still in its cooldown, picked up by a new track
            record.place = _Place(class_name, timestamp, record.box)
            camera.places.append(record.place)
            alerts.append(
                Alert(
                    alert_id=uuid.uuid4().hex,
                    camera_id=camera_id,
                    class_name=class_name,
                    tracker_id=tracker_id,
                    first_seen=record.first_seen,
                    raised_at=timestamp,
                    frames=record.frames,
                    box=record.box,
                    confidence=record.confidence,
                )
            )
        self._forget(camera, timestamp)
        return alerts

    def _rows_by_track(self, tracked: Detections, tracker_ids: IntArray) -> dict[tuple[str, int], int]:
        """The most confident row of each alerting (class, track) in the frame."""
        rows: dict[tuple[str, int], int] = {}
        names = tracked.class_name.tolist()
        for row in np.argsort(tracked.confidence, kind="stable").tolist():
            if names[row] in self.classes:
                rows[(names[row], int(tracker_ids[row]))] = row  # later rows score higher
        return rows

    @staticmethod
    def _observe(camera: _Camera, key: tuple[str, int], tracked: Detections, row: int, timestamp: float) -> None:
        x1, y1, x2, y2 = (float(value) for value in tracked.xyxy[row])
        box = (x1, y1, x2, y2)
        confidence = float(tracked.confidence[row])
        thresholds = tracked.data.get("threshold")
        record = camera.tracks.get(key)
        if record is None:
            record = camera.tracks[key] = _TrackRecord(
                timestamp, timestamp, box, box, confidence,
                threshold=float(thresholds[row]) if thresholds is not None else 0.0)
        record.frames += 1
        record.total += confidence
        record.last_seen = timestamp
        record.box = box
        record.confidence = max(record.confidence, confidence)
        if record.place is not None:
            record.place.box = box

    def _recent_place(
        self, camera: _Camera, class_name: str, boxes: tuple[Box, Box], timestamp: float
    ) -> _Place | None:
        """The place of an alert of this class, still in its cooldown, that a track overlaps most.

        A track is compared by where it started as well as where it is: a hazard picked up again
        may have moved on by the time its new track is old enough to alert.
        """
        recent = [
            place
            for place in camera.places
            if place.class_name == class_name and timestamp - place.raised_at < self.rule.cooldown_seconds
        ]
        if not recent:
            return None
        places = np.asarray([place.box for place in recent], dtype=np.float32)
        overlap = box_iou(np.asarray(boxes, dtype=np.float32), places).max(axis=0)
        best = int(np.argmax(overlap))
        return recent[best] if overlap[best] >= self.rule.overlap_iou else None

    def _forget(self, camera: _Camera, timestamp: float) -> None:
        rule = self.rule
        camera.places = [place for place in camera.places if timestamp - place.raised_at < rule.cooldown_seconds]
        stale = [key for key, record in camera.tracks.items() if timestamp - record.last_seen > rule.forget_seconds]
        for key in stale:
            del camera.tracks[key]


def camera_alert(camera_id: str, status: str, timestamp: float, *, frames: int, width: int, height: int) -> Alert:
    """An alert that the camera's picture is lost or tampered with (status: no_signal, view_obstructed, frozen)."""
    return Alert(alert_id=uuid.uuid4().hex, kind="camera", camera_id=camera_id, class_name=status, tracker_id=0,
                 first_seen=timestamp, raised_at=timestamp, frames=frames, box=(0.0, 0.0, float(width), float(height)),
                 confidence=1.0)
