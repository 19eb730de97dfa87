"""Which frames to analyse: a target analysis rate, and a motion gate with a maximum gap.

A 30 fps camera shows the same scene thirty times a second; a detector on two cores analyses a
few frames a second. `FrameSelector` first keeps at most `fps` frames a second (decided on the
frame's time alone, before it is converted to pixels), then skips a frame whose small grey
version barely differs from the last analysed one, unless `max_gap` seconds have passed since
that one: a scene where nothing moves is still looked at, and a hazard that stands still keeps
its track.

Motion is the share of cells of a 160x90 area-averaged grey thumbnail whose grey level changed
by more than `cell_change` since the last analysed frame. Area averaging over about 12x12 pixels
of a 1080p frame divides sensor noise by about 12, so noise alone moves no cell, while a worker
walking through a 1080p scene moves about 1% of them.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hazardvision.video.sources import GreyImage, VideoFrame

THUMBNAIL = (160, 90)
"""(width, height) of the motion gate's grey thumbnail."""


class SelectionSettings(BaseModel):
    """How frames are picked for analysis."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fps: float | None = Field(default=5.0, gt=0, description="Frames analysed per second of video at most; "
                              "null analyses every frame.")
    motion: bool = Field(default=True, description="Skip frames that barely differ from the last analysed one.")
    motion_share: float = Field(default=0.002, ge=0, le=1, description="Share of thumbnail cells that must change "
                                "for a frame to count as moved.")
    cell_change: float = Field(default=6.0, gt=0, description="Grey levels a thumbnail cell must change by.")
    max_gap: float = Field(default=2.0, gt=0, description="Seconds after which a frame is analysed anyway.")


class FrameSelector:
    """Decides, frame by frame in time order, which frames to analyse; counts what it skipped."""

    def __init__(self, settings: SelectionSettings | None = None) -> None:
        self.settings = settings or SelectionSettings()
        self._last_time = -math.inf
        self._last_grey: np.ndarray | None = None
        self.analysed = 0
        self.skipped_rate = 0
        self.skipped_motion = 0

    def select(self, frame: VideoFrame) -> bool:
        """True to analyse this frame (it then becomes the reference for the motion gate)."""
        settings = self.settings
        since = frame.timestamp - self._last_time
        # Half a frame of slack: a 30 fps video sampled at 5 fps takes every sixth frame, not every seventh.
        if settings.fps is not None and since < 1.0 / settings.fps - 0.5 / max(settings.fps * 6, 30.0):
            self.skipped_rate += 1
            return False
        grey: GreyImage | None = None
        if settings.motion:
            grey = frame.grey(*THUMBNAIL)
            if self._last_grey is not None and since < settings.max_gap and not self._moved(grey):
                self.skipped_motion += 1
                return False
        self._last_time, self._last_grey = frame.timestamp, grey
        self.analysed += 1
        return True

    def _moved(self, grey: GreyImage) -> bool:
        assert self._last_grey is not None
        changed = np.abs(grey.astype(np.int16) - self._last_grey.astype(np.int16)) > self.settings.cell_change
        return bool(changed.mean() >= self.settings.motion_share)
