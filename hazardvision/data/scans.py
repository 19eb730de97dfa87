"""`Scans`: the photos the service scanned, with the result each got and its findings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, false, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import QueryableAttribute, Session, selectinload

from hazardvision.data.bank_records import Case
from hazardvision.data.database import Database
from hazardvision.data.inspection_records import InspectionScanRecord, RectificationRecord, RectificationStatus
from hazardvision.data.service_records import FindingRecord, ReviewStatus, ScanRecord
from hazardvision.errors import DuplicateIdempotencyKey, ScanProtected, UnknownScan


@dataclass(frozen=True)
class Visibility:
    """The scans one key reads: those it made, those at its sites, those of its cameras (`None` instead of a
    Visibility: every scan)."""

    actor: str
    sites: frozenset[str] = frozenset()
    cameras: frozenset[str] = frozenset()

    def admits(self, *, actor: str | None, site: str | None, camera: str | None) -> bool:
        return actor == self.actor or site in self.sites or camera in self.cameras

    def clause(self, *, actor: QueryableAttribute[Any] = ScanRecord.actor,
               site: QueryableAttribute[Any] | None = ScanRecord.site,
               camera: QueryableAttribute[Any] | None = ScanRecord.camera) -> ColumnElement[bool]:
        """The same rule as `admits`, on `ScanRecord`'s columns or on another record's (inspections,
        rectifications, alerts: see `service.scopes`); None: the record has no such column."""
        terms = [actor == self.actor]
        if self.sites and site is not None:
            terms.append(site.in_(sorted(self.sites)))
        if self.cameras and camera is not None:
            terms.append(camera.in_(sorted(self.cameras)))
        return or_(false(), *terms)


def visible(visibility: Visibility | None, *, actor: str | None, site: str | None, camera: str | None) -> bool:
    return visibility is None or visibility.admits(actor=actor, site=site, camera=camera)


@dataclass(frozen=True)
class NewFinding:
    """A hazard found in a scanned photo, in pixels."""

    id: str
    class_name: str
    box: tuple[float, float, float, float]
    confidence: float
    pack: str


@dataclass(frozen=True)
class NewScan:
    id: str
    created_at: dt.datetime
    actor: str
    source: str
    image_sha256: str
    image_format: str
    result: dict[str, object]
    model_versions: dict[str, str]
    site: str | None = None
    enterprise: str | None = None
    camera: str | None = None
    note: str | None = None
    captured_at: dt.datetime | None = None
    idempotency_key: str | None = None
    stored_sha256: str | None = None
    """SHA-256 of the bytes kept, when they differ from those uploaded (`image_sha256`)."""


@dataclass(frozen=True)
class DeletedScan:
    """What deleting a scan removed from the database; its photo file is the caller's to remove."""

    scan_id: str
    image_sha256: str
    stored_sha256: str
    image_format: str
    photo_shared: bool
    """Another scan that is not deleted keeps the same stored photo: the file stays."""
    findings_removed: int
    findings_kept: int
    """Reviewed findings stay, for their reviews (and rectifications)."""


def stored_sha256(row: ScanRecord) -> str:
    """The SHA-256 the scan's photo file is stored under."""
    return row.stored_sha256 or row.image_sha256


