"""`FindingReviews`: an inspector's verdict turns a finding into sample-bank knowledge.

A confirmed finding becomes an annotation of origin "confirmed" on the case of its photo (the
case is made on first use: source kind "scan", the scan's site, enterprise, time and note); a
rejected one becomes an annotation of origin "rejected", a known false alarm that the
similar-case index keeps apart. The photo joins the bank through the same crash-safe path as an
import's (`Cases.add`). A finding is reviewed once.
"""

from __future__ import annotations

import builtins
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from hazardvision.bank.bank import SampleBank, new_photo
from hazardvision.catalogue import Catalogue
from hazardvision.data.audit import AuditLog
from hazardvision.data.base import utcnow
from hazardvision.data.cases import NewCase
from hazardvision.data.reviews import Reviews
from hazardvision.data.scans import Visibility, stored_sha256, visible
from hazardvision.data.service_records import ReviewRecord, ReviewStatus, ScanRecord
from hazardvision.errors import BankError, HazardVisionError, InvalidReview, ReviewConflict, UnknownFinding
from hazardvision.images import decode_image
from hazardvision.results import Box, HazardInfo
from hazardvision.service.archive import ScanArchive, stored
from hazardvision.service.schemas.common import as_utc
from hazardvision.service.schemas.reviews import (
    Decision,
    PendingFilter,
    PendingFinding,
    ReviewRequest,
    ReviewResponse,
)

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
    """Records reviews in the bank; `on_change` is called with the review's case id after each (to sync the
    similar-case indexes)."""

    def __init__(self, bank: SampleBank, archive: ScanArchive, audit: AuditLog, catalogue: Catalogue,
                 on_change: Callable[[int], object] | None = None) -> None:
        self.bank = bank
        self.records = Reviews(bank.database)
        self.archive = archive
        self.audit = audit
        self.catalogue = catalogue
        self.on_change = on_change

    def review(self, finding_id: str, request: ReviewRequest, actor: str,
               visibility: Visibility | None = None) -> ReviewResponse:
        """Record the verdict; `ReviewConflict` if the finding was reviewed already; `UnknownFinding` for one of a
        scan `visibility` does not admit."""
        with self.bank.writer():
            verdict = self._verdict(finding_id, request, visibility)
            case_id = self._case_of(verdict)
            response = self._commit(verdict, case_id, request, actor)
        if self.on_change is not None:
            try:
                self.on_change(case_id)
            except HazardVisionError as error:  # the review stands; `bank reindex` repairs an index
                log.warning("similar-case index not synced after review %d: %s", response.id, error)
        return response

    def list(self, *, scan_id: str | None, site: str | None, enterprise: str | None, limit: int,
             offset: int, visibility: Visibility | None = None) -> list[ReviewResponse]:
        """Reviews, newest first, of one scan or of the scans at a site or of an enterprise (of the scans
        `visibility` admits)."""
        return [review_response(row) for row in self.records.list(scan_id=scan_id, site=site, enterprise=enterprise,
                                                            limit=limit, offset=offset, visibility=visibility)]

    def pending(self, query: PendingFilter, visibility: Visibility | None = None) -> builtins.list[PendingFinding]:
        """The review queue: findings not yet reviewed, newest scan first (of the scans `visibility` admits)."""
        classes = None if query.severity is None else [
            entry.class_name for entry in self.catalogue.classes if entry.severity is query.severity]
        rows = self.records.pending(site=query.site, enterprise=query.enterprise, class_names=classes,
                                    limit=query.limit, offset=query.offset, visibility=visibility)
        return [PendingFinding(
            id=row.id, scan_id=row.scan_id, class_name=row.class_name, confidence=row.confidence,
            hazard=HazardInfo.of(self.catalogue.entry(row.class_name)),
            box=Box(x1=row.x1, y1=row.y1, x2=row.x2, y2=row.y2), site=row.scan.site, enterprise=row.scan.enterprise,
            scanned_at=as_utc(row.scan.created_at) or dt.datetime.now(dt.UTC)) for row in rows]

    def _verdict(self, finding_id: str, request: ReviewRequest, visibility: Visibility | None) -> _Verdict:
        finding = self.records.finding(finding_id=finding_id)
        if finding is None or not visible(visibility, actor=finding.scan.actor, site=finding.scan.site,
                                          camera=finding.scan.camera):
            raise UnknownFinding(f"no finding {finding_id!r}; finding ids are in the findings of a scan")
        if finding.status != ReviewStatus.PENDING.value:
            raise ReviewConflict(f"finding {finding_id} was already {finding.status}; a review is final")
        scan = finding.scan
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
        kept = stored_sha256(scan)  # the bytes the bank gets: the upload without its location
        for sha in dict.fromkeys((scan.image_sha256, kept)):  # an imported photo is its upload's bytes
            existing = self.bank.records.case_of_photo(sha256=sha)
            if existing is not None:
                return existing
        provenance = self.bank.records.provenance(source=SCAN_SOURCE, kind="scan", origin="hazardvision service",
                                                  site=scan.site, enterprise=scan.enterprise)
        data = self.archive.photo(stored(scan))
        case = NewCase(photo=new_photo(decode_image(data), data), source_file=f"{scan.id}/{scan.source}",
                       captured_at=scan.captured_at, description=scan.note, location=scan.camera)
        added = self.bank.records.add(cases=[case], provenance=provenance)
        case_id = added.get(kept) or self.bank.records.case_of_photo(sha256=kept)
        if case_id is None:
            raise BankError(f"the photo of scan {scan.id} did not become a case in the bank at {self.bank.home}")
        return case_id

    def _commit(self, verdict: _Verdict, case_id: int, request: ReviewRequest, actor: str) -> ReviewResponse:
        box = verdict.box
        with self.records.record(
            finding_id=verdict.finding_id, scan_id=verdict.scan.id, case_id=case_id,
            confirmed=request.decision is Decision.CONFIRM, decision=request.decision.value,
            reviewer=request.reviewer or actor, actor=actor, note=request.note, class_name=verdict.class_name,
            box=(box.x1, box.y1, box.x2, box.y2), corrected=verdict.corrected, at=utcnow(),
        ) as row:
            self._audit(row, verdict)
            return review_response(row)

    def _audit(self, row: ReviewRecord, verdict: _Verdict) -> None:
        # Called inside the review's transaction: a review that cannot be audited is not recorded.
        self.audit.append(
            row.actor, f"review.{row.decision}", row.finding_id, input_sha256=verdict.scan.image_sha256,
            model_versions=verdict.scan.model_versions,
            details={"scan_id": row.scan_id, "reviewer": row.reviewer, "class_name": row.class_name,
                     "corrected": row.corrected, "case_id": row.case_id, "annotation_id": row.annotation_id})


def review_response(row: ReviewRecord) -> ReviewResponse:
    return ReviewResponse(
        id=row.id, finding_id=row.finding_id, scan_id=row.scan_id, decision=Decision(row.decision),
        reviewer=row.reviewer, actor=row.actor, note=row.note, class_name=row.class_name,
        box=Box(x1=row.x1, y1=row.y1, x2=row.x2, y2=row.y2), corrected=row.corrected, case_id=row.case_id,
        annotation_id=row.annotation_id, created_at=as_utc(row.created_at) or dt.datetime.now(dt.UTC))
