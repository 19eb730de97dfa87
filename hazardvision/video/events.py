"""Hazard events: one tracked hazard over time, not one detection per frame.

An event is one track of one hazard class: when it started and ended, its peak confidence, the
frames that saw it, the catalogue's word on the hazard, and its best frame (the sharpest, least
clipped, most confident view), saved as a JPEG with the hazard boxed and, when asked, people
blurred. A track needs `min_frames` frames to become an event, so one-frame flickers never do, and
(when its detections carry their class's operating threshold) a mean confidence at that threshold,
as an alert does, so that a track kept alive by weak detections is not a hazard. It ends once the
tracker has not shown it for `end_after` seconds. Frame-quality problems
(obstructed, no signal, frozen) held for `min_frames` analysed frames are camera events.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hazardvision.annotate import HazardAnnotator, encode_jpeg
from hazardvision.catalogue import Catalogue, Category
from hazardvision.detections import Detections
from hazardvision.frame_quality import FrameQuality, FrameStatus
from hazardvision.images import BGRImage
from hazardvision.results import HazardInfo

Box = tuple[float, float, float, float]
SHARPNESS_SCALE = 100.0
"""Laplacian variance at which a view counts as half sharp (a blurred 1080p crop: about 20; a crisp one: 500+)."""
EDGE_MARGIN = 2.0
"""A box within this many pixels of the frame's edge is clipped: the object runs out of the picture."""
BLURRED_CATEGORIES = (Category.PERSON, Category.PPE)
"""Detections blurred in stored frames when people are blurred: a person, and what a person wears (faces)."""


class HazardEvent(BaseModel):
    """One hazard seen over a stretch of video, or a stretch where the camera's picture was lost."""

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(description="Unique id of the event (uuid4, hex).")
    kind: Literal["hazard", "camera"] = Field(description="hazard: a tracked hazard; camera: the picture was "
                                              "obstructed, lost or frozen (class_name is then that status).")
    camera: str = Field(description="The camera or video the event comes from.")
    class_name: str = Field(description="Catalogue class of the hazard, or the frame status of a camera event.")
    tracker_id: int | None = Field(description="The hazard's track (null for a camera event).")
    start: float = Field(description="Seconds into the video (or stream) of the first frame that saw it.")
    end: float = Field(description="Seconds of the last frame that saw it.")
    frames: int = Field(description="Analysed frames that saw it.")
    peak_confidence: float | None = Field(description="Highest detector confidence (null for a camera event).")
    box: Box | None = Field(description="The hazard's box in its best frame (x1, y1, x2, y2, pixels).")
    best_frame_time: float | None = Field(description="Seconds of the best frame.")
    hazard: HazardInfo | None = Field(description="What the catalogue says about the hazard (null for a camera "
                                      "event).")
    snapshot: str | None = Field(default=None, description="Where the best frame's JPEG was stored, if it was.")
    reason: str | None = Field(default=None, description="Why the camera's picture was judged lost (camera events).")

    @property
    def duration(self) -> float:
        return self.end - self.start


def view_score(image: BGRImage, box: Box, confidence: float) -> float:
    """How good a view of an object this is: confident, sharp, and not cut by the frame's edge."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (round(v) for v in box)
    crop = image[max(0, y1):min(height, y2), max(0, x1):min(width, x2)]
    if crop.size == 0:
        return 0.0
    sharpness = float(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())
    clipped = (box[0] <= EDGE_MARGIN or box[1] <= EDGE_MARGIN or box[2] >= width - EDGE_MARGIN
               or box[3] >= height - EDGE_MARGIN)
    return confidence * sharpness / (sharpness + SHARPNESS_SCALE) * (0.5 if clipped else 1.0)


@dataclass
class _OpenEvent:
    class_name: str
    tracker_id: int
    start: float
    end: float
    frames: int = 0
    peak: float = 0.0
    total: float = 0.0
    threshold: float = 0.0
    best_score: float = -1.0
    best_time: float = 0.0
    best_box: Box = (0.0, 0.0, 0.0, 0.0)
    best_image: BGRImage | None = None
    best_detections: Detections | None = None


@dataclass
class _OpenCondition:
    status: FrameStatus
    reason: str
    start: float
    end: float
    frames: int = 0


SnapshotWriter = Callable[[str, bytes], str]
"""Stores an event's JPEG under its id and says where (a path, a URL)."""


def folder_writer(folder: Path) -> SnapshotWriter:
    """Snapshots as `folder/<event id>.jpg`."""
    folder.mkdir(parents=True, exist_ok=True)

    def write(event_id: str, jpeg: bytes) -> str:
        path = folder / f"{event_id}.jpg"
        path.write_bytes(jpeg)
        return str(path)

    return write


