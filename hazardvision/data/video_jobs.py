"""`VideoJobs`: uploaded videos' analysis jobs, their progress and the events they found."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import selectinload

from hazardvision.data.base import utcnow
from hazardvision.data.database import Database
from hazardvision.data.video_records import VideoEventRecord, VideoJobRecord, VideoJobStatus

UNFINISHED = (VideoJobStatus.QUEUED.value, VideoJobStatus.RUNNING.value)
FINISHED = tuple(status.value for status in VideoJobStatus if status.finished)


@dataclass(frozen=True)
class PurgedVideoJob:
    """A job whose files a retention purge deletes: its video and its events' snapshots, relative to the home's
    videos folder."""

    job_id: str
    video_file: str
    snapshots: tuple[str, ...]


class VideoJobs:
    def __init__(self, database: Database) -> None:
        self.database = database

    @contextmanager
    def create(self, *, job_id: str, filename: str, video_file: str, size_bytes: int, owner: str,
               camera: str | None, site: str | None, enterprise: str | None,
               fps: float | None) -> Iterator[VideoJobRecord]:
        """Keep a queued job; the caller's work inside (its audit entry) commits with it."""
        with self.database.session() as session:
            row = VideoJobRecord(id=job_id, status=VideoJobStatus.QUEUED.value, filename=filename,
                                 video_file=video_file, size_bytes=size_bytes, owner=owner, camera=camera, site=site,
                                 enterprise=enterprise, fps=fps, attempts=0, frames_read=0, frames_analysed=0,
                                 video_seconds=0.0, model_versions={})
            session.add(row)
            session.flush()
            yield row

    def get(self, *, job_id: str) -> VideoJobRecord | None:
        """The job with its events."""
        with self.database.session() as session:
            return session.scalars(select(VideoJobRecord).where(VideoJobRecord.id == job_id)
                                   .options(selectinload(VideoJobRecord.events))).one_or_none()

    def jobs(self, *, owner: str | None = None, status: str | None = None, limit: int = 50,
             offset: int = 0) -> list[tuple[VideoJobRecord, int]]:
        """Jobs, newest first, with their numbers of events."""
        counts = (select(VideoEventRecord.job_id, func.count().label("n")).group_by(VideoEventRecord.job_id)
                  .subquery())
        query = (select(VideoJobRecord, func.coalesce(counts.c.n, 0))
                 .outerjoin(counts, counts.c.job_id == VideoJobRecord.id)
                 .order_by(VideoJobRecord.created_at.desc(), VideoJobRecord.id).limit(limit).offset(offset))
        if owner is not None:
            query = query.where(VideoJobRecord.owner == owner)
        if status is not None:
            query = query.where(VideoJobRecord.status == status)
        with self.database.session() as session:
            return [(row, int(n)) for row, n in session.execute(query).all()]

    def unfinished(self) -> list[str]:
        """Ids of the jobs queued or running, oldest first (to resume when the service starts)."""
        with self.database.session() as session:
            return list(session.scalars(select(VideoJobRecord.id).where(VideoJobRecord.status.in_(UNFINISHED))
                                        .order_by(VideoJobRecord.created_at, VideoJobRecord.id)))

    def requeue(self, *, job_id: str) -> bool:
        """Put an unfinished job back in the queue to run from the start: its progress and events are dropped.
        False when it has finished meanwhile."""
        with self.database.session() as session:
            changed = session.execute(
                update(VideoJobRecord).where(VideoJobRecord.id == job_id, VideoJobRecord.status.in_(UNFINISHED))
                .values(status=VideoJobStatus.QUEUED.value, frames_read=0, frames_analysed=0, video_seconds=0.0,
                        error=None).execution_options(synchronize_session=False))
            if not getattr(changed, "rowcount", 0):
                return False
            session.execute(delete(VideoEventRecord).where(VideoEventRecord.job_id == job_id))
            return True

    def start(self, *, job_id: str, duration: float | None, model_versions: dict[str, str]) -> bool:
        """Mark a queued job running (one more attempt); False when it is no longer queued (cancelled)."""
        with self.database.session() as session:
            changed = session.execute(
                update(VideoJobRecord).where(VideoJobRecord.id == job_id,
                                             VideoJobRecord.status == VideoJobStatus.QUEUED.value)
                .values(status=VideoJobStatus.RUNNING.value, started_at=utcnow(), duration=duration,
                        model_versions=model_versions, attempts=VideoJobRecord.attempts + 1)
                .execution_options(synchronize_session=False))
            return bool(getattr(changed, "rowcount", 0))

    def progress(self, *, job_id: str, frames_read: int, frames_analysed: int, video_seconds: float) -> None:
        with self.database.session() as session:
            session.execute(update(VideoJobRecord).where(VideoJobRecord.id == job_id).values(
                frames_read=frames_read, frames_analysed=frames_analysed, video_seconds=video_seconds)
                .execution_options(synchronize_session=False))

    def add_events(self, *, job_id: str, events: Sequence[tuple[str, dict[str, Any], str | None]]) -> None:
        """Keep events that ended: (event id, the event, its snapshot file), numbered on from the job's last."""
        with self.database.session() as session:
            last = session.scalar(select(func.max(VideoEventRecord.number)).where(VideoEventRecord.job_id == job_id))
            for offset, (event_id, event, snapshot) in enumerate(events, start=(last or 0) + 1):
                session.add(VideoEventRecord(id=event_id, job_id=job_id, number=offset, event=event,
                                             snapshot=snapshot))

    @contextmanager
    def finish(self, *, job_id: str, status: VideoJobStatus, error: str | None, frames_read: int,
               frames_analysed: int, video_seconds: float) -> Iterator[bool]:
        """End a running job; yields whether it was still running (else it was cancelled meanwhile), inside the
        transaction (the caller's audit entry commits with it)."""
        with self.database.session() as session:
            changed = session.execute(
                update(VideoJobRecord).where(VideoJobRecord.id == job_id,
                                             VideoJobRecord.status == VideoJobStatus.RUNNING.value)
                .values(status=status.value, error=error, finished_at=utcnow(), frames_read=frames_read,
                        frames_analysed=frames_analysed, video_seconds=video_seconds)
                .execution_options(synchronize_session=False))
            yield bool(getattr(changed, "rowcount", 0))

    @contextmanager
    def cancel(self, *, job_id: str) -> Iterator[tuple[VideoJobRecord | None, bool]]:
        """Cancel a queued or running job; yields it (None if there is none) and whether this call cancelled it,
        inside the transaction (the caller's audit entry commits with it)."""
        with self.database.session() as session:
            changed = session.execute(
                update(VideoJobRecord).where(VideoJobRecord.id == job_id, VideoJobRecord.status.in_(UNFINISHED))
                .values(status=VideoJobStatus.CANCELLED.value, finished_at=utcnow())
                .execution_options(synchronize_session=False))
            row = session.get(VideoJobRecord, job_id, populate_existing=True)
            yield row, bool(getattr(changed, "rowcount", 0))

    def purge_files(self, *, cutoff: dt.datetime, at: dt.datetime) -> list[PurgedVideoJob]:
        """Mark the files of the jobs that finished (done, failed or cancelled) before `cutoff` purged at `at`, and
        return them for the caller to delete once this commits; the jobs and their events stay. A queued or running
        job is never among them. Joins this thread's open transaction (a purge's), if any."""
        ended = or_(VideoJobRecord.finished_at < cutoff,
                    and_(VideoJobRecord.finished_at.is_(None), VideoJobRecord.created_at < cutoff))
        open_session = self.database.open_session()
        with nullcontext(open_session) if open_session is not None else self.database.session() as session:
            rows = session.scalars(
                select(VideoJobRecord).where(VideoJobRecord.status.in_(FINISHED), VideoJobRecord.files_purged_at
                                             .is_(None), ended)
                .order_by(VideoJobRecord.created_at, VideoJobRecord.id).with_for_update()
                .options(selectinload(VideoJobRecord.events))).all()
            for row in rows:
                row.files_purged_at = at
            session.flush()
            return [PurgedVideoJob(row.id, row.video_file, tuple(e.snapshot for e in row.events if e.snapshot))
                    for row in rows]
