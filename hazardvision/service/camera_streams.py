"""`CameraStreams`: the camera streams this service process reads, each read by one process of the database.

A camera configured with a stream URL is read in the background: a `LiveStream` (reconnecting with
backoff, keeping only the newest frame), the frame selection (rate target, motion gate), and the same
frame path as `POST /v1/cameras/{id}/frames` (tracker, alerts, webhooks, camera alerts). Which process
reads a stream is decided by a lease row per camera (`StreamLeases`): every `lease_seconds / 5` each
process renews the leases it holds (writing its readers' states into them), stops the readers whose URL
changed or went, and takes the streams nobody holds. A reader runs on its own thread and hands each
selected frame to the event loop, waiting for it: a stream never queues more than one frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from hazardvision.annotate import encode_jpeg
from hazardvision.data.cameras import Cameras
from hazardvision.data.service_records import CameraRecord
from hazardvision.data.stream_leases import ReaderState, StreamLeaseRecord, StreamLeases
from hazardvision.errors import BankError, HazardVisionError, VideoError
from hazardvision.service.schemas.cameras import StreamView
from hazardvision.service.schemas.common import as_utc
from hazardvision.service.uploads import Upload
from hazardvision.video.selection import FrameSelector, SelectionSettings
from hazardvision.video.sources import LiveStream, StreamPolicy, _redacted

log = logging.getLogger("hazardvision.service")

Analyse = Callable[[str, Upload, float], Coroutine[Any, Any, object]]
"""The service's frame path: camera id, the frame as JPEG, its unix time."""
ANALYSIS_SECONDS = 120.0
"""Longest wait for one frame's analysis before the reader gives up on it (and takes the newest frame)."""


def process_id() -> str:
    """An id for this service process among those of the database: host, process id, random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _utc(timestamp: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC) if timestamp is not None else None


class StreamReader:
    """One camera's stream, read on a thread of its own until `stop`."""

    def __init__(self, camera_id: str, url: str, *, policy: StreamPolicy, selection: SelectionSettings,
                 analyse: Analyse, loop: asyncio.AbstractEventLoop, max_pixels: int,
                 backoff: tuple[float, float] = (0.5, 30.0), timeouts: tuple[float, float] = (10.0, 10.0)) -> None:
        self.camera_id, self.url = camera_id, url
        self.frames_analysed = 0
        self._policy, self._selection, self._analyse, self._loop = policy, selection, analyse, loop
        self._max_pixels, self._backoff, self._timeouts = max_pixels, backoff, timeouts
        self._stop = threading.Event()
        self._live: LiveStream | None = None
        self._refused: str | None = None
        self._retry_at: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"camera stream {camera_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the reading (a frame in analysis finishes first)."""
        self._stop.set()
        if self._live is not None:
            self._live.close()
        self._thread.join(timeout=self._timeouts[0] + self._timeouts[1] + 2)

    def state(self) -> ReaderState:
        """What the reader is doing now."""
        live = self._live
        if live is None:
            return ReaderState(state="reconnecting" if self._refused else "connecting", last_error=self._refused,
                               next_retry_at=_utc(self._retry_at))
        status = live.status
        state = {"reading": "live", "reconnecting": "reconnecting"}.get(status.state, "connecting")
        return ReaderState(state=state, last_error=status.last_error, next_retry_at=_utc(status.next_attempt_at),
                           reconnects=status.reconnects, frames_read=status.frames_read,
                           frames_analysed=self.frames_analysed)

    def _open(self) -> LiveStream | None:
        """The live stream, once its URL passes the policy (a host that does not resolve is tried again)."""
        delay = self._backoff[0]
        while not self._stop.is_set():
            try:
                return LiveStream(self.url, policy=self._policy, open_timeout=self._timeouts[0],
                                  read_timeout=self._timeouts[1], backoff=self._backoff,
                                  max_pixels=self._max_pixels, clock=time.time)
            except VideoError as error:
                self._refused = str(error)
                self._retry_at = time.time() + delay
                log.warning("camera %s: stream %s not opened: %s", self.camera_id, _redacted(self.url), error)
            self._stop.wait(delay)
            delay = min(delay * 2, self._backoff[1])
        return None

    def _run(self) -> None:
        started = time.time()  # the stream's clock starts here: frame times are unix times
        live = self._live = self._open()
        if live is None:
            return
        if self._stop.is_set():  # stopped while it opened
            live.close()
            return
        selector = FrameSelector(self._selection)
        for frame in live.frames():
            if self._stop.is_set():
                break
            if not selector.select(frame):
                continue
            upload = Upload(encode_jpeg(frame.pixels()), f"{self.camera_id}-stream.jpg")
            future: Future[object] = asyncio.run_coroutine_threadsafe(
                self._analyse(self.camera_id, upload, started + frame.timestamp), self._loop)
            try:
                future.result(timeout=ANALYSIS_SECONDS)
                self.frames_analysed += 1
            except HazardVisionError as error:  # models loading, a frame out of order: the next frame may do
                log.warning("camera %s: a stream frame was not analysed: %s", self.camera_id, error)
            except (FutureTimeout, CancelledError, RuntimeError) as error:  # the service is stopping
                future.cancel()
                log.warning("camera %s: a stream frame was not analysed: %s", self.camera_id,
                            type(error).__name__)
                if self._loop.is_closed():
                    break


