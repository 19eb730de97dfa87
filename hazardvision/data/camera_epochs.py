"""`CameraEpochs`: when each camera was last started over (deleted or reset), for every process of one database.

A camera's tracker lives in the memory of each service process that got its frames. Deleting or resetting the
camera through one process must start it over in all of them, or a camera re-created with the same id would go
on with the old tracks (refusing its new timestamps as going backwards). A start-over bumps the `cameras`
generation counter and stores the new value as the camera's epoch, in the action's transaction. Each process
already polls the counters; when `cameras` moved, it reads the epochs above the value it had seen (one query)
and drops the trackers it made before them. A tracker remembers the epoch its camera had when it was made (read
with the camera's settings, in the query that made it), so a tracker made after the start-over is kept: frames
pay no database read for any of this.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import Integer, String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from hazardvision.data.base import Base, utcnow
from hazardvision.data.column_types import UtcDateTime
from hazardvision.data.generations import Generations, Kind

if TYPE_CHECKING:  # the migrations import this table, and the database imports the migrations
    from hazardvision.data.database import Database


class CameraEpochRecord(Base):
    """The `cameras` generation at a camera's last deletion or reset; no row: never started over."""

    __tablename__ = "camera_epochs"

    camera_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, index=True)
    changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class CameraEpochs:
    def __init__(self, database: Database) -> None:
        self.database = database

    def start_over(self, *, camera_id: str) -> int:
        """Give the camera a new epoch (the bumped `cameras` generation), in the transaction open on this thread
        (the deletion's or reset's, with its audit record), else in its own; return it."""
        session = self.database.open_session()
        if session is not None:
            return self._start_over(session, camera_id)
        with self.database.session() as own:
            return self._start_over(own, camera_id)

    def _start_over(self, session: Session, camera_id: str) -> int:
        # The bump locks the counter's row until commit, so epochs are given in commit order of start-overs.
        epoch = Generations(self.database).bump(Kind.CAMERAS)
        statement = (update(CameraEpochRecord).where(CameraEpochRecord.camera_id == camera_id)
                     .values(epoch=epoch, changed_at=utcnow()).execution_options(synchronize_session=False))
        if not getattr(session.execute(statement), "rowcount", 0):
            try:
                with session.begin_nested():  # another process may start the same camera over at once
                    session.add(CameraEpochRecord(camera_id=camera_id, epoch=epoch))
            except IntegrityError:
                session.execute(statement)
        return epoch

    def since(self, generation: int) -> dict[str, int]:
        """camera id -> epoch of the cameras started over after the `cameras` generation `generation`."""
        with self.database.session() as session:
            rows = session.execute(select(CameraEpochRecord.camera_id, CameraEpochRecord.epoch)
                                   .where(CameraEpochRecord.epoch > generation))
            return {camera_id: int(epoch) for camera_id, epoch in rows}