class EventBuilder:
    """Turns one camera's tracked detections, frame by frame in time order, into events."""

    def __init__(self, catalogue: Catalogue, camera: str, *, min_frames: int = 3, end_after: float = 3.0,
                 snapshots: SnapshotWriter | None = None, blur_people: bool = False) -> None:
        if min_frames < 1 or end_after <= 0:
            raise ValueError("an event needs min_frames >= 1 and end_after > 0")
        self.catalogue, self.camera = catalogue, camera
        self.min_frames, self.end_after = min_frames, end_after
        self.snapshots, self.blur_people = snapshots, blur_people
        self._annotator = HazardAnnotator(catalogue)
        self._open: dict[tuple[int, str], _OpenEvent] = {}
        self._condition: _OpenCondition | None = None
        self.dropped = 0
        """Tracks that ended without becoming events (flickers, weak tracks)."""

    def add(self, timestamp: float, image: BGRImage, tracked: Detections,
            every: Detections | None = None) -> list[HazardEvent]:
        """One analysed frame: `tracked` are its detections with tracker ids, `every` all its detections
        (what is blurred in a stored frame; default `tracked`). Returns the events that ended."""
        thresholds = tracked.data.get("threshold")
        for i in range(len(tracked)):
            class_name = str(tracked.class_name[i])
            if tracked.tracker_id is None or not self.catalogue.entry(class_name).hazard:
                continue
            key = (int(tracked.tracker_id[i]), class_name)
            event = self._open.get(key) or _OpenEvent(class_name, key[0], timestamp, timestamp)
            self._open[key] = event
            confidence = float(tracked.confidence[i])
            box: Box = tuple(float(v) for v in tracked.xyxy[i])  # type: ignore[assignment]
            event.end, event.frames, event.peak = timestamp, event.frames + 1, max(event.peak, confidence)
            event.total += confidence
            if thresholds is not None:
                event.threshold = float(thresholds[i])
            score = view_score(image, box, confidence)
            if score > event.best_score:
                event.best_score, event.best_time, event.best_box = score, timestamp, box
                event.best_image, event.best_detections = image, every if every is not None else tracked
        return self._close(lambda event: timestamp - event.end > self.end_after)

    def add_quality(self, timestamp: float, quality: FrameQuality) -> list[HazardEvent]:
        """One analysed frame's picture check; returns a camera event when a bad stretch ended."""
        condition = self._condition
        if quality.ok:
            self._condition = None
            return [self._camera_event(condition)] if condition and condition.frames >= self.min_frames else []
        if condition is None or condition.status != quality.status:
            ended = [self._camera_event(condition)] if condition and condition.frames >= self.min_frames else []
            self._condition = _OpenCondition(quality.status, quality.reason, timestamp, timestamp, 1)
            return ended
        condition.end, condition.frames = timestamp, condition.frames + 1
        return []

    def finish(self) -> list[HazardEvent]:
        """Close every open event (the video ended)."""
        events = self._close(lambda _event: True)
        condition, self._condition = self._condition, None
        if condition is not None and condition.frames >= self.min_frames:
            events.append(self._camera_event(condition))
        return events

    @property
    def open_events(self) -> int:
        return len(self._open)

    def _close(self, ended: Callable[[_OpenEvent], bool]) -> list[HazardEvent]:
        events = []
        for key in [key for key, event in self._open.items() if ended(event)]:
            event = self._open.pop(key)
            if event.frames < self.min_frames or event.total / event.frames < event.threshold:
                self.dropped += 1  # a flicker, or a track of weak detections that a photo scan would not report
                continue
            events.append(self._hazard_event(event))
        return sorted(events, key=lambda e: (e.start, e.tracker_id or 0))

    def _hazard_event(self, event: _OpenEvent) -> HazardEvent:
        entry = self.catalogue.entry(event.class_name)
        hazard = HazardInfo.of(entry)
        event_id = uuid.uuid4().hex
        snapshot = None
        if self.snapshots is not None and event.best_image is not None:
            snapshot = self.snapshots(event_id, encode_jpeg(self._best_view(event)))
        return HazardEvent(
            event_id=event_id, kind="hazard", camera=self.camera, class_name=event.class_name,
            tracker_id=event.tracker_id, start=round(event.start, 3), end=round(event.end, 3), frames=event.frames,
            peak_confidence=round(event.peak, 4), box=tuple(round(v, 1) for v in event.best_box),  # type: ignore[arg-type]
            best_frame_time=round(event.best_time, 3), hazard=hazard, snapshot=snapshot)

    def _camera_event(self, condition: _OpenCondition) -> HazardEvent:
        return HazardEvent(
            event_id=uuid.uuid4().hex, kind="camera", camera=self.camera, class_name=condition.status.value,
            tracker_id=None, start=round(condition.start, 3), end=round(condition.end, 3), frames=condition.frames,
            peak_confidence=None, box=None, best_frame_time=None, hazard=None, reason=condition.reason)

    def _best_view(self, event: _OpenEvent) -> BGRImage:
        """The best frame with the event's hazard boxed (people blurred first, when asked)."""
        assert event.best_image is not None
        image = event.best_image
        if self.blur_people and event.best_detections is not None:
            image = blur_people(image, event.best_detections, self.catalogue)
        x1, y1, x2, y2 = event.best_box
        one = Detections(xyxy=np.array([[x1, y1, x2, y2]], np.float32), confidence=np.array([event.peak], np.float32),
                         class_id=np.zeros(1, np.int64), class_names=(event.class_name,))
        return self._annotator.annotate(image, one)


def blur_people(image: BGRImage, detections: Detections, catalogue: Catalogue) -> BGRImage:
    """A copy of `image` with every person and everything a person wears blurred beyond recognition."""
    out = image.copy()
    height, width = out.shape[:2]
    for i in range(len(detections)):
        if catalogue.entry(str(detections.class_name[i])).category not in BLURRED_CATEGORIES:
            continue
        x1, y1, x2, y2 = (round(float(v)) for v in detections.xyxy[i])
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        kernel = max(3, (max(x2 - x1, y2 - y1) // 4) | 1)
        out[y1:y2, x1:x2] = cv2.GaussianBlur(out[y1:y2, x1:x2], (kernel, kernel), 0)
    return out
