"""`SiteInspections`: the scans of one visit grouped into an inspection, and read back with their findings,
reviews and rectifications. Opening one and filing scans under it are audited. Which inspections a key reads and
changes, and which scans it files: `service.scopes` (a `Visibility`; None: every one)."""

from __future__ import annotations

import datetime as dt
import uuid

from hazardvision.data.audit import AuditLog
from hazardvision.data.base import utcnow
from hazardvision.data.database import Database
from hazardvision.data.inspection_records import InspectionRecord
from hazardvision.data.inspections import Inspections
from hazardvision.data.rectifications import Rectifications
from hazardvision.data.scans import Visibility
from hazardvision.service.archive import stored
from hazardvision.service.rectification import view as rectification_view
from hazardvision.service.review import review_response
from hazardvision.service.schemas.common import as_utc
from hazardvision.service.schemas.inspections import (
    InspectionDetail,
    InspectionFilter,
    InspectionRequest,
    InspectionView,
)


class SiteInspections:
    def __init__(self, database: Database, audit: AuditLog) -> None:
        self.records = Inspections(database)
        self.rectifications = Rectifications(database)
        self.audit = audit

    def open(self, request: InspectionRequest, actor: str, visibility: Visibility | None = None) -> InspectionDetail:
        """Record a visit (the signed-in key is its inspector), with the scans given filed under it."""
        with self.records.open(inspection_id=uuid.uuid4().hex, site=request.site, enterprise=request.enterprise,
                               inspector=actor, visited_on=request.visited_on or utcnow(), notes=request.notes,
                               scan_ids=request.scan_ids, visibility=visibility) as row:
            self.audit.append(actor, "inspection.open", row.id, details={
                "site": row.site, "enterprise": row.enterprise, "scan_ids": list(dict.fromkeys(request.scan_ids))})
            inspection_id = row.id
        return self.get(inspection_id, visibility)

    def file_scans(self, inspection_id: str, scan_ids: list[str], actor: str,
                   visibility: Visibility | None = None) -> InspectionDetail:
        """File more scans under an inspection (audited when any is new)."""
        with self.records.file_scans(inspection_id=inspection_id, scan_ids=scan_ids, actor=actor,
                                     visibility=visibility) as new:
            if new:
                self.audit.append(actor, "inspection.file_scans", inspection_id, details={"scan_ids": new})
        return self.get(inspection_id, visibility)

    def get(self, inspection_id: str, visibility: Visibility | None = None) -> InspectionDetail:
        """The inspection whole: every scan filed under it, their reviews and rectifications."""
        row = self.records.get(inspection_id=inspection_id, visibility=visibility)
        scans, reviews = self.records.contents(inspection_id=inspection_id)
        rectifications = self.rectifications.list(scan_ids=[scan.id for scan in scans], limit=1000) if scans else []
        return InspectionDetail(**inspection_view(row).model_dump(), scans=[stored(scan).response for scan in scans],
                                reviews=[review_response(review) for review in reviews],
                                rectifications=[rectification_view(r) for r in rectifications])

    def list(self, query: InspectionFilter, visibility: Visibility | None = None) -> list[InspectionView]:
        rows = self.records.list(site=query.site, enterprise=query.enterprise, since=query.since,
                                 until=query.until, limit=query.limit, offset=query.offset, visibility=visibility)
        return [inspection_view(row) for row in rows]


def inspection_view(row: InspectionRecord) -> InspectionView:
    visited = as_utc(row.visited_on) or dt.datetime.now(dt.UTC)
    return InspectionView(id=row.id, site=row.site, enterprise=row.enterprise, inspector=row.inspector,
                          visited_on=visited, notes=row.notes, created_at=as_utc(row.created_at) or visited,
                          scan_ids=[scan.scan_id for scan in row.scans])
