"""`FindingReviews`: an inspector's verdict turns a finding into sample-bank knowledge.

A confirmed finding becomes an annotation of origin "confirmed" on the case of its photo (the
case is made on first use: source kind "scan", the scan's site, enterprise, time and note); a
rejected one becomes an annotation of origin "rejected", a known false alarm that the
similar-case index keeps apart. The photo joins the bank's store the way an import writes one:
journalled as pending, written, then committed with its case. A finding is reviewed once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hazardvision.audit import AuditLog
from hazardvision.bank.bank import SampleBank
from hazardvision.bank.groups import dhash
from hazardvision.catalogue import Catalogue
from hazardvision.data.bank_records import Annotation, Case, Image, Origin, PendingImage, utcnow
from hazardvision.data.service_records import FindingRecord, ReviewRecord, ReviewStatus, ScanRecord
from hazardvision.errors import BankError, HazardVisionError, InvalidReview, ReviewConflict, UnknownFinding
from hazardvision.images import decode_image
from hazardvision.results import Box
from hazardvision.service.archive import ScanArchive, stored
from hazardvision.service.schemas.common import as_utc
from hazardvision.service.schemas.reviews import Decision, ReviewRequest, ReviewResponse

log = logging.getLogger("hazardvision.service")

SCAN_SOURCE = "service-scans"
"""The bank source of every case made from a reviewed scan."""


@dataclass(frozen=True)
class _Verdict:
    """What a review writes: the finding's photo, its class and box after corrections."""

    finding_id: str
    scan: ScanRecord
    class_name: str
    box: Box
    corrected: bool


