"""`StreamLeases`: which service process reads each camera's stream, and what its reader is doing.

Several service processes may share one database; each camera stream must be read by one of them
only (two readers would raise every alert twice). A lease is a row per camera: the holder's id and
an expiry the holder pushes forward every few seconds. A process takes a camera whose row is missing
or expired, in one conditional statement, so of two processes trying at once exactly one wins; a
holder that stops renewing (stopped, crashed, cut off from the database) loses the camera to another
process once its lease expires. The holder also writes its reader's state into the row, so that any
process can show it. Expiry compares the processes' clocks: keep the machines' clocks in sync (NTP).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Integer, String, Text, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from hazardvision.data.base import Base, utcnow
from hazardvision.data.column_types import UtcDateTime

if TYPE_CHECKING:  # the migrations import this table, and the database imports the migrations
    from hazardvision.data.database import Database


class StreamLeaseRecord(Base):
    """The process that reads a camera's stream, until when, and its reader's state."""

    __tablename__ = "camera_stream_leases"

    camera_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    """Id of the service process reading the stream (host, process id and a random part)."""
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    acquired_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    renewed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    state: Mapped[str] = mapped_column(String(20), default="connecting")
    """connecting, live or reconnecting."""
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_retry_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    reconnects: Mapped[int] = mapped_column(Integer, default=0)
    frames_read: Mapped[int] = mapped_column(Integer, default=0)
    frames_analysed: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class ReaderState:
    """What a reader reports with each renewal."""

    state: str = "connecting"
    last_error: str | None = None
    next_retry_at: dt.datetime | None = None
    reconnects: int = 0
    frames_read: int = 0
    frames_analysed: int = 0


class StreamLeases:
    def __init__(self, database: Database) -> None:
        self.database = database

    def take(self, *, camera_id: str, holder: str, seconds: float, state: ReaderState | None = None) -> bool:
        """Hold (or keep holding) the camera's lease for `seconds` more; False when another holder's lease runs."""
        now = utcnow()
        values = {"holder": holder, "expires_at": now + dt.timedelta(seconds=seconds), "renewed_at": now,
                  **_state_values(state or ReaderState())}
        with self.database.session() as session:
            ours_or_free = (StreamLeaseRecord.holder == holder) | (StreamLeaseRecord.expires_at < now)
            fresh = StreamLeaseRecord.holder != holder
            taken = session.execute(
                update(StreamLeaseRecord).where(StreamLeaseRecord.camera_id == camera_id, ours_or_free, fresh)
                .values(**values, acquired_at=now).execution_options(synchronize_session=False))
            if getattr(taken, "rowcount", 0):
                return True
            renewed = session.execute(
                update(StreamLeaseRecord).where(StreamLeaseRecord.camera_id == camera_id,
                                                StreamLeaseRecord.holder == holder)
                .values(**(values if state is not None else {"expires_at": values["expires_at"], "renewed_at": now}))
                .execution_options(synchronize_session=False))
            if getattr(renewed, "rowcount", 0):
                return True
            if session.get(StreamLeaseRecord, camera_id) is not None:
                return False
            try:
                with session.begin_nested():  # the first holder; another process may make the row at once
                    session.add(StreamLeaseRecord(camera_id=camera_id, acquired_at=now, **values))
            except IntegrityError:
                return False
            return True

    def release(self, *, camera_id: str, holder: str) -> None:
        """Give the camera up at once (another process may take it at its next look), if `holder` has it."""
        with self.database.session() as session:
            session.execute(delete(StreamLeaseRecord).where(StreamLeaseRecord.camera_id == camera_id,
                                                            StreamLeaseRecord.holder == holder)
                            .execution_options(synchronize_session=False))

    def drop(self, *, camera_id: str) -> None:
        """Forget the camera's lease, whoever holds it (its stream was removed); the holder stops at its renewal."""
        with self.database.session() as session:
            session.execute(delete(StreamLeaseRecord).where(StreamLeaseRecord.camera_id == camera_id)
                            .execution_options(synchronize_session=False))

    def current(self) -> dict[str, StreamLeaseRecord]:
        """Every lease row by camera, expired ones included (their last state is still worth showing)."""
        with self.database.session() as session:
            return {row.camera_id: row for row in session.scalars(select(StreamLeaseRecord))}


def _state_values(state: ReaderState) -> dict[str, object]:
    return {"state": state.state, "last_error": state.last_error, "next_retry_at": state.next_retry_at,
            "reconnects": state.reconnects, "frames_read": state.frames_read,
            "frames_analysed": state.frames_analysed}
