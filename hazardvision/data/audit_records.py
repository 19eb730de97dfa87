"""The audit log's records in the database, so that a record commits in the same transaction as its action.

`audit_records` holds one row per record (its hash chain and MAC are computed by
`hazardvision.audit`); `audit_head` is one row with the count, the last hash and their MAC. An
append first takes the head row for update (a row lock on PostgreSQL; on SQLite the write lock of
the whole database), so processes that share one database append one chain, never two branches.
When a transaction of the data layer is open on this thread (`Database.session()`), an append
joins it: a scan, a review or a key and its record are kept or lost together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Integer, String, Text, event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from hazardvision.data.base import Base

if TYPE_CHECKING:  # the migrations import these tables, and the database imports the migrations
    from hazardvision.data.database import Database

AUDITED = "hazardvision_audited"
"""`Session.info` key set in a transaction that appended a record (data.database's commit check reads it)."""

GENESIS = "0" * 64


class AuditEntry(Base):
    """One audit record, exactly as its hash was taken."""

    __tablename__ = "audit_records"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str | None] = mapped_column(Text)
    input_sha256: Mapped[str | None] = mapped_column(String(64))
    model_versions: Mapped[dict[str, str] | None] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """Where the chain ends: its count and last hash, MAC'ed (one row, id 1)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
    head: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))
    """Empty while nothing was ever appended."""
    anchored_at: Mapped[str | None] = mapped_column(String(40))
    """When an anchor was first written for this chain (UTC, ISO-8601): every append since schema version 19 sets
    it. Null on a chain from before anchors existed, which `AuditLog` anchors when it opens it; once set, a missing
    anchor file was deleted."""


FIELDS = ("seq", "at", "actor", "action", "subject", "input_sha256", "model_versions", "details", "prev", "hash",
          "mac")


@dataclass(frozen=True)
class Head:
    count: int
    head: str
    mac: str
    anchored: bool = True
    """Whether an anchor was ever written for the chain (`AuditHead.anchored_at`)."""


Build = Callable[[Head], tuple[dict[str, Any], Head]]
"""Given the current head, the record to append (every field of FIELDS) and the new head."""


class AuditRecords:
    """Appends to and reads the audit chain of one database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def append(self, build: Build, *, committed: Callable[[Head], None] | None = None) -> dict[str, Any]:
        """Append the record `build` makes from the locked head; in the open transaction, if any. `committed`
        gets the new head once that transaction has committed (never when it rolls back)."""
        session = self.database.open_session()
        if session is not None:
            record, head = self._append(session, build)
            if committed is not None:
                event.listen(session, "after_commit", lambda _: committed(head), once=True)
            return record
        with self.database.session() as own:
            record, head = self._append(own, build)
        if committed is not None:
            committed(head)
        return record

    def hash_at(self, seq: int) -> str | None:
        """The hash of record `seq`, None when the chain has no such record."""
        with self.database.session() as session:
            return session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == seq))

    def head(self) -> Head | None:
        """Where the chain ends, or None when nothing was ever appended."""
        with self.database.session() as session:
            row = session.get(AuditHead, 1)
            return Head(row.count, row.head, row.mac, row.anchored_at is not None) if row else None

    def mark_anchored(self) -> None:
        """Record that the chain has an anchor (one found on disk, written before the head row could say so)."""
        with self.database.session() as session:
            session.execute(update(AuditHead).where(AuditHead.id == 1, AuditHead.anchored_at.is_(None))
                            .values(anchored_at=_now()))

    def count(self) -> int:
        with self.database.session() as session:
            return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)

    def entries(self, *, action: str | None = None, last: int | None = None, batch: int = 1000
                ) -> Iterator[dict[str, Any]]:
        """Records as dicts, oldest first; `action` keeps it and its sub-actions; `last` the newest n."""
        query = select(AuditEntry).order_by(AuditEntry.seq)
        if action is not None:
            query = query.where((AuditEntry.action == action) | AuditEntry.action.startswith(action + "."))
        if last is not None:
            with self.database.session() as session:
                rows = session.scalars(query.order_by(None).order_by(AuditEntry.seq.desc()).limit(last)).all()
            yield from (_as_dict(row) for row in reversed(rows))
            return
        after = 0
        while True:
            with self.database.session() as session:
                rows = session.scalars(query.where(AuditEntry.seq > after).limit(batch)).all()
            if not rows:
                return
            yield from (_as_dict(row) for row in rows)
            after = rows[-1].seq

    def import_records(self, records: Sequence[Mapping[str, Any]], head: Head) -> None:
        """Copy records of an earlier log verbatim (their hashes stay valid) into an empty chain."""
        with self.database.session() as session:
            _lock_head(session)
            if session.scalar(select(func.count()).select_from(AuditEntry)):
                raise ValueError("the database's audit chain is not empty")
            session.add_all(AuditEntry(**{name: record[name] for name in FIELDS}) for record in records)
            session.execute(update(AuditHead).where(AuditHead.id == 1)
                            .values(count=head.count, head=head.head, mac=head.mac, anchored_at=_now()))

    @staticmethod
    def _append(session: Session, build: Build) -> tuple[dict[str, Any], Head]:
        row = _lock_head(session)
        record, new_head = build(Head(row.count, row.head, row.mac, row.anchored_at is not None))
        session.add(AuditEntry(**{name: record[name] for name in FIELDS}))
        row.count, row.head, row.mac = new_head.count, new_head.head, new_head.mac
        if row.anchored_at is None:  # its commit writes the anchor (`append`'s `committed`)
            row.anchored_at = _now()
        session.flush()
        session.info[AUDITED] = True  # the commit check of a request's deadline: an action commits here
        return record, new_head


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _lock_head(session: Session) -> AuditHead:
    """The head row, locked for this transaction (created on first use)."""
    if session.get_bind().dialect.name == "sqlite":
        # Take SQLite's write lock now: a read first would let two writers read the same head.
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(count=AuditHead.count))
    query = select(AuditHead).where(AuditHead.id == 1).with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        try:
            with session.begin_nested():  # two first appends at once on PostgreSQL: one insert wins
                session.add(AuditHead(id=1, count=0, head=GENESIS, mac=""))
        except IntegrityError:
            pass
        row = session.scalars(query).one()
    return row


def _as_dict(row: AuditEntry) -> dict[str, Any]:
    return {name: getattr(row, name) for name in FIELDS}
