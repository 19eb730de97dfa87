"""`Rectifications`: each confirmed hazard followed until it is fixed and the fix verified."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hazardvision.data.base import utcnow
from hazardvision.data.database import Database
from hazardvision.data.inspection_records import RectificationRecord, RectificationStatus
from hazardvision.data.scans import Visibility, visible
from hazardvision.data.service_records import FindingRecord, ReviewRecord, ReviewStatus, ScanRecord
from hazardvision.errors import RectificationConflict, UnknownFinding, UnknownRectification


class Rectifications:
    def __init__(self, database: Database) -> None:
        self.database = database

    @contextmanager
    def assign(self, *, rectification_id: str, finding_id: str, responsible: str, deadline: dt.datetime,
               note: str | None, actor: str, visibility: Visibility | None = None) -> Iterator[RectificationRecord]:
        """Open the rectification of a confirmed finding and yield it inside the transaction (the caller's
        audit entry commits with it). One per finding: a second is a `RectificationConflict`. A finding of a scan
        `visibility` does not admit is an `UnknownFinding`, as one that does not exist."""
        with self.database.session() as session:
            finding = session.get(FindingRecord, finding_id)
            scan = session.get(ScanRecord, finding.scan_id) if finding is not None else None
            readable = visibility is None or (
                scan is not None and visibility.admits(actor=scan.actor, site=scan.site, camera=scan.camera))
            if finding is None or not readable:
                raise UnknownFinding(f"no finding {finding_id!r}; finding ids are in the findings of a scan")
            if finding.status != ReviewStatus.CONFIRMED.value:
                raise RectificationConflict(f"finding {finding_id} is {finding.status}; only a confirmed hazard is "
                                            "rectified (POST /v1/findings/{id}/review with decision confirm)")
            review = session.scalars(select(ReviewRecord).where(ReviewRecord.finding_id == finding_id)).first()
            if scan is not None and scan.deleted_at is not None:
                raise UnknownFinding(f"finding {finding_id} belongs to scan {scan.id}, which was deleted; its photo is "
                                     "gone")
            row = RectificationRecord(
                id=rectification_id, finding_id=finding_id, scan_id=finding.scan_id,
                class_name=review.class_name if review is not None else finding.class_name,
                site=scan.site if scan else None, enterprise=scan.enterprise if scan else None,
                responsible=responsible, deadline=deadline, status=RectificationStatus.OPEN.value,
                assigned_by=actor, assigned_at=utcnow(), note=note)
            session.add(row)
            try:
                session.flush()
            except IntegrityError as error:
                raise RectificationConflict(f"finding {finding_id} has a rectification already; GET "
                                            f"/v1/rectifications?finding_id={finding_id} shows it") from error
            yield row

    def get(self, *, rectification_id: str, visibility: Visibility | None = None) -> RectificationRecord:
        """The rectification; `UnknownRectification` if there is none or `visibility` does not admit it."""
        with self.database.session() as session:
            return _readable(session.get(RectificationRecord, rectification_id), rectification_id, visibility)

    @contextmanager
    def close(self, *, rectification_id: str, after_scan_id: str, passed: bool, actor: str,
              visibility: Visibility | None = None) -> Iterator[RectificationRecord]:
        """Record the after-photo's scan of an open rectification; yield it inside the transaction."""
        with self._changing(rectification_id, RectificationStatus.OPEN, "closed", visibility) as row:
            row.status = RectificationStatus.CLOSED.value
            row.after_scan_id, row.after_passed = after_scan_id, passed
            row.closed_by, row.closed_at = actor, utcnow()
            yield row

    @contextmanager
    def verify(self, *, rectification_id: str, accept: bool, reason: str | None, actor: str,
               visibility: Visibility | None = None) -> Iterator[RectificationRecord]:
        """Verify a closed rectification (accepted: verified; refused: open again, its after-photo kept in the
        audit log only); yield it inside the transaction."""
        with self._changing(rectification_id, RectificationStatus.CLOSED, "verified", visibility) as row:
            if row.closed_by == actor:
                raise RectificationConflict(f"rectification {rectification_id} was closed by {actor}; another "
                                            "inspector verifies it")
            if accept and not row.after_passed and not reason:
                raise RectificationConflict(f"the after-photo of rectification {rectification_id} still shows "
                                            f"{row.class_name}; accepting it needs a reason (override_reason)")
            if accept:
                row.status = RectificationStatus.VERIFIED.value
                row.verified_by, row.verified_at = actor, utcnow()
                row.override_reason = reason if not row.after_passed else None
            else:
                row.status = RectificationStatus.OPEN.value
                row.after_scan_id = row.after_passed = row.closed_by = row.closed_at = None
            yield row

    @contextmanager
    def _changing(self, rectification_id: str, expected: RectificationStatus, action: str,
                  visibility: Visibility | None) -> Iterator[RectificationRecord]:
        with self.database.session() as session:
            row = _readable(session.get(RectificationRecord, rectification_id, with_for_update=True),
                            rectification_id, visibility)
            if row.status != expected.value:
                raise RectificationConflict(f"rectification {rectification_id} is {row.status}; only an "
                                            f"{expected.value} one can be {action}")
            yield row
            session.flush()

    def list(self, *, enterprise: str | None = None, site: str | None = None, status: str | None = None,
             overdue_at: dt.datetime | None = None, finding_id: str | None = None,
             scan_ids: Sequence[str] | None = None, limit: int = 100, offset: int = 0,
             visibility: Visibility | None = None) -> builtins.list[RectificationRecord]:
        """Rectifications, earliest deadline first; `overdue_at`: only those still open past their deadline then;
        of those `visibility` admits (None: every one)."""
        query = (select(RectificationRecord).order_by(RectificationRecord.deadline, RectificationRecord.id)
                 .limit(limit).offset(offset))
        if enterprise:
            query = query.where(RectificationRecord.enterprise == enterprise)
        if site:
            query = query.where(RectificationRecord.site == site)
        if status:
            query = query.where(RectificationRecord.status == status)
        if overdue_at is not None:
            query = query.where(RectificationRecord.status == RectificationStatus.OPEN.value,
                                RectificationRecord.deadline < overdue_at)
        if finding_id:
            query = query.where(RectificationRecord.finding_id == finding_id)
        if scan_ids is not None:
            query = query.where(RectificationRecord.scan_id.in_(scan_ids))
        if visibility is not None:
            query = query.where(visibility.clause(actor=RectificationRecord.assigned_by,
                                                  site=RectificationRecord.site, camera=None))
        with self.database.session() as session:
            return builtins.list(session.scalars(query))


def _readable(row: RectificationRecord | None, rectification_id: str,
              visibility: Visibility | None) -> RectificationRecord:
    """The row, if there is one and `visibility` admits it (its site, or the key that assigned it)."""
    if row is None or not visible(visibility, actor=row.assigned_by, site=row.site, camera=None):
        raise UnknownRectification(f"no rectification {rectification_id!r}; GET /v1/rectifications lists them")
    return row
