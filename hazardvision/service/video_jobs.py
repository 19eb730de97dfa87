"""`VideoJobQueue`: uploaded videos analysed in the background, with the service's loaded models.

Each job runs `scan_source`, the code `hazardvision scan-video` runs, on one of `video_workers`
threads of its own (one by default): the detector runs there, not on the inference workers, so a
long video never takes the photo scans' workers, and jobs beyond that number wait their turn.
Progress is written at most every `PROGRESS_SECONDS`, and each event as soon as it ends.

Jobs survive a restart: one queued or running when the service stopped is queued again when it
starts, and analysed from the start of its video (its earlier events are dropped, so none is
counted twice). A cancelled job stops at its next frame; the events found by then are kept.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hazardvision.bank.bank import SampleBank
from hazardvision.catalogue import Catalogue
from hazardvision.data.audit import AuditLog
from hazardvision.data.video_jobs import VideoJobs
from hazardvision.data.video_records import VideoJobRecord, VideoJobStatus
from hazardvision.detections import Detections
from hazardvision.errors import HazardVisionError, InvalidUpload, UnknownVideoJob, VideoError, VideoJobConflict
from hazardvision.home import Home, private_folder, write_private_file
from hazardvision.images import BGRImage
from hazardvision.packs.model_pack import detect_with_packs
from hazardvision.packs.tiling import VIDEO_FILE_TILING
from hazardvision.service.schemas.videos import VideoEvent, VideoJob, VideoProgress
from hazardvision.service.serving import ModelHost, ServingState
from hazardvision.service.video_uploads import ArrivedVideo
from hazardvision.video.events import HazardEvent
from hazardvision.video.scanning import VideoReport, VideoScanSettings, scan_source
from hazardvision.video.sources import VideoFile, VideoFrame

log = logging.getLogger("hazardvision.service")

PROGRESS_SECONDS = 0.25
INCOMING = ".incoming"


class VideoJobQueue:
    """Video upload jobs of one service process: stored, queued, run, cancelled, resumed."""

    def __init__(self, bank: SampleBank, audit: AuditLog, catalogue: Catalogue, host: ModelHost, *, workers: int,
                 default_fps: float, max_pixels: int) -> None:
        self.records = VideoJobs(bank.database)
        self.audit, self.catalogue, self.host = audit, catalogue, host
        self.folder = Home.at(bank.home).videos
        self.default_fps, self.max_pixels = default_fps, max_pixels
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="hazardvision-video")
        self._stops: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()

    @property
    def incoming(self) -> Path:
        """Where uploads arrive, before they are whole and become jobs."""
        return self.folder / INCOMING

    # -- jobs

    def submit(self, arrived: ArrivedVideo, *, camera: str | None, site: str | None, enterprise: str | None,
               fps: float | None, actor: str) -> VideoJobRecord:
        """Make an arrived upload a queued job (audited); a file FFmpeg cannot open at all is refused (422)."""
        try:
            VideoFile(arrived.path, max_pixels=self.max_pixels)
        except VideoError as error:
            arrived.path.unlink(missing_ok=True)
            raise InvalidUpload(str(error).replace(str(arrived.path), arrived.filename)) from None
        job_id = uuid.uuid4().hex
        folder = self.folder / job_id
        private_folder(folder)
        video = folder / f"video{arrived.suffix}"
        os.replace(arrived.path, video)
        try:
            with self.records.create(job_id=job_id, filename=arrived.filename, video_file=f"{job_id}/{video.name}",
                                     size_bytes=arrived.size, owner=actor, camera=camera, site=site,
                                     enterprise=enterprise, fps=fps) as row:
                self.audit.append(actor, "video.create", job_id, details={
                    "filename": arrived.filename, "size_bytes": arrived.size, "camera": camera, "site": site,
                    "enterprise": enterprise, "fps": fps})
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._enqueue(job_id)
        return row

    def get(self, job_id: str, *, owner: str | None) -> VideoJobRecord:
        """The job (with its events); `owner`: only if that key uploaded it (None: any job)."""
        row = self.records.get(job_id=job_id)
        if row is None or (owner is not None and row.owner != owner):
            raise UnknownVideoJob(f"no video job {job_id!r}; GET /v1/videos lists yours")
        return row

    def snapshot(self, job_id: str, number: int, *, owner: str | None) -> Path:
        row = self.get(job_id, owner=owner)
        event = next((e for e in row.events if e.number == number), None)
        if event is None:
            raise UnknownVideoJob(f"video job {job_id} has no event {number} (yet)")
        if event.snapshot is None:
            raise UnknownVideoJob(f"event {number} of video job {job_id} has no best frame (a camera event has none)")
        if row.files_purged_at is not None:
            raise UnknownVideoJob(f"the best frame of event {number} of video job {job_id} was deleted at "
                                  f"{row.files_purged_at.isoformat()}, with the video, past the retention period")
        path = self.folder / event.snapshot
        if not path.is_file():
            raise UnknownVideoJob(f"the best frame of event {number} of video job {job_id} is missing from disk")
        return path

    def cancel(self, job_id: str, *, owner: str | None, actor: str) -> VideoJobRecord:
        """Cancel a queued or running job (audited); it stops at its next frame."""
        self.get(job_id, owner=owner)
        with self.records.cancel(job_id=job_id) as (row, changed):
            if row is None:
                raise UnknownVideoJob(f"no video job {job_id!r}")
            if not changed:
                raise VideoJobConflict(f"video job {job_id} is {row.status}; only a queued or running job can be "
                                       "cancelled")
            self.audit.append(actor, "video.cancel", job_id, details={
                "frames_analysed": row.frames_analysed, "video_seconds": round(row.video_seconds, 3)})
        with self._lock:
            stop = self._stops.get(job_id)
        if stop is not None:
            stop.set()
        return row

    def view(self, row: VideoJobRecord, *, event_count: int | None = None, events: bool = True) -> VideoJob:
        """The job as the API shows it; `events` False (a list of jobs) leaves its events out."""
        started = row.started_at
        eta = percent = None
        if row.duration:
            percent = round(min(100.0, 100 * row.video_seconds / row.duration), 1)
        if row.status == VideoJobStatus.RUNNING.value and started is not None and row.duration and row.video_seconds:
            elapsed = (dt.datetime.now(dt.UTC) - started).total_seconds()
            eta = round(max(0.0, row.duration - row.video_seconds) * elapsed / row.video_seconds, 1)
        elif VideoJobStatus(row.status).finished:
            eta = 0.0
        kept = row.files_purged_at is None
        shown = [VideoEvent.model_validate({**e.event, "number": e.number, "snapshot_url": (
            f"/v1/videos/{row.id}/events/{e.number}/snapshot" if e.snapshot and kept else None)}) for e in row.events
        ] if events else []
        return VideoJob(
            job_id=row.id, status=VideoJobStatus(row.status).value, filename=row.filename, size_bytes=row.size_bytes,
            owner=row.owner, camera=row.camera, site=row.site, enterprise=row.enterprise,
            fps=row.fps or self.default_fps, created_at=row.created_at, started_at=row.started_at,
            finished_at=row.finished_at, attempts=row.attempts, error=row.error, models=row.model_versions or {},
            files_purged_at=row.files_purged_at,
            progress=VideoProgress(frames_read=row.frames_read, frames_analysed=row.frames_analysed,
                                   video_seconds=round(row.video_seconds, 3), duration=row.duration, percent=percent,
                                   eta_seconds=eta),
            event_count=len(row.events) if event_count is None else event_count, events=shown)

    # -- life cycle

    def resume(self) -> list[str]:
        """Queue again the jobs that were queued or running when the service stopped (from the start)."""
        resumed = []
        for job_id in self.records.unfinished():
            if self.records.requeue(job_id=job_id):
                shutil.rmtree(self.folder / job_id / "events", ignore_errors=True)
                self._enqueue(job_id)
                resumed.append(job_id)
        if resumed:
            log.info("resumed %d video job(s) from the start: %s", len(resumed), ", ".join(resumed))
        shutil.rmtree(self.incoming, ignore_errors=True)  # uploads cut off by the stop
        return resumed

    def close(self) -> None:
        """Stop the running jobs where they are (they stay unfinished, and resume at the next start)."""
        self._closing.set()
        with self._lock:
            for stop in self._stops.values():
                stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _enqueue(self, job_id: str) -> None:
        with self._lock:
            self._stops[job_id] = threading.Event()
        self._pool.submit(self._run, job_id)

    # -- running

    def _run(self, job_id: str) -> None:
        with self._lock:
            stop = self._stops[job_id]
        try:
            self._analyse(job_id, stop)
        except Exception as error:  # a bug or a storage failure: the job says so, the service goes on
            log.error("video job %s failed: %s: %s", job_id, type(error).__name__, error, exc_info=error)
            message = (str(error) if isinstance(error, HazardVisionError)
                       else f"the analysis failed unexpectedly ({type(error).__name__}); the log has the details")
            try:
                self._finish(job_id, VideoJobStatus.FAILED, message, None)
            except Exception as again:
                log.error("video job %s: its failure could not be recorded: %s", job_id, again)
        finally:
            with self._lock:
                self._stops.pop(job_id, None)

    def _state(self) -> ServingState | None:
        """The serving state once the models are in; None when the service stops first."""
        while not self.host.ready:
            if self.host.load_error:
                raise VideoError(f"the job could not run: {self.host.load_error}")
            if self._closing.wait(0.2):
                return None
        return self.host.current

    def _analyse(self, job_id: str, stop: threading.Event) -> None:
        state = self._state()
        row = self.records.get(job_id=job_id)
        if state is None or row is None or stop.is_set() or row.status != VideoJobStatus.QUEUED.value:
            return
        try:
            source = VideoFile(self.folder / row.video_file, max_pixels=self.max_pixels)
        except VideoError as error:
            if self.records.start(job_id=job_id, duration=None, model_versions=state.versions):
                self._finish(job_id, VideoJobStatus.FAILED, self._named(str(error), row), None)
            return
        if not self.records.start(job_id=job_id, duration=source.duration, model_versions=state.versions):
            return  # cancelled while it waited
        events_folder = self.folder / job_id / "events"
        counts = {"read": 0, "analysed": 0, "seconds": 0.0}
        last_write = [time.monotonic()]

        def snapshots(event_id: str, jpeg: bytes) -> str:
            private_folder(events_folder)
            write_private_file(events_folder / f"{event_id}.jpg", jpeg)
            return f"{job_id}/events/{event_id}.jpg"

        def on_frame(frame: VideoFrame, _tracked: Detections) -> None:
            counts["read"], counts["analysed"], counts["seconds"] = frame.index + 1, counts["analysed"] + 1, \
                frame.timestamp
            if time.monotonic() - last_write[0] >= PROGRESS_SECONDS:
                last_write[0] = time.monotonic()
                self.records.progress(job_id=job_id, frames_read=int(counts["read"]),
                                      frames_analysed=int(counts["analysed"]), video_seconds=float(counts["seconds"]))

        def found(events: list[HazardEvent]) -> None:
            self.records.add_events(job_id=job_id, events=[
                (event.event_id, event.model_dump(mode="json", exclude={"snapshot"}), event.snapshot)
                for event in events])

        def detect(pixels: BGRImage, weak: float) -> Detections:
            return detect_with_packs(state.packs, [pixels], weak=weak, tiling=VIDEO_FILE_TILING)[0]

        settings = VideoScanSettings(fps=row.fps or self.default_fps)
        report = scan_source(source, detect, self.catalogue, settings, camera=row.camera or row.filename,
                             snapshots=snapshots, on_frame=on_frame, found=found, stop=stop)
        if self._closing.is_set():
            return  # stopped by the service's stop, not by a cancel: it resumes at the next start
        damage = self._named(report.error, row) if report.error else None
        self._finish(job_id, VideoJobStatus.FAILED if damage else VideoJobStatus.DONE, damage, report)

    def _finish(self, job_id: str, status: VideoJobStatus, error: str | None, report: VideoReport | None) -> None:
        row = self.records.get(job_id=job_id)
        if row is None:
            return
        with self.records.finish(job_id=job_id, status=status, error=error,
                                 frames_read=report.frames_decoded if report else row.frames_read,
                                 frames_analysed=report.frames_analysed if report else row.frames_analysed,
                                 video_seconds=report.video_seconds if report else row.video_seconds) as finished:
            if finished:  # else it was cancelled meanwhile
                self.audit.append(row.owner, "video.finish", job_id, model_versions=row.model_versions, details={
                    "status": status.value, "error": error, "events": len(report.events) if report else len(row.events),
                    "hazard_events": sum(e.kind == "hazard" for e in report.events) if report else None,
                    "frames_read": report.frames_decoded if report else row.frames_read,
                    "frames_analysed": report.frames_analysed if report else row.frames_analysed,
                    "video_seconds": round(report.video_seconds, 3) if report else row.video_seconds})
        if finished:
            log.info("video job %s %s: %s", job_id, status.value, error or "")

    def _named(self, message: str, row: VideoJobRecord) -> str:
        """A message about the stored file, naming the file the user uploaded instead of the path on disk."""
        return message.replace(str(self.folder / row.video_file), row.filename)
