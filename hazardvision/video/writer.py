"""An annotated copy of a video: the analysed frames with their tracked hazards drawn, at their own times."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.error

from hazardvision.annotate import HazardAnnotator
from hazardvision.catalogue import Catalogue
from hazardvision.detections import Detections
from hazardvision.errors import VideoError
from hazardvision.video.sources import VideoFrame

TIME_BASE = Fraction(1, 1000)
"""Frames keep their video time to the millisecond: the motion gate makes the analysed rate uneven."""


class AnnotatedVideo:
    """Writes H.264 MP4 (any suffix FFmpeg knows picks its container); use as a context manager."""

    def __init__(self, path: Path, catalogue: Catalogue) -> None:
        self.path = path
        self.annotator = HazardAnnotator(catalogue)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(path), mode="w")
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise VideoError(f"cannot write the annotated video {path}: {error}") from None
        self._stream: av.VideoStream | None = None
        self._last_pts = -1

    def write(self, frame: VideoFrame, tracked: Detections) -> None:
        picture = self.annotator.annotate(frame.pixels(), tracked)
        height, width = picture.shape[:2]
        picture = picture[: height - height % 2, : width - width % 2]  # yuv420p wants even sides
        if self._stream is None:
            self._stream = self._container.add_stream("libx264", rate=30)
            self._stream.width, self._stream.height = picture.shape[1], picture.shape[0]
            self._stream.pix_fmt = "yuv420p"
            self._stream.time_base = TIME_BASE
            self._stream.options = {"preset": "veryfast", "crf": "26"}
        pts = max(round(frame.timestamp / TIME_BASE), self._last_pts + 1)
        out = av.VideoFrame.from_ndarray(picture, format="bgr24")
        out.pts, out.time_base = pts, TIME_BASE
        self._last_pts = pts
        for packet in self._stream.encode(out):
            self._container.mux(packet)

    def close(self) -> None:
        if self._stream is not None:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> AnnotatedVideo:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