class FindingReviews:
    """Records reviews in the bank; `on_change` is called after each (to sync the similar-case indexes)."""

    def __init__(self, bank: SampleBank, archive: ScanArchive, audit: AuditLog, catalogue: Catalogue,
                 on_change: Callable[[], object] | None = None) -> None:
        self.bank = bank
        self.archive = archive
        self.audit = audit
        self.catalogue = catalogue
        self.on_change = on_change

    def review(self, finding_id: str, request: ReviewRequest, actor: str) -> ReviewResponse:
        """Record the verdict; `ReviewConflict` if the finding was reviewed already."""
        with self.bank.writer():
            verdict = self._verdict(finding_id, request)
            case_id = self._case_of(verdict)
            response = self._commit(verdict, case_id, request, actor)
        if self.on_change is not None:
            try:
                self.on_change()
            except HazardVisionError as error:  # the review stands; `bank reindex` repairs an index
                log.warning("similar-case index not synced after review %d: %s", response.id, error)
        return response

    def list(self, *, scan_id: str | None, site: str | None, enterprise: str | None, limit: int,
             offset: int) -> list[ReviewResponse]:
        """Reviews, newest first, of one scan or of the scans at a site or of an enterprise."""
        query = select(ReviewRecord).order_by(ReviewRecord.id.desc()).limit(limit).offset(offset)
        if scan_id:
            query = query.where(ReviewRecord.scan_id == scan_id)
        if site or enterprise:
            query = query.join(ScanRecord, ScanRecord.id == ReviewRecord.scan_id)
            if site:
                query = query.where(ScanRecord.site == site)
            if enterprise:
                query = query.where(ScanRecord.enterprise == enterprise)
        with self.bank.session() as session:
            return [_response(row) for row in session.scalars(query)]

    def _verdict(self, finding_id: str, request: ReviewRequest) -> _Verdict:
        with self.bank.session() as session:
            finding = session.get(FindingRecord, finding_id)
            if finding is None:
                raise UnknownFinding(f"no finding {finding_id!r}; finding ids are in the findings of a scan")
            if finding.status != ReviewStatus.PENDING.value:
                raise ReviewConflict(f"finding {finding_id} was already {finding.status}; a review is final")
            scan = finding.scan
            session.expunge(scan)
            class_name = request.class_name or finding.class_name
            self.catalogue.entry(class_name)  # UnknownClass names the classes that exist
            width, height = scan.result["image"]["width"], scan.result["image"]["height"]  # type: ignore[index]
            box = request.box or Box(x1=max(finding.x1, 0), y1=max(finding.y1, 0), x2=min(finding.x2, width),
                                     y2=min(finding.y2, height))
            if not (0 <= box.x1 < box.x2 <= width and 0 <= box.y1 < box.y2 <= height):
                raise InvalidReview(f"the box {box.x1},{box.y1},{box.x2},{box.y2} is not inside the {width}x{height} "
                                    "photo with x1 < x2 and y1 < y2")
            corrected = class_name != finding.class_name or request.box is not None
            return _Verdict(finding_id, scan, class_name, box, corrected)

    def _case_of(self, verdict: _Verdict) -> int:
        """The case of the finding's photo, made (with the photo put in the bank's store) if there is none."""
        scan = verdict.scan
        sha = scan.image_sha256
        with self.bank.session() as session:
            existing = session.scalar(select(Case.id).where(Case.image_sha256 == sha))
            if existing is not None:
                return existing
            if session.get(PendingImage, sha) is None:  # (left by a failed attempt otherwise)
                session.add(PendingImage(sha256=sha))  # step 1 of the importer's crash-safe write
        data = self.archive.photo(stored(scan))
        decoded = decode_image(data)
        try:
            self.bank.store.put(sha, scan.image_format, data)  # step 2
        except OSError as error:
            raise BankError(f"cannot write the photo into {self.bank.store.root}: {error.strerror}") from error
        area_hash, bilinear_hash = dhash(decoded.pixels)
        with self.bank.session() as session:  # step 3
            source_id = self.bank.source(session, SCAN_SOURCE, kind="scan", origin="hazardvision service",
                                         licence=None).id
            site_id, enterprise_id = self.bank.place(session, scan.site, scan.enterprise)
            session.add(Image(sha256=sha, width=decoded.width, height=decoded.height, format=scan.image_format,
                              size_bytes=len(data), dhash=area_hash, dhash_bilinear=bilinear_hash))
            case = Case(image_sha256=sha, source_id=source_id, source_file=f"{scan.id}/{scan.source}",
                        site_id=site_id, enterprise_id=enterprise_id, captured_at=scan.captured_at,
                        description=scan.note, location=scan.camera)
            session.add(case)
            session.flush()
            pending = session.get(PendingImage, sha)
            if pending is not None:
                session.delete(pending)
            return case.id

    def _commit(self, verdict: _Verdict, case_id: int, request: ReviewRequest, actor: str) -> ReviewResponse:
        confirmed = request.decision is Decision.CONFIRM
        box = verdict.box
        now = utcnow()
        try:
            with self.bank.session() as session:
                finding = session.get(FindingRecord, verdict.finding_id)
                if finding is None or finding.status != ReviewStatus.PENDING.value:
                    raise ReviewConflict(f"finding {verdict.finding_id} was reviewed meanwhile; a review is final")
                annotation = Annotation(
                    case_id=case_id, class_name=verdict.class_name, source_class=finding.class_name,
                    x1=box.x1, y1=box.y1, x2=box.x2, y2=box.y2,
                    origin=(Origin.CONFIRMED if confirmed else Origin.REJECTED).value,
                    reviewer=request.reviewer, reviewed_at=now, note=request.note)
                session.add(annotation)
                session.flush()
                finding.status = (ReviewStatus.CONFIRMED if confirmed else ReviewStatus.REJECTED).value
                row = ReviewRecord(
                    finding_id=verdict.finding_id, scan_id=verdict.scan.id, decision=request.decision.value,
                    reviewer=request.reviewer, actor=actor, note=request.note, class_name=verdict.class_name,
                    x1=box.x1, y1=box.y1, x2=box.x2, y2=box.y2, corrected=verdict.corrected, case_id=case_id,
                    annotation_id=annotation.id, created_at=now)
                session.add(row)
                session.flush()
                self._audit(row, verdict)
                return _response(row)
        except IntegrityError as error:  # another process reviewed it between our check and our commit
            raise ReviewConflict(f"finding {verdict.finding_id} was reviewed meanwhile; a review is final") from error

    def _audit(self, row: ReviewRecord, verdict: _Verdict) -> None:
        # Called inside the review's transaction: a review that cannot be audited is not recorded.
        self.audit.append(
            row.actor, f"review.{row.decision}", row.finding_id, input_sha256=verdict.scan.image_sha256,
            model_versions=verdict.scan.model_versions,
            details={"scan_id": row.scan_id, "reviewer": row.reviewer, "class_name": row.class_name,
                     "corrected": row.corrected, "case_id": row.case_id, "annotation_id": row.annotation_id})


def _response(row: ReviewRecord) -> ReviewResponse:
    return ReviewResponse(
        id=row.id, finding_id=row.finding_id, scan_id=row.scan_id, decision=Decision(row.decision),
        reviewer=row.reviewer, actor=row.actor, note=row.note, class_name=row.class_name,
        box=Box(x1=row.x1, y1=row.y1, x2=row.x2, y2=row.y2), corrected=row.corrected, case_id=row.case_id,
        annotation_id=row.annotation_id, created_at=as_utc(row.created_at) or dt.datetime.now(dt.UTC))
