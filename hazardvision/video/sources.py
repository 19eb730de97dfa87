"""Where video frames come from: files, folders of frames and live streams, decoded with PyAV.

PyAV (FFmpeg's libraries) rather than OpenCV's `VideoCapture`: it reports why a file or stream
fails instead of returning an empty frame, gives each frame its presentation time (so events
carry real video times, and variable frame rates stay right), exposes FFmpeg's options per input
(RTSP over TCP, open and read timeouts), and converts a frame to a small grey thumbnail inside
FFmpeg, so that frames the rate target or the motion gate skip are never converted to full BGR.

- `VideoFile`: mp4, avi, mkv, mov (and m4v, webm), read as fast as the caller consumes it; a file
  that stops decoding part-way raises `VideoDamaged` after the frames before the damage.
- `FrameFolder`: photos sorted by name, at a nominal frame rate.
- `LiveStream`: rtsp, rtsps, http, https (MJPEG or any container FFmpeg reads), from a host in the
  networks the administrator allows; a reader thread keeps only the newest frame, so latency does
  not grow when analysis is slower than the camera, and reconnects with backoff when it drops.
"""

from __future__ import annotations

import ipaddress
import math
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import av
import av.error
import numpy as np
from numpy.typing import NDArray

from hazardvision.errors import InvalidImage, StreamRefused, VideoDamaged, VideoError
from hazardvision.images import DEFAULT_MAX_PIXELS, BGRImage, load_image

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm")
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
DEFAULT_STREAM_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "::1/128", "fc00::/7")
"""Private ranges and loopback: cameras live there. Link-local (169.254.0.0/16, cloud metadata) is not
in it; public hosts need an explicit `HAZARDVISION_STREAM_NETWORKS` entry (0.0.0.0/0 for any)."""
GreyImage = NDArray[np.uint8]


class VideoFrame:
    """One decoded frame: its time in the source, converted to pixels only when asked."""

    def __init__(self, timestamp: float, index: int, *, frame: av.VideoFrame | None = None,
                 pixels: BGRImage | None = None) -> None:
        if frame is None and pixels is None:
            raise ValueError("a video frame needs a decoded frame or its pixels")
        self.timestamp = timestamp
        """Seconds from the start of the source (a file's presentation time; a stream's reading time)."""
        self.index = index
        """Position among the frames the source decoded, from 0."""
        self._frame = frame
        self._pixels = pixels

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        if self._frame is not None:
            return self._frame.width, self._frame.height
        assert self._pixels is not None
        return int(self._pixels.shape[1]), int(self._pixels.shape[0])

    def pixels(self) -> BGRImage:
        """(height, width, 3) uint8 BGR, converted once."""
        if self._pixels is None:
            assert self._frame is not None
            self._pixels = np.ascontiguousarray(self._frame.to_ndarray(format="bgr24"))
        return self._pixels

    def grey(self, width: int, height: int) -> GreyImage:
        """A small grey version (area-averaged, so sensor noise averages out) for the motion gate."""
        if self._frame is not None and self._pixels is None:
            small = self._frame.reformat(width=width, height=height, format="gray", interpolation="AREA")
            return np.ascontiguousarray(small.to_ndarray()[:height, :width])
        import cv2  # noqa: PLC0415  (only for frames that came as pixels)

        grey = cv2.cvtColor(self.pixels(), cv2.COLOR_BGR2GRAY)
        return np.asarray(cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA), dtype=np.uint8)


class FrameSource(Protocol):
    """Frames in time order; `close` ends a live source's reading."""

    name: str
    live: bool

    @property
    def duration(self) -> float | None:
        """Seconds of video, when known (files and folders)."""

    def frames(self) -> Iterator[VideoFrame]: ...

    def close(self) -> None: ...


