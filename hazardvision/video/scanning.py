"""A video (file, folder of frames or stream) in, hazard events out.

frames -> selection (rate target, motion gate) -> picture check (a frame that shows no scene is a
camera problem, not a place to look for hazards) -> detection -> tracker -> events. Detection is
a function handed in (the CLI runs the packs directly; the service its shared workers), so this
module knows nothing of model packs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hazardvision.detections import Detections
from hazardvision.errors import VideoError
from hazardvision.frame_quality import CameraCondition
from hazardvision.images import BGRImage
from hazardvision.video.events import EventBuilder, HazardEvent
from hazardvision.video.selection import FrameSelector
from hazardvision.video.sources import FrameSource, VideoFrame
from hazardvision.video.tracking import Tracker

Detect = Callable[[BGRImage], Detections]
"""One frame's detections, down to the tracker's weak confidence, each with its class threshold."""
Progress = Callable[[float, int], None]
"""Called after each analysed frame with (seconds of video read, events so far)."""
FrameHook = Callable[[VideoFrame, Detections], None]
"""Called with each analysed frame and its tracked detections (for an annotated copy of the video)."""


@dataclass
class VideoReport:
    """What a scan of one video found, and how much of the video it looked at."""

    source: str
    events: list[HazardEvent] = field(default_factory=list)
    frames_decoded: int = 0
    frames_analysed: int = 0
    skipped_by_rate: int = 0
    skipped_by_motion: int = 0
    flickers: int = 0
    """Tracks shorter than the events' minimum number of frames."""
    video_seconds: float = 0.0
    wall_seconds: float = 0.0
    error: str | None = None
    """Why reading stopped early (a damaged file); the events before it are kept."""

    @property
    def realtime_factor(self) -> float:
        """Seconds of video per second of wall time."""
        return self.video_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def analysed_share(self) -> float:
        return self.frames_analysed / self.frames_decoded if self.frames_decoded else 0.0


def scan_video(
    source: FrameSource, detect: Detect, events: EventBuilder, *, selector: FrameSelector | None = None,
    tracker: Tracker | None = None, condition: CameraCondition | None = None, progress: Progress | None = None,
    on_frame: FrameHook | None = None, stop: threading.Event | None = None, max_seconds: float | None = None,
) -> VideoReport:
    """Read `source` to its end (or `stop`, or `max_seconds` of video) and return its events.

    A file that is damaged part-way ends the scan with the events found up to the damage and the
    reason in `error`; any other failure to read raises `VideoError`.
    """
    selector = selector or FrameSelector()
    tracker = tracker or Tracker()
    condition = condition or CameraCondition(frozen_seconds=10.0, min_frames=events.min_frames)
    report = VideoReport(source=source.name)
    started = time.perf_counter()
    try:
        for frame in source.frames():
            report.frames_decoded += 1
            report.video_seconds = frame.timestamp
            if (stop is not None and stop.is_set()) or (max_seconds is not None and frame.timestamp > max_seconds):
                break
            if not selector.select(frame):
                continue
            pixels = frame.pixels()
            quality, _alert = condition.update(pixels, frame.timestamp)
            report.events += events.add_quality(frame.timestamp, quality)
            found = detect(pixels) if quality.ok else Detections.empty()
            tracked = tracker.update(found, frame.timestamp)
            report.events += events.add(frame.timestamp, pixels, tracked, every=found)
            if on_frame is not None:
                on_frame(frame, tracked)
            if progress is not None:
                progress(frame.timestamp, len(report.events) + events.open_events)
    except VideoError as error:
        if report.frames_decoded == 0 or source.live:
            raise
        report.error = str(error)
    finally:
        source.close()
    report.events += events.finish()
    report.events.sort(key=lambda event: (event.start, event.kind, event.tracker_id or 0))
    report.frames_analysed = selector.analysed
    report.skipped_by_rate, report.skipped_by_motion = selector.skipped_rate, selector.skipped_motion
    report.flickers = events.dropped
    report.wall_seconds = time.perf_counter() - started
    return report
