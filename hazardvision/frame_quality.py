"""Frame quality before detection: a frame that shows no scene is reported as such, never as a hazard.

A lost signal gives a uniform frame (black, grey, blue) or pure noise; a covered or blinded lens
gives an almost black or a blown-out frame. A detector shown such a frame finds "smoke" in it
(a uniform grey frame scored 0.71-0.76 smoke on the 0.2.0 packs), so these frames skip
detection. For a camera, a frozen view (decoded frames identical, without the sensor noise
of a live picture, for a set time) is one more status, tracked across frames by `FreezeWatch`.

The thresholds were chosen so that no photo of the datasets' val and test splits is flagged
(benchmarks/frame_quality.py measures it on every split; the suite checks the test splits).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np

from hazardvision.images import BGRImage

SAMPLE_SIDE = 256
"""Frames are judged on a nearest-neighbour sample of at most this side: cheap, and it keeps noise as noise."""
UNIFORM_CONTRAST = 3.0
"""Grey-level standard deviation below which a frame is uniform (the darkest real val photo: about 20)."""
DARK_BRIGHTNESS = 12.0
DARK_HIGHLIGHT = 30.0
"""An almost black frame: mean grey under DARK_BRIGHTNESS and its 99th percentile under DARK_HIGHLIGHT."""
BLOWN_OUT_SHARE = 0.95
"""An overexposed frame: this share of its pixels at 250 or more."""
NOISE_CORRELATION = 0.15
"""Correlation of horizontally adjacent sample pixels below which a frame is noise, not a scene."""
FROZEN_DIFFERENCE = 0.05
"""Mean absolute grey difference under which two frames are the same picture (a live camera's sensor
noise alone differs by about 1 grey level per pixel)."""


class FrameStatus(StrEnum):
    OK = "ok"
    NO_SIGNAL = "no_signal"
    """Uniform or pure noise: nothing of a scene reaches the camera."""
    VIEW_OBSTRUCTED = "view_obstructed"
    """Almost black or blown out: the lens is covered, blinded or pointed at a light."""
    FROZEN = "frozen"
    """A camera sends the same picture again and again (cameras only)."""


MEANING: dict[FrameStatus, str] = {
    FrameStatus.OK: "the frame shows a scene",
    FrameStatus.NO_SIGNAL: "no picture reaches the camera (its frames are uniform or pure noise)",
    FrameStatus.VIEW_OBSTRUCTED: "the lens is covered, blinded or pointed at a light (frames almost black or "
                                 "blown out)",
    FrameStatus.FROZEN: "the camera or its stream is stuck (it repeats one picture)",
}
"""What each status means for whoever watches the camera, in one sentence."""


@dataclass(frozen=True)
class FrameQuality:
    """What the check found, with the measures it decided on."""

    status: FrameStatus
    reason: str
    brightness: float
    contrast: float
    correlation: float

    @property
    def ok(self) -> bool:
        return self.status is FrameStatus.OK


def grey_sample(image: BGRImage) -> np.ndarray:
    """The frame in grey, sampled (nearest neighbour) to at most SAMPLE_SIDE a side, as float32."""
    height, width = image.shape[:2]
    step = max(1, -(-max(height, width) // SAMPLE_SIDE))
    sample = image[::step, ::step]
    grey = sample if sample.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(sample), cv2.COLOR_BGR2GRAY)
    return np.asarray(grey, dtype=np.float32)


def assess(image: BGRImage) -> FrameQuality:
    """Judge one decoded frame or photo."""
    return assess_sample(grey_sample(image))


def assess_sample(grey: np.ndarray) -> FrameQuality:
    """Judge a frame by its grey sample (see `grey_sample`)."""
    brightness, contrast = float(grey.mean()), float(grey.std())
    correlation = _neighbour_correlation(grey)

    def verdict(status: FrameStatus, reason: str) -> FrameQuality:
        return FrameQuality(status, reason, round(brightness, 2), round(contrast, 2), round(correlation, 3))

    if brightness < DARK_BRIGHTNESS and float(np.percentile(grey, 99)) < DARK_HIGHLIGHT:
        return verdict(FrameStatus.VIEW_OBSTRUCTED, f"the frame is almost black (mean grey {brightness:.0f}): "
                                                    "the lens may be covered or the scene unlit")
    if float((grey >= 250).mean()) >= BLOWN_OUT_SHARE:
        return verdict(FrameStatus.VIEW_OBSTRUCTED, "the frame is blown out (overexposed): the camera is blinded")
    if contrast < UNIFORM_CONTRAST:
        return verdict(FrameStatus.NO_SIGNAL, f"the frame is uniform (grey level {brightness:.0f}, spread "
                                              f"{contrast:.1f}): no picture reaches the camera")
    if correlation < NOISE_CORRELATION:
        return verdict(FrameStatus.NO_SIGNAL, f"the frame is noise (neighbouring pixels correlate at "
                                              f"{correlation:.2f}): no picture reaches the camera")
    return verdict(FrameStatus.OK, "")


def _neighbour_correlation(grey: np.ndarray) -> float:
    if grey.shape[1] < 2:
        return 1.0
    left, right = grey[:, :-1].ravel(), grey[:, 1:].ravel()
    left, right = left - left.mean(), right - right.mean()
    spread = float(np.sqrt((left * left).sum() * (right * right).sum()))
    return float((left * right).sum() / spread) if spread > 0 else 1.0


class FreezeWatch:
    """Tells when a camera's picture has not changed for `seconds` (one per camera)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: np.ndarray | None = None
        self._since: float | None = None

    def update(self, grey: np.ndarray, timestamp: float) -> bool:
        """Whether the view is frozen as of this frame, given its grey sample (see `grey_sample`)."""
        same = (self._last is not None and self._last.shape == grey.shape
                and float(np.abs(self._last - grey).mean()) < FROZEN_DIFFERENCE)
        self._last = grey
        if not same:
            self._since = timestamp
            return False
        if self._since is None or timestamp < self._since:
            self._since = timestamp
        return timestamp - self._since >= self.seconds


class CameraCondition:
    """One camera's picture over time: frozen detection, and one status alert per episode of bad frames.

    A status other than ok (no_signal, view_obstructed, frozen) alerts once it has held for
    `min_frames` consecutive frames; it alerts again only after the status has changed in between.
    """

    def __init__(self, frozen_seconds: float, min_frames: int) -> None:
        self.freeze = FreezeWatch(frozen_seconds)
        self.min_frames = min_frames
        self._status = FrameStatus.OK
        self._frames = 0
        self._alerted = False

    @property
    def status(self) -> FrameStatus:
        """The status of the camera's latest frame (ok before its first)."""
        return self._status

    def update(self, image: BGRImage, timestamp: float) -> tuple[FrameQuality, bool]:
        """The frame's quality as the camera sees it (frozen replaces ok), and whether it should alert now."""
        grey = grey_sample(image)  # one sample serves both checks
        quality = assess_sample(grey)
        frozen = self.freeze.update(grey, timestamp)
        if quality.ok and frozen:
            quality = FrameQuality(FrameStatus.FROZEN, f"the picture has not changed for {self.freeze.seconds:g} s "
                                   "or more: the camera or its stream is stuck", quality.brightness,
                                   quality.contrast, quality.correlation)
        if quality.status is not self._status:  # a new episode: ok again, or another kind of trouble
            self._status, self._frames, self._alerted = quality.status, 0, False
        self._frames += 1
        alert = not quality.ok and not self._alerted and self._frames >= self.min_frames
        self._alerted = self._alerted or alert
        return quality, alert
