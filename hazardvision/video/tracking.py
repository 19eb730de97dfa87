"""`Tracker`: ByteTrack-style multi-object tracking of one camera's detections, in numpy only.

Each frame, tracks are moved forward by a constant-velocity Kalman filter and matched to the
detections by IoU, class by class, with an optimal assignment:

1. confident detections (`high_threshold` and above) against confirmed and recently lost tracks;
2. the remaining weak detections (`low_threshold` up to `high_threshold`) against the confirmed
   tracks still unmatched: ByteTrack's second stage, which keeps a track alive through frames
   where the object is partly hidden or blurred and the detector is unsure;
3. the remaining confident detections against tentative tracks (seen once, not yet shown).

A detection that carries the operating threshold of its class (`data["threshold"]`, set by the
model pack) counts as confident from `start_share` of that threshold when that is lower than
`high_threshold` or `new_track_threshold`: every hazard a photo scan reports can then start and
hold a track, even in frames where noise puts it a little under its threshold (the alert
aggregator still alerts only on a track seen at its threshold at least once).

Confident detections left over (`new_track_threshold` and above) start tentative tracks; a
tentative track is confirmed after `min_hits` consecutive matches, and dropped at its first miss.
A confirmed track that goes unmatched is kept as lost for `max_age_seconds`, so that it can take
its object back. Ages are measured in the frames' timestamps, not in frames, so a camera whose
frame rate changes (stride, motion gate) keeps the same behaviour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum
from typing import Self

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hazardvision.boxes import IntArray, box_iou
from hazardvision.detections import Detections
from hazardvision.errors import InvalidFrame
from hazardvision.video.assignment import linear_assignment
from hazardvision.video.kalman import BoxKalmanFilter, Matrix, Vector, xyah_to_xyxy, xyxy_to_xyah


class TrackerSettings(BaseModel):
    """How detections become tracks; the defaults are ByteTrack's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    high_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Confidence from which a detection is matched in the first stage."
    )
    low_threshold: float = Field(
        default=0.1, ge=0, le=1, description="Confidence below which a detection is ignored by the tracker."
    )
    new_track_threshold: float = Field(
        default=0.6, ge=0, le=1, description="Confidence an unmatched detection needs to start a new track."
    )
    match_iou: float = Field(
        default=0.2, ge=0, lt=1, description="IoU a confident detection must exceed to continue a track."
    )
    low_match_iou: float = Field(
        default=0.5, ge=0, lt=1, description="IoU a weak detection must exceed to continue a track."
    )
    tentative_match_iou: float = Field(
        default=0.3, ge=0, lt=1, description="IoU a detection must exceed to confirm a tentative track."
    )
    min_hits: int = Field(
        default=2, ge=1, description="Consecutive matches that confirm a track (on a camera's first frame: one)."
    )
    max_age_seconds: float = Field(
        default=1.0, gt=0, description="How long an unmatched track is kept to take its object back, in seconds."
    )

    start_share: float = Field(
        default=0.8, gt=0, le=1, description="Share of a detection's class threshold (data['threshold']) from "
        "which it counts as confident and may start a track: a little hysteresis for noisy frames.")

    @model_validator(mode="after")
    def _ordered_thresholds(self) -> Self:
        if self.low_threshold > self.high_threshold:
            raise ValueError("low_threshold must not exceed high_threshold")
        return self


