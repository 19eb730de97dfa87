"""Short test videos made at test time from real dataset photos: each photo held for a while, with
sensor noise on every frame and a slow pan, so that a held photo is a live scene, not a frozen one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


@dataclass(frozen=True)
class Shot:
    """One photo shown from `start` for `seconds` seconds of the clip; no photo: a covered lens (black)."""

    photo: Path | None
    start: float
    seconds: float

    @property
    def end(self) -> float:
        return self.start + self.seconds


def shots(photos: Sequence[Path], seconds: float) -> list[Shot]:
    return [Shot(photo, i * seconds, seconds) for i, photo in enumerate(photos)]


def clip_frames(plan: Sequence[Shot], *, fps: int, size: tuple[int, int], noise: float = 3.0, pan: float = 8.0,
                seed: int = 0) -> Iterator[np.ndarray]:
    """BGR frames of the plan: each photo letterboxed into `size`, panning `pan` pixels a second, plus noise."""
    width, height = size
    rng = np.random.default_rng(seed)
    # A few noise fields, cycled: fresh sensor noise on every frame at a fraction of the cost.
    fields = [rng.normal(0, noise, (height, width, 3)).astype(np.int16) for _ in range(5)]
    count = 0
    for shot in plan:
        if shot.photo is None:
            for _ in range(round(shot.seconds * fps)):
                count += 1
                yield np.clip(fields[count % len(fields)], 0, 255).astype(np.uint8)
            continue
        photo = cv2.imread(str(shot.photo))
        scale = min(width / photo.shape[1], height / photo.shape[0]) * 0.95
        scaled = cv2.resize(photo, (int(photo.shape[1] * scale), int(photo.shape[0] * scale)),
                            interpolation=cv2.INTER_AREA)
        for index in range(round(shot.seconds * fps)):
            canvas = np.full((height, width, 3), 40, np.uint8)
            shift = int(pan * index / fps)
            x = (width - scaled.shape[1]) // 2 + shift - int(pan * shot.seconds / 2)
            y = (height - scaled.shape[0]) // 2
            x0, x1 = max(0, x), min(width, x + scaled.shape[1])
            canvas[y:y + scaled.shape[0], x0:x1] = scaled[:, x0 - x:x1 - x]
            count += 1
            yield np.clip(canvas.astype(np.int16) + fields[count % len(fields)], 0, 255).astype(np.uint8)


def write_clip(path: Path, frames: Iterator[np.ndarray], *, fps: int, codec: str = "libx264") -> Path:
    """Encode BGR frames as a video file (H.264 in MP4 by default)."""
    with av.open(str(path), mode="w") as container:
        stream = None
        for index, frame in enumerate(frames):
            if stream is None:
                stream = container.add_stream(codec, rate=fps)
                stream.width, stream.height = frame.shape[1], frame.shape[0]
                stream.pix_fmt = "yuv420p" if codec != "mjpeg" else "yuvj420p"
                stream.options = {"preset": "ultrafast"} if codec == "libx264" else {}
            picture = av.VideoFrame.from_ndarray(frame, format="bgr24")
            picture.pts, picture.time_base = index, Fraction(1, fps)
            for packet in stream.encode(picture):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode(None):
                container.mux(packet)
    return path
