"""`Generations`: counters that say "this changed" to every process sharing one database.

Several service processes may share one database and one home folder. What one of them changes in
memory-cached state (the active model versions; the similar-case index files) the others must
pick up without a restart. Each such kind of state has a counter here; whoever changes the state
bumps it, and every service polls the counters (a cheap one-row-per-kind read, every
`sync_seconds`) and reloads what moved. A counter is a row, so a bump made inside an action's
transaction commits with it.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Integer, String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from hazardvision.data.base import Base, utcnow
from hazardvision.data.column_types import UtcDateTime

if TYPE_CHECKING:  # the migrations import this table, and the database imports the migrations
    from hazardvision.data.database import Database


class Kind(StrEnum):
    """What a counter stands for."""

    MODELS = "models"
    """The active version of some pack changed (activation, promotion)."""
    CASES = "cases"
    """A similar-case index file changed (a review, an import, a reindex)."""
    CAMERAS = "cameras"
    """A camera was deleted or reset: its trackers in every process start over (see `CameraEpochs`)."""


class GenerationRecord(Base):
    __tablename__ = "generations"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Generations:
    def __init__(self, database: Database) -> None:
        self.database = database

    def bump(self, kind: Kind) -> int:
        """Count one change of `kind`, in the transaction open on this thread if any; the new value."""
        session = self.database.open_session()
        if session is not None:
            return _bump(session, kind)
        with self.database.session() as own:
            return _bump(own, kind)

    def read(self) -> dict[Kind, int]:
        """Every counter (0 for a kind never bumped)."""
        with self.database.session() as session:
            rows = {name: value for name, value in session.execute(select(GenerationRecord.name,
                                                                            GenerationRecord.value))}
        return {kind: int(rows.get(kind.value, 0)) for kind in Kind}


def _bump(session: Session, kind: Kind) -> int:
    statement = (update(GenerationRecord).where(GenerationRecord.name == kind.value)
                 .values(value=GenerationRecord.value + 1, changed_at=utcnow()).returning(GenerationRecord.value))
    value = session.execute(statement).scalar_one_or_none()
    if value is None:
        try:
            with session.begin_nested():  # the first bump of a kind; another process may make the row at once
                session.add(GenerationRecord(name=kind.value, value=1))
            return 1
        except IntegrityError:
            value = session.execute(statement).scalar_one()
    return int(value)
