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

from hazardvision.catalogue import Catalogue
from hazardvision.detections import Detections
from hazardvision.errors import VideoError
from hazardvision.frame_quality import CameraCondition
from hazardvision.images import BGRImage
from hazardvision.video.events import EventBuilder, HazardEvent, SnapshotWriter
from hazardvision.video.selection import FrameSelector, SelectionSettings
from hazardvision.video.sources import FrameSource, VideoFrame
from hazardvision.video.tracking import Tracker, TrackerSettings

Detect = Callable[[BGRImage], Detections]
"""One frame's detections, down to the tracker's weak confidence, each with its class threshold."""
Progress = Callable[[float, int], None]
"""Called after each analysed frame with (seconds of video read, events so far)."""
FrameHook = Callable[[VideoFrame, Detections], None]
"""Called with each analysed frame and its tracked detections (for an annotated copy of the video)."""
Found = Callable[[list[HazardEvent]], None]
"""Called with the events that ended, as soon as they end (a job shows them while the scan goes on)."""
WeakDetect = Callable[[BGRImage, float], Detections]
"""One frame's detections down to the given weak confidence (the tracker's), each with its class threshold."""


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
    found: Found | None = None,
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

    def ended(events: list[HazardEvent]) -> None:
        report.events.extend(events)
        if events and found is not None:
            found(events)

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
            ended(events.add_quality(frame.timestamp, quality))
            seen = detect(pixels) if quality.ok else Detections.empty()
            tracked = tracker.update(seen, frame.timestamp)
            ended(events.add(frame.timestamp, pixels, tracked, every=seen))
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
    ended(events.finish())
    report.events.sort(key=lambda event: (event.start, event.kind, event.tracker_id or 0))
    report.frames_analysed = selector.analysed
    report.skipped_by_rate, report.skipped_by_motion = selector.skipped_rate, selector.skipped_motion
    report.flickers = events.dropped
    report.wall_seconds = time.perf_counter() - started
    return report


@dataclass(frozen=True)
class VideoScanSettings:
    """How `scan_source` looks at a video: what `hazardvision scan-video` and the service's video jobs share."""

    fps: float | None = 5.0
    """Frames analysed per second of video at most (None: every frame)."""
    motion: bool = True
    max_gap: float = 2.0
    min_frames: int = 3
    blur_people: bool = False
    frozen_seconds: float = 10.0

    @property
    def keep(self) -> float:
        """Seconds a track (and an event) outlives its last sighting: longer than the longest gap between analysed
        frames, or a still hazard would restart."""
        return max(1.0, 2 * self.max_gap, 3.0 / self.fps if self.fps else 0.0)


def scan_source(
    source: FrameSource, detect: WeakDetect, catalogue: Catalogue, settings: VideoScanSettings | None = None, *,
    camera: str | None = None, snapshots: SnapshotWriter | None = None, progress: Progress | None = None,
    on_frame: FrameHook | None = None, found: Found | None = None, stop: threading.Event | None = None,
    max_seconds: float | None = None,
) -> VideoReport:
    """`scan_video` with the selector, tracker and event builder that `settings` describe; `camera` names the
    events' camera (default: the source's name)."""
    settings = settings or VideoScanSettings()
    tracker = Tracker(TrackerSettings(max_age_seconds=settings.keep))
    builder = EventBuilder(catalogue, camera or source.name, min_frames=settings.min_frames, end_after=settings.keep,
                           snapshots=snapshots, blur_people=settings.blur_people)
    weak = tracker.settings.low_threshold
    selection = SelectionSettings(fps=settings.fps, motion=settings.motion, max_gap=settings.max_gap)
    return scan_video(source, lambda pixels: detect(pixels, weak), builder, selector=FrameSelector(selection),
                      tracker=tracker, condition=CameraCondition(frozen_seconds=settings.frozen_seconds,
                                                                 min_frames=settings.min_frames),
                      progress=progress, on_frame=on_frame, stop=stop, max_seconds=max_seconds, found=found)
