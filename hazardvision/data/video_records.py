"""Tables of video jobs: an uploaded video analysed in the background, and the hazard events it found
(SQLAlchemy 2 ORM)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hazardvision.data.base import Base, utcnow
from hazardvision.data.column_types import UtcDateTime


class VideoJobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (VideoJobStatus.DONE, VideoJobStatus.FAILED, VideoJobStatus.CANCELLED)


class VideoJobRecord(Base):
    """One uploaded video and how far its analysis has come."""

    __tablename__ = "video_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default=VideoJobStatus.QUEUED.value, index=True)
    filename: Mapped[str] = mapped_column(String(255))
    video_file: Mapped[str] = mapped_column(String(255))
    """The video's path relative to the home's videos folder (`<job id>/video.<suffix>`)."""
    size_bytes: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    """Name of the API key that uploaded it."""
    camera: Mapped[str | None] = mapped_column(String(200))
    site: Mapped[str | None] = mapped_column(String(200))
    enterprise: Mapped[str | None] = mapped_column(String(200))
    fps: Mapped[float | None] = mapped_column(Float)
    """Target analysis rate asked for (null: the default)."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Runs started; more than one when a restart of the service resumed the job from the start."""
    frames_read: Mapped[int] = mapped_column(Integer, default=0)
    frames_analysed: Mapped[int] = mapped_column(Integer, default=0)
    video_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    """Seconds of the video read so far."""
    duration: Mapped[float | None] = mapped_column(Float)
    """Seconds of video in all, from its header."""
    error: Mapped[str | None] = mapped_column(Text)
    """Why the job failed, or the damage that ended reading early (its events before the damage are kept)."""
    model_versions: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    files_purged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    """When the retention purge deleted the video file and its events' snapshots (the job and its events stay)."""

    events: Mapped[list[VideoEventRecord]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="VideoEventRecord.number")


class VideoEventRecord(Base):
    """One hazard (or camera) event of a video job, numbered from 1 in the order events ended."""

    __tablename__ = "video_events"
    __table_args__ = (UniqueConstraint("job_id", "number", name="uq_video_events_job_number"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("video_jobs.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    event: Mapped[dict[str, object]] = mapped_column(JSON)
    """The event as `HazardEvent` dumps it (times, class, frames, peak confidence, box, hazard details)."""
    snapshot: Mapped[str | None] = mapped_column(String(255))
    """The best frame's JPEG, relative to the home's videos folder."""

    job: Mapped[VideoJobRecord] = relationship(back_populates="events")
