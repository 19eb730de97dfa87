"""`HazardRectifications`: a confirmed hazard gets a responsible party and a deadline, is closed by an
after-photo the service scans, and is verified by an inspector other than the one who closed it.

The after-photo passes when its scan reports no finding of the hazard's class; a verifier may still
accept one that did not pass, with a reason. Every step is one audit record, committed with it. Which
rectifications a key reads and changes, and which findings it assigns: `service.scopes` (a `Visibility`; None:
every one).
"""

from __future__ import annotations

import datetime as dt
import uuid

from hazardvision.data.audit import AuditLog
from hazardvision.data.base import utcnow
from hazardvision.data.database import Database
from hazardvision.data.inspection_records import RectificationRecord, RectificationStatus
from hazardvision.data.rectifications import Rectifications
from hazardvision.data.scans import Visibility
from hazardvision.service.schemas.common import as_utc
from hazardvision.service.schemas.rectifications import (
    RectificationFilter,
    RectificationRequest,
    RectificationView,
    StatusFilter,
    VerifyRequest,
)
from hazardvision.service.schemas.scans import ScanResponse


class HazardRectifications:
    def __init__(self, database: Database, audit: AuditLog) -> None:
        self.records = Rectifications(database)
        self.audit = audit

    def assign(self, finding_id: str, request: RectificationRequest, actor: str,
               visibility: Visibility | None = None) -> RectificationView:
        """Open the rectification of a confirmed finding (of a scan `visibility` admits)."""
        with self.records.assign(rectification_id=uuid.uuid4().hex, finding_id=finding_id,
                                 responsible=request.responsible, deadline=request.deadline, note=request.note,
                                 actor=actor, visibility=visibility) as row:
            self._audit(row, actor, "rectification.assign", responsible=row.responsible,
                        deadline=request.deadline.isoformat())
            return view(row)

    def get(self, rectification_id: str, visibility: Visibility | None = None) -> RectificationView:
        return view(self.records.get(rectification_id=rectification_id, visibility=visibility))

    def close(self, rectification_id: str, after: ScanResponse, actor: str,
              visibility: Visibility | None = None) -> RectificationView:
        """Close an open rectification with the scan of its after-photo."""
        class_name = self.records.get(rectification_id=rectification_id, visibility=visibility).class_name
        passed = not any(finding.class_name == class_name for finding in after.findings)
        with self.records.close(rectification_id=rectification_id, after_scan_id=after.scan_id, passed=passed,
                                actor=actor, visibility=visibility) as row:
            self._audit(row, actor, "rectification.close", after_scan_id=after.scan_id, passed=passed,
                        input_sha256=after.image.sha256)
            return view(row)

    def verify(self, rectification_id: str, request: VerifyRequest, actor: str,
               visibility: Visibility | None = None) -> RectificationView:
        """Verify (or refuse) a closed rectification; never by the key that closed it."""
        with self.records.verify(rectification_id=rectification_id, accept=request.accept,
                                 reason=request.override_reason, actor=actor, visibility=visibility) as row:
            self._audit(row, actor, "rectification.verify" if request.accept else "rectification.refuse",
                        override_reason=request.override_reason)
            return view(row)

    def list(self, query: RectificationFilter, visibility: Visibility | None = None) -> list[RectificationView]:
        overdue = query.status is StatusFilter.OVERDUE
        status = None if query.status is None or overdue else query.status.value
        rows = self.records.list(enterprise=query.enterprise, site=query.site, status=status,
                                 overdue_at=utcnow() if overdue else None, finding_id=query.finding_id,
                                 limit=query.limit, offset=query.offset, visibility=visibility)
        return [view(row) for row in rows]

    def _audit(self, row: RectificationRecord, actor: str, action: str, *, input_sha256: str | None = None,
               **details: object) -> None:
        # Inside the step's transaction: a step that cannot be audited is not recorded.
        self.audit.append(actor, action, row.id, input_sha256=input_sha256,
                          details={"finding_id": row.finding_id, "status": row.status, **details})


def view(row: RectificationRecord) -> RectificationView:
    deadline = as_utc(row.deadline) or dt.datetime.now(dt.UTC)
    return RectificationView(
        id=row.id, finding_id=row.finding_id, scan_id=row.scan_id, class_name=row.class_name, site=row.site,
        enterprise=row.enterprise, responsible=row.responsible, deadline=deadline,
        status=RectificationStatus(row.status),
        overdue=row.status == RectificationStatus.OPEN.value and deadline < utcnow(), note=row.note,
        assigned_by=row.assigned_by, assigned_at=as_utc(row.assigned_at) or deadline,
        after_scan_id=row.after_scan_id, after_passed=row.after_passed, closed_by=row.closed_by,
        closed_at=as_utc(row.closed_at), verified_by=row.verified_by, verified_at=as_utc(row.verified_at),
        override_reason=row.override_reason)