def _check_size(width: int, height: int, what: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise VideoError(f"{what}: frames of {width}x{height} are over the limit of {max_pixels:,} pixels")


class VideoFile:
    """A video file, decoded frame by frame as fast as the caller takes them."""

    live = False

    def __init__(self, path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.path = path
        self.name = path.name
        self.max_pixels = max_pixels
        if not path.is_file():
            raise VideoError(f"{path}: no such video file")
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise VideoError(f"{path}: the file holds no video stream")
                stream = container.streams.video[0]
                self.width, self.height = stream.codec_context.width, stream.codec_context.height
                self.fps = float(stream.average_rate) if stream.average_rate else None
                self._duration = (float(stream.duration * stream.time_base) if stream.duration and stream.time_base
                                  else container.duration / av.time_base if container.duration else None)
        except av.error.FFmpegError as error:
            raise VideoError(f"{path}: not a video FFmpeg can read ({_reason(error)}); "
                             f"supported: {', '.join(VIDEO_SUFFIXES)}") from None
        _check_size(self.width, self.height, str(path), max_pixels)

    @property
    def duration(self) -> float | None:
        return self._duration

    def frames(self) -> Iterator[VideoFrame]:
        index = 0
        timestamp = 0.0
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"  # frame and slice threads: decoding keeps up with analysis
                start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
                for frame in container.decode(stream):
                    if frame.time is not None:
                        timestamp = max(float(frame.time) - start, timestamp)
                    elif self.fps:
                        timestamp = index / self.fps
                    yield VideoFrame(timestamp, index, frame=frame)
                    index += 1
        except av.error.FFmpegError as error:
            raise VideoDamaged(f"{self.path}: decoding stopped at {timestamp:.2f} s after {index} frames "
                               f"({_reason(error)}); the file is truncated or corrupt from there") from None
        if index == 0:
            raise VideoDamaged(f"{self.path}: no frame could be decoded; the file is truncated or corrupt")
        # FFmpeg ends a file cut short quietly, as if it were complete; its header still says how long it was.
        step = 1.0 / self.fps if self.fps else 0.0
        if self._duration is not None and timestamp + step < self._duration - max(1.0, 2 * step):
            raise VideoDamaged(f"{self.path}: the video ends at {timestamp:.2f} s of the {self._duration:.2f} s its "
                               "header announces; the file is truncated")

    def close(self) -> None:
        """Nothing to stop: a file is read on the caller's thread."""


class FrameFolder:
    """Photos of a folder, sorted by name, as frames `1 / fps` seconds apart."""

    live = False

    def __init__(self, folder: Path, *, fps: float = 1.0, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        if fps <= 0 or not math.isfinite(fps):
            raise VideoError(f"the frame rate of a folder of frames must be positive, not {fps}")
        self.folder, self.fps, self.max_pixels = folder, fps, max_pixels
        self.name = folder.name
        self.paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        if not self.paths:
            raise VideoError(f"{folder}: no frames ({', '.join(FRAME_SUFFIXES)}) in the folder")

    @property
    def duration(self) -> float | None:
        return len(self.paths) / self.fps

    def frames(self) -> Iterator[VideoFrame]:
        for index, path in enumerate(self.paths):
            try:
                image = load_image(path, max_pixels=self.max_pixels)
            except InvalidImage as error:
                raise VideoDamaged(f"{path}: frame {index} cannot be read ({error})") from None
            yield VideoFrame(index / self.fps, index, pixels=image.pixels)

    def close(self) -> None:
        """Nothing to stop."""


@dataclass(frozen=True)
class StreamPolicy:
    """Which stream URLs may be read: the schemes, and the networks their hosts must resolve into."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def from_environment(cls) -> StreamPolicy:
        """`HAZARDVISION_STREAM_NETWORKS` (comma-separated CIDRs), else private ranges and loopback."""
        spec = os.environ.get("HAZARDVISION_STREAM_NETWORKS")
        return cls.of(spec.split(",") if spec else DEFAULT_STREAM_NETWORKS)

    @classmethod
    def of(cls, networks: Iterator[str] | list[str] | tuple[str, ...]) -> StreamPolicy:
        parsed = []
        for network in networks:
            try:
                parsed.append(ipaddress.ip_network(network.strip(), strict=False))
            except ValueError:
                raise StreamRefused(f"{network.strip()!r} is not a network (CIDR such as 192.168.0.0/16)") from None
        return cls(tuple(parsed))

    def check(self, url: str) -> None:
        """Refuse a URL whose scheme is not a stream's, or whose host resolves outside the allowed networks."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() not in STREAM_SCHEMES:
            raise StreamRefused(f"stream URLs are {', '.join(STREAM_SCHEMES)}; {parts.scheme or 'a path'!r} is not "
                                "(a local file is read by `scan-video PATH` or uploaded as a video)")
        if not parts.hostname:
            raise StreamRefused(f"the stream URL {_redacted(url)} names no host")
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or None)}
        except (socket.gaierror, UnicodeError) as error:
            raise StreamRefused(f"the stream host {parts.hostname!r} does not resolve ({error})") from None
        for address in addresses:
            ip = ipaddress.ip_address(str(address).split("%")[0])
            if not any(ip.version == net.version and ip in net for net in self.networks):
                raise StreamRefused(
                    f"the stream host {parts.hostname} ({ip}) is outside the networks streams may come from "
                    f"({', '.join(str(n) for n in self.networks)}); an administrator can allow it with "
                    "HAZARDVISION_STREAM_NETWORKS")


@dataclass
class StreamStatus:
    """What a live stream's reader is doing, for a camera's status."""

    state: str = "connecting"
    """connecting, reading, reconnecting or closed."""
    frames_read: int = 0
    frames_dropped: int = 0
    """Frames replaced by a newer one before analysis took them."""
    reconnects: int = 0
    last_error: str | None = None
    next_attempt_in: float | None = None
    next_attempt_at: float | None = None
    """When the next attempt starts, on the stream's clock (unix time with `clock=time.time`)."""


@dataclass
class _Slot:
    frame: VideoFrame | None = None
    taken: int = -1
    condition: threading.Condition = field(default_factory=threading.Condition)


class LiveStream:
    """A live stream read on its own thread, newest frame first, reconnecting with backoff."""

    live = True

    def __init__(self, url: str, *, policy: StreamPolicy | None = None, open_timeout: float = 10.0,
                 read_timeout: float = 10.0, backoff: tuple[float, float] = (0.5, 30.0),
                 max_pixels: int = DEFAULT_MAX_PIXELS, clock: Callable[[], float] = time.monotonic) -> None:
        (policy or StreamPolicy.from_environment()).check(url)
        self.url = url
        self.name = _redacted(url)
        self.status = StreamStatus()
        self._timeouts = (open_timeout, read_timeout)
        self._backoff = backoff
        self._max_pixels = max_pixels
        self._clock = clock
        self._started = clock()
        self._slot = _Slot()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name=f"stream {self.name}", daemon=True)
        self._thread.start()

    @property
    def duration(self) -> float | None:
        return None

    def frames(self) -> Iterator[VideoFrame]:
        """The newest frame each time the caller is ready, until `close`."""
        slot = self._slot
        while True:
            with slot.condition:
                while not self._stop.is_set() and (slot.frame is None or slot.frame.index <= slot.taken):
                    slot.condition.wait(0.5)
                if self._stop.is_set():
                    return
                frame = slot.frame
                assert frame is not None
                slot.taken = frame.index
            yield frame

    def close(self) -> None:
        self._stop.set()
        with self._slot.condition:
            self._slot.condition.notify_all()
        self._thread.join(timeout=self._timeouts[1] + 1)
        self.status.state = "closed"

    def _read(self) -> None:
        delay = self._backoff[0]
        while not self._stop.is_set():
            self.status.state = "connecting" if self.status.reconnects == 0 else "reconnecting"
            try:
                self._read_once()
                self.status.last_error = "the stream ended"
                delay = self._backoff[0]  # it was up: start the backoff again
            except (av.error.FFmpegError, OSError, VideoError) as error:
                self.status.last_error = _reason(error) if isinstance(error, av.error.FFmpegError) else str(error)
            if self._stop.is_set():
                break
            self.status.state = "reconnecting"
            self.status.next_attempt_in, self.status.next_attempt_at = delay, self._clock() + delay
            self._stop.wait(delay)
            self.status.next_attempt_in = self.status.next_attempt_at = None
            self.status.reconnects += 1
            delay = min(delay * 2, self._backoff[1])

    def _read_once(self) -> None:
        options = {"rtsp_transport": "tcp"} if self.url.lower().startswith("rtsp") else {}
        with av.open(self.url, options=options, timeout=self._timeouts) as container:
            if not container.streams.video:
                raise VideoError("the stream holds no video")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if self._stop.is_set():
                    break
                _check_size(frame.width, frame.height, self.name, self._max_pixels)
                self.status.state = "reading"
                # Indexes run on across reconnections: the consumer takes only frames newer than its last.
                self._publish(VideoFrame(self._clock() - self._started, self.status.frames_read, frame=frame))

    def _publish(self, frame: VideoFrame) -> None:
        slot = self._slot
        with slot.condition:
            if slot.frame is not None and slot.frame.index > slot.taken:
                self.status.frames_dropped += 1
            slot.frame = frame
            self.status.frames_read += 1
            slot.condition.notify_all()


def open_source(spec: str, *, policy: StreamPolicy | None = None, folder_fps: float = 1.0,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> FrameSource:
    """A file, a folder of frames, or (a URL) a live stream."""
    if "://" in spec:
        return LiveStream(spec, policy=policy, max_pixels=max_pixels)
    path = Path(spec)
    if path.is_dir():
        return FrameFolder(path, fps=folder_fps, max_pixels=max_pixels)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoError(f"{path}: not a video file ({', '.join(VIDEO_SUFFIXES)}), folder of frames or stream URL "
                         f"({', '.join(s + '://' for s in STREAM_SCHEMES)})")
    return VideoFile(path, max_pixels=max_pixels)


def _reason(error: Any) -> str:
    """FFmpeg's own words for a failure, without the file name it repeats."""
    return str(getattr(error, "strerror", None) or error)


def _redacted(url: str) -> str:
    """The URL without its user name and password, fit for logs and statuses."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