class Scans:
    def __init__(self, database: Database) -> None:
        self.database = database

    @contextmanager
    def record(self, *, scan: NewScan, findings: Sequence[NewFinding]) -> Iterator[ScanRecord]:
        """Add a scan with its findings and yield it inside the transaction (what the caller does there, an
        audit entry, commits with it)."""
        row = ScanRecord(
            id=scan.id, created_at=scan.created_at, actor=scan.actor, source=scan.source, site=scan.site,
            enterprise=scan.enterprise, camera=scan.camera, note=scan.note, captured_at=scan.captured_at,
            image_sha256=scan.image_sha256, image_format=scan.image_format, result=scan.result,
            model_versions=scan.model_versions, idempotency_key=scan.idempotency_key,
            stored_sha256=scan.stored_sha256,
            findings=[FindingRecord(id=f.id, position=i, class_name=f.class_name, x1=f.box[0], y1=f.box[1],
                                    x2=f.box[2], y2=f.box[3], confidence=f.confidence, pack=f.pack)
                      for i, f in enumerate(findings)],
        )
        with self.database.session() as session:
            session.add(row)
            try:
                session.flush()
            except IntegrityError as error:
                if scan.idempotency_key is None:
                    raise
                # The only unique value a client chooses: a retry of this request was stored meanwhile.
                raise DuplicateIdempotencyKey(f"a scan with Idempotency-Key {scan.idempotency_key!r} was stored "
                                              "meanwhile") from error
            yield row

    def by_idempotency_key(self, *, actor: str, key: str) -> ScanRecord | None:
        """The scan this actor sent with this Idempotency-Key, findings loaded."""
        with self.database.session() as session:
            return session.scalar(select(ScanRecord).where(ScanRecord.actor == actor,
                                                           ScanRecord.idempotency_key == key)
                                  .options(selectinload(ScanRecord.findings)))

    def get(self, *, scan_id: str) -> ScanRecord | None:
        """The scan with its findings loaded."""
        with self.database.session() as session:
            return session.scalar(select(ScanRecord).where(ScanRecord.id == scan_id)
                                  .options(selectinload(ScanRecord.findings)))

    def protection(self, *, scan_id: str) -> list[str]:
        """Why the scan must be kept (empty: it may be deleted); `UnknownScan` for no such scan."""
        with self.database.session() as session:
            row = session.get(ScanRecord, scan_id)
            if row is None or row.deleted_at is not None:
                raise UnknownScan(_unknown(scan_id, row))
            return _protection(session, row)

    def photo_in_use(self, *, sha256: str) -> bool:
        """Whether a scan not deleted keeps its photo in the file stored under `sha256`."""
        with self.database.session() as session:
            return session.scalar(select(ScanRecord.id).where(
                ScanRecord.deleted_at.is_(None),
                or_(ScanRecord.stored_sha256 == sha256,
                    ScanRecord.stored_sha256.is_(None) & (ScanRecord.image_sha256 == sha256))).limit(1)) is not None

    def created_before(self, *, cutoff: dt.datetime) -> list[str]:
        """Ids of the scans made before `cutoff` that are not deleted, oldest first."""
        with self.database.session() as session:
            return list(session.scalars(
                select(ScanRecord.id).where(ScanRecord.created_at < cutoff, ScanRecord.deleted_at.is_(None))
                .order_by(ScanRecord.created_at, ScanRecord.id)))

    @contextmanager
    def delete(self, *, scan_id: str, at: dt.datetime) -> Iterator[DeletedScan]:
        """Delete a scan and yield what went inside the transaction (the caller's audit record commits with it).

        The row stays as a tombstone (`deleted_at`) with its id, time, actor, place, the SHA-256s of its photo
        and its model versions: the reviews and audit records that name it keep their meaning. Its result, note,
        file name, camera and Idempotency-Key are cleared and its unreviewed findings removed; reviewed findings
        stay for their reviews. `UnknownScan` for no (or a deleted) scan, `ScanProtected` naming why it is kept.
        """
        with self.database.session() as session:
            row = session.get(ScanRecord, scan_id, with_for_update=True)
            if row is None or row.deleted_at is not None:
                raise UnknownScan(_unknown(scan_id, row))
            reasons = _protection(session, row)
            if reasons:
                raise ScanProtected(f"scan {scan_id} is kept: {'; '.join(reasons)}")
            yield _delete(session, row, at)

    @contextmanager
    def purge(self, *, cutoff: dt.datetime, at: dt.datetime,
              dry_run: bool = False) -> Iterator[tuple[list[DeletedScan], dict[str, list[str]]]]:
        """Delete every scan made before `cutoff` that is not protected, in one transaction; yield what was
        deleted and, by scan id, why the others were kept (the caller's audit record commits with it). With
        `dry_run` nothing changes: the transaction is rolled back after the caller's block."""
        try:
            with self.database.session() as session:
                rows = session.scalars(select(ScanRecord).where(ScanRecord.created_at < cutoff,
                                                                ScanRecord.deleted_at.is_(None))
                                       .order_by(ScanRecord.created_at, ScanRecord.id).with_for_update()).all()
                deleted, kept = [], {}
                for row in rows:
                    reasons = _protection(session, row)
                    if reasons:
                        kept[row.id] = reasons
                    else:
                        deleted.append(_delete(session, row, at))
                yield deleted, kept
                if dry_run:
                    raise _DryRun
        except _DryRun:
            pass


class _DryRun(Exception):
    """Rolls a dry run's transaction back."""


def _delete(session: Session, row: ScanRecord, at: dt.datetime) -> DeletedScan:
    findings = session.scalars(select(FindingRecord).where(FindingRecord.scan_id == row.id)).all()
    pending = [f.id for f in findings if f.status == ReviewStatus.PENDING.value]
    if pending:
        session.execute(delete(FindingRecord).where(FindingRecord.id.in_(pending)))
    sha = stored_sha256(row)
    shared = session.scalar(select(ScanRecord.id).where(
        ScanRecord.id != row.id, ScanRecord.deleted_at.is_(None),
        or_(ScanRecord.stored_sha256 == sha,
            ScanRecord.stored_sha256.is_(None) & (ScanRecord.image_sha256 == sha))).limit(1)) is not None
    row.deleted_at = at
    row.result, row.note, row.source, row.camera, row.idempotency_key = {}, None, "", None, None
    session.flush()
    return DeletedScan(scan_id=row.id, image_sha256=row.image_sha256, stored_sha256=sha, image_format=row.image_format,
                       photo_shared=shared, findings_removed=len(pending), findings_kept=len(findings) - len(pending))


def _unknown(scan_id: str, row: ScanRecord | None) -> str:
    if row is not None and row.deleted_at is not None:
        return f"scan {scan_id} was deleted at {row.deleted_at.isoformat()}; its photo and result are gone"
    return f"no scan {scan_id!r}; scan ids are returned by POST /v1/scans"


def _protection(session: Session, row: ScanRecord) -> list[str]:
    """The reasons a scan is kept, each a phrase a user can act on. Reads the bank's, the inspections' and the
    rectifications' tables (never writes them)."""
    reasons = []
    sha = stored_sha256(row)
    case_id = session.scalar(select(Case.id).where(Case.image_sha256.in_({sha, row.image_sha256})).limit(1))
    if case_id is not None:
        reasons.append(f"its photo is case {case_id} of the sample bank")
    inspection = session.scalar(select(InspectionScanRecord.inspection_id)
                                .where(InspectionScanRecord.scan_id == row.id))
    if inspection is not None:
        reasons.append(f"it is filed in inspection {inspection}")
    open_statuses = [RectificationStatus.OPEN.value, RectificationStatus.CLOSED.value]
    for rectification in session.scalars(select(RectificationRecord).where(
            RectificationRecord.status.in_(open_statuses),
            or_(RectificationRecord.scan_id == row.id, RectificationRecord.after_scan_id == row.id))):
        if rectification.scan_id == row.id:
            reasons.append(f"the rectification {rectification.id} of its finding {rectification.finding_id} is "
                           f"{rectification.status}, not verified")
        else:
            reasons.append(f"it is the after-photo of rectification {rectification.id}, {rectification.status}, "
                           "not verified")
    return reasons
