"""`Inspections`: site visits and the scans filed under them."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from hazardvision.data.base import utcnow
from hazardvision.data.database import Database
from hazardvision.data.inspection_records import InspectionRecord, InspectionScanRecord
from hazardvision.data.scans import Visibility, visible
from hazardvision.data.service_records import FindingRecord, ReviewRecord, ScanRecord
from hazardvision.errors import InspectionConflict, UnknownInspection, UnknownScan


class Inspections:
    def __init__(self, database: Database) -> None:
        self.database = database

    @contextmanager
    def open(self, *, inspection_id: str, site: str, enterprise: str | None, inspector: str,
             visited_on: dt.datetime, notes: str | None, scan_ids: Sequence[str] = (),
             visibility: Visibility | None = None) -> Iterator[InspectionRecord]:
        """Add an inspection with the scans given filed under it (see `file_scans`) and yield it inside the
        transaction (the caller's audit entry commits with it)."""
        with self.database.session() as session:
            row = InspectionRecord(id=inspection_id, site=site, enterprise=enterprise, inspector=inspector,
                                   visited_on=visited_on, notes=notes, created_at=utcnow())
            session.add(row)
            session.flush()
            _file(session, inspection_id, scan_ids, inspector, visibility)
            yield row

    def get(self, *, inspection_id: str, visibility: Visibility | None = None) -> InspectionRecord:
        """The inspection with its scans; `UnknownInspection` if there is none or `visibility` does not admit it
        (None: every inspection)."""
        with self.database.session() as session:
            row = session.get(InspectionRecord, inspection_id, options=[selectinload(InspectionRecord.scans)])
            return _readable(row, inspection_id, visibility)

    def list(self, *, site: str | None = None, enterprise: str | None = None, since: dt.datetime | None = None,
             until: dt.datetime | None = None, limit: int = 50, offset: int = 0,
             visibility: Visibility | None = None) -> builtins.list[InspectionRecord]:
        """Inspections, latest visit first, at a site, of an enterprise, visited in [since, until); of those
        `visibility` admits (None: every one)."""
        query = (select(InspectionRecord).options(selectinload(InspectionRecord.scans))
                 .order_by(InspectionRecord.visited_on.desc(), InspectionRecord.id).limit(limit).offset(offset))
        if site:
            query = query.where(InspectionRecord.site == site)
        if enterprise:
            query = query.where(InspectionRecord.enterprise == enterprise)
        if since is not None:
            query = query.where(InspectionRecord.visited_on >= since)
        if until is not None:
            query = query.where(InspectionRecord.visited_on < until)
        if visibility is not None:
            query = query.where(visibility.clause(actor=InspectionRecord.inspector, site=InspectionRecord.site,
                                                  camera=None))
        with self.database.session() as session:
            return builtins.list(session.scalars(query))

    @contextmanager
    def file_scans(self, *, inspection_id: str, scan_ids: Sequence[str], actor: str,
                   visibility: Visibility | None = None) -> Iterator[builtins.list[str]]:
        """File scans under the inspection and yield the ids newly filed, inside the transaction. A scan filed
        under it already is left as it is; one filed under another inspection is an `InspectionConflict`. The
        inspection and the scans must be ones `visibility` admits (else unknown ones)."""
        with self.database.session() as session:
            _readable(session.get(InspectionRecord, inspection_id, with_for_update=True), inspection_id, visibility)
            yield _file(session, inspection_id, scan_ids, actor, visibility)

    def contents(self, *, inspection_id: str) -> tuple[builtins.list[ScanRecord], builtins.list[ReviewRecord]]:
        """The inspection's scans (in filing order, findings loaded) and the reviews of their findings."""
        with self.database.session() as session:
            scans = builtins.list(session.scalars(
                select(ScanRecord).join(InspectionScanRecord, InspectionScanRecord.scan_id == ScanRecord.id)
                .where(InspectionScanRecord.inspection_id == inspection_id)
                .options(selectinload(ScanRecord.findings)).order_by(InspectionScanRecord.added_at, ScanRecord.id)))
            reviews = builtins.list(session.scalars(
                select(ReviewRecord).join(FindingRecord, FindingRecord.id == ReviewRecord.finding_id)
                .where(FindingRecord.scan_id.in_([scan.id for scan in scans])).order_by(ReviewRecord.id)))
            return scans, reviews


def _readable(row: InspectionRecord | None, inspection_id: str, visibility: Visibility | None) -> InspectionRecord:
    if row is None or not visible(visibility, actor=row.inspector, site=row.site, camera=None):
        raise UnknownInspection(f"no inspection {inspection_id!r}; GET /v1/inspections lists them")
    return row


def _file(session: Session, inspection_id: str, scan_ids: Sequence[str], actor: str,
          visibility: Visibility | None) -> list[str]:
    """File the scans; one `visibility` does not admit is refused as an unknown one (whoever reads the inspection
    reads the scans filed under it)."""
    wanted = list(dict.fromkeys(scan_ids))
    if not wanted:
        return []
    # Locked: a scan being deleted meanwhile is either filed first (and kept) or deleted first (and refused here).
    query = select(ScanRecord.id).where(ScanRecord.id.in_(wanted), ScanRecord.deleted_at.is_(None))
    if visibility is not None:
        query = query.where(visibility.clause())
    known = set(session.scalars(query.with_for_update()))
    missing = [scan_id for scan_id in wanted if scan_id not in known]
    if missing:
        raise UnknownScan(f"no scans {missing} (or deleted ones); scan ids come from POST /v1/scans")
    filed = {row.scan_id: row.inspection_id for row in session.scalars(
        select(InspectionScanRecord).where(InspectionScanRecord.scan_id.in_(wanted)))}
    elsewhere = sorted(scan_id for scan_id, other in filed.items() if other != inspection_id)
    if elsewhere:
        raise InspectionConflict(f"the scans {elsewhere} are filed under other inspections already; a scan belongs "
                                 "to one inspection")
    new = [scan_id for scan_id in wanted if scan_id not in filed]
    session.add_all(InspectionScanRecord(scan_id=scan_id, inspection_id=inspection_id, added_at=utcnow(),
                                         added_by=actor) for scan_id in new)
    try:
        session.flush()
    except IntegrityError as error:  # another request filed one of them meanwhile
        raise InspectionConflict(f"one of the scans {new} was filed under another inspection meanwhile") from error
    return new