class CameraStreams:
    """The stream readers of this process, and the leases that make each stream one process's."""

    def __init__(self, cameras: Cameras, leases: StreamLeases, *, policy: StreamPolicy,
                 selection: SelectionSettings, lease_seconds: float, analyse: Analyse, ready: Callable[[], bool],
                 max_pixels: int, holder: str | None = None) -> None:
        self.cameras, self.leases = cameras, leases
        self.policy, self.selection, self.lease_seconds = policy, selection, lease_seconds
        self.analyse, self.ready, self.max_pixels = analyse, ready, max_pixels
        self.holder = holder or process_id()
        self.readers: dict[str, StreamReader] = {}
        self.expiry: dict[str, dt.datetime] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        """One look at the leases at a time (the periodic one, and the one at shutdown)."""
        self._closed = False

    def start(self) -> None:
        """Look at the streams now, then every fifth of the lease; call on the event loop."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = self._loop.create_task(self._follow())

    def wake(self) -> None:
        """Look again at once (a camera's stream URL changed); call on the event loop."""
        if self._wake is not None:
            self._wake.set()

    async def _follow(self) -> None:
        assert self._wake is not None
        while True:
            try:
                await asyncio.to_thread(self.look)
            except Exception as error:  # a database hiccup: say so, keep the readers, try again next time
                log.warning("camera streams: could not renew or take leases: %s: %s", type(error).__name__, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.lease_seconds / 5)
            self._wake.clear()

    def _wanted(self) -> dict[str, str]:
        wanted = {}
        for row in self.cameras.streaming():
            try:
                url = self.cameras.stream_url(row)
            except BankError as error:  # the key file does not fit: the stream cannot be read
                log.warning("camera %s: its stream is not read: %s", row.id, error)
                continue
            if url is not None:
                wanted[row.id] = url
        return wanted

    def look(self) -> None:
        """Stop the readers of streams that changed or went, renew the leases of the others, take free streams.
        Blocking: call in a thread."""
        with self._lock:
            if self._closed:
                return
            wanted = self._wanted()
            for camera_id, running in list(self.readers.items()):
                if wanted.get(camera_id) != running.url:
                    self._stop_reader(camera_id)
            for camera_id in set(self.leases.current()) - set(wanted):
                self.leases.drop(camera_id=camera_id)  # a deleted camera's, or one whose stream was removed
            for camera_id, url in wanted.items():
                reader = self.readers.get(camera_id)
                if reader is not None:
                    if self._take(camera_id, reader.state()):
                        continue
                    log.warning("camera %s: another service process took its stream over; stopping here", camera_id)
                    self.readers.pop(camera_id)
                    reader.stop()
                elif self.ready() and self._loop is not None and self._take(camera_id, ReaderState()):
                    started = StreamReader(camera_id, url, policy=self.policy, selection=self.selection,
                                          analyse=self.analyse, loop=self._loop, max_pixels=self.max_pixels)
                    self.readers[camera_id] = started
                    started.start()
                    log.info("camera %s: reading its stream %s", camera_id, _redacted(url))

    def _take(self, camera_id: str, state: ReaderState) -> bool:
        taken = self.leases.take(camera_id=camera_id, holder=self.holder, seconds=self.lease_seconds, state=state)
        if taken:
            self.expiry[camera_id] = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.lease_seconds)
        return taken

    def stop(self, camera_id: str) -> bool:
        """Stop this process's reader of the camera at once, if it has one (its camera was deleted); whether it
        had. Blocking: call in a thread."""
        with self._lock:
            if camera_id not in self.readers:
                return False
            self._stop_reader(camera_id)
            return True

    def _stop_reader(self, camera_id: str) -> None:
        reader = self.readers.pop(camera_id)
        reader.stop()
        self.expiry.pop(camera_id, None)
        self.leases.release(camera_id=camera_id, holder=self.holder)
        log.info("camera %s: stopped reading its stream", camera_id)

    def close(self) -> None:
        """Stop every reader and give its lease up, so another process takes the stream at once. Blocking."""
        if self._task is not None:
            self._task.cancel()
        with self._lock:
            self._closed = True
            for camera_id in list(self.readers):
                try:
                    self._stop_reader(camera_id)
                except Exception as error:  # the database is gone: the lease expires by itself
                    log.warning("camera %s: lease not released: %s: %s", camera_id, type(error).__name__, error)

    def views(self, rows: Mapping[str, CameraRecord]) -> dict[str, StreamView]:
        """The stream state of each camera with a stream URL, from this process's reader or the lease row of the
        process that reads it. Reads the database: call in a thread."""
        leases = self.leases.current()
        now = dt.datetime.now(dt.UTC)
        found = {}
        for camera_id, row in rows.items():
            if row.stream_url is None:
                continue
            reader = self.readers.get(camera_id)
            if reader is not None:
                state = reader.state()
                found[camera_id] = StreamView(
                    state=state.state,  # type: ignore[arg-type]
                    reader=self.holder, lease_expires_at=self.expiry.get(camera_id), last_error=state.last_error,
                    next_retry_at=state.next_retry_at, reconnects=state.reconnects, frames_read=state.frames_read,
                    frames_analysed=state.frames_analysed, updated_at=now)
                continue
            lease = leases.get(camera_id)
            found[camera_id] = _lease_view(lease, now)
        return found


def _lease_view(lease: StreamLeaseRecord | None, now: dt.datetime) -> StreamView:
    if lease is None:
        return StreamView(state="waiting")
    expires = as_utc(lease.expires_at)
    running = expires is not None and expires > now
    return StreamView(
        state=lease.state if running and lease.state in {"connecting", "live", "reconnecting"}  # type: ignore[arg-type]
        else "waiting", reader=lease.holder if running else None, lease_expires_at=expires,
        last_error=lease.last_error, next_retry_at=as_utc(lease.next_retry_at) if running else None,
        reconnects=lease.reconnects, frames_read=lease.frames_read, frames_analysed=lease.frames_analysed,
        updated_at=as_utc(lease.renewed_at))