class TrackState(Enum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"


@dataclass
class _Track:
    """One object followed over frames; `tracker_id` is given when the track is confirmed."""

    mean: Vector
    covariance: Matrix
    class_name: str
    state: TrackState
    last_seen: float
    hits: int = 1
    tracker_id: int | None = None

    @property
    def box(self) -> Vector:
        return xyah_to_xyxy(self.mean)


class Tracker:
    """Tracks the detections of one camera; call `update` with every processed frame in time order."""

    def __init__(self, settings: TrackerSettings | None = None, kalman: BoxKalmanFilter | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._kalman = kalman or BoxKalmanFilter()
        self._tracks: list[_Track] = []
        self._last_timestamp: float | None = None
        self._next_id = 1

    @property
    def active_tracks(self) -> int:
        """Tracks kept in memory: confirmed, lost and tentative."""
        return len(self._tracks)

    def update(self, detections: Detections, timestamp: float) -> Detections:
        """The detections of one frame that belong to confirmed tracks, with their `tracker_id` set.

        `timestamp` is in seconds (for example the frame's position in the video, or wall-clock
        time for a live stream) and must not go back in time.
        """
        dt = self._advance_clock(timestamp)
        first_frame = dt is None
        settings = self.settings
        # Age by time, whatever the state: after a long gap without frames nothing is trusted.
        self._tracks = [track for track in self._tracks if timestamp - track.last_seen <= settings.max_age_seconds]
        for track in self._tracks:
            if track.state is TrackState.LOST:
                track.mean[7] = 0.0  # ByteTrack: a lost object's size is not extrapolated
            track.mean, track.covariance = self._kalman.predict(track.mean, track.covariance, dt or 0.0)

        confidence = detections.confidence
        reported = detections.data.get("threshold")
        floor = (np.full(len(detections), np.inf, np.float32) if reported is None
                 else reported.astype(np.float32) * np.float32(settings.start_share))
        high_threshold = np.minimum(settings.high_threshold, floor)
        new_track_threshold = np.minimum(settings.new_track_threshold, floor)
        high = np.flatnonzero(confidence >= high_threshold)
        low = np.flatnonzero((confidence >= settings.low_threshold) & (confidence < high_threshold))
        established = [track for track in self._tracks if track.state is not TrackState.TENTATIVE]
        tentative = [track for track in self._tracks if track.state is TrackState.TENTATIVE]
        matched: dict[int, _Track] = {}

        leftover, high = self._associate(established, detections, high, settings.match_iou, matched)
        still_confirmed = [track for track in leftover if track.state is TrackState.CONFIRMED]
        missed, _ = self._associate(still_confirmed, detections, low, settings.low_match_iou, matched)
        for track in missed:
            track.state = TrackState.LOST
        unconfirmed, high = self._associate(tentative, detections, high, settings.tentative_match_iou, matched)
        gone = {id(track) for track in unconfirmed}
        self._tracks = [track for track in self._tracks if id(track) not in gone]

        for index, track in matched.items():
            self._correct(track, detections, index, timestamp)
        for index in high[confidence[high] >= new_track_threshold[high]]:
            matched[int(index)] = self._start(detections, int(index), timestamp, confirm=first_frame)

        shown = sorted(index for index, track in matched.items() if track.state is TrackState.CONFIRMED)
        ids = np.asarray([matched[index].tracker_id for index in shown], dtype=np.int64)
        return replace(detections[np.asarray(shown, dtype=np.int64)], tracker_id=ids)

    def _advance_clock(self, timestamp: float) -> float | None:
        """Seconds since the previous frame (None on the first), refusing frames from the past."""
        if not math.isfinite(timestamp):
            raise InvalidFrame(f"frame timestamp must be a finite number of seconds, got {timestamp!r}")
        previous = self._last_timestamp
        if previous is not None and timestamp < previous:
            raise InvalidFrame(
                f"frame timestamp {timestamp} is older than the previous frame's {previous}; send each "
                "camera's frames in time order, or use a new tracker for a new video"
            )
        self._last_timestamp = timestamp
        return None if previous is None else timestamp - previous

    def _associate(
        self,
        tracks: list[_Track],
        detections: Detections,
        candidates: IntArray,
        min_iou: float,
        matched: dict[int, _Track],
    ) -> tuple[list[_Track], IntArray]:
        """Match `tracks` to the detections at `candidates`; returns the tracks and candidates left over."""
        if not tracks or not len(candidates):
            return tracks, candidates
        predicted = np.stack([track.box for track in tracks]).astype(np.float32)
        iou = box_iou(predicted, detections.xyxy[candidates])
        track_classes = np.asarray([track.class_name for track in tracks])
        same_class = track_classes[:, None] == detections.class_name[candidates][None, :]
        # Class-aware: a helmet box must not continue a no_helmet track, however well it overlaps.
        cost: NDArray[np.float64] = 1.0 - np.where(same_class, iou, 0.0).astype(np.float64)
        pairs, free_tracks, free_candidates = linear_assignment(cost, 1.0 - min_iou)
        for row, column in pairs:
            matched[int(candidates[column])] = tracks[row]
        return [tracks[row] for row in free_tracks], candidates[free_candidates]

    def _correct(self, track: _Track, detections: Detections, index: int, timestamp: float) -> None:
        """Fold a matched detection into its track, confirming or recovering the track."""
        measurement = xyxy_to_xyah(detections.xyxy[index])
        track.mean, track.covariance = self._kalman.update(track.mean, track.covariance, measurement)
        track.last_seen = timestamp
        track.hits += 1
        if track.state is TrackState.LOST:
            track.state = TrackState.CONFIRMED
        elif track.state is TrackState.TENTATIVE and track.hits >= self.settings.min_hits:
            self._confirm(track)

    def _start(self, detections: Detections, index: int, timestamp: float, *, confirm: bool) -> _Track:
        mean, covariance = self._kalman.initiate(xyxy_to_xyah(detections.xyxy[index]))
        track = _Track(mean, covariance, str(detections.class_name[index]), TrackState.TENTATIVE, timestamp)
        if confirm or self.settings.min_hits <= 1:
            self._confirm(track)
        self._tracks.append(track)
        return track

    def _confirm(self, track: _Track) -> None:
        # Ids are given at confirmation, so the ids a user sees count up without gaps left by
        # tentative tracks that never made it; they are never reused.
        track.state = TrackState.CONFIRMED
        track.tracker_id = self._next_id
        self._next_id += 1
