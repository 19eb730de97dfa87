"""`ScanArchive`: every scan the service made, its photo and its findings, for reading back and reviewing.

Photos go to a content-addressed store at `HOME/scans/` beside the bank's own (written
atomically; a photo scanned twice is kept once), without their EXIF and XMP GPS position unless the
settings keep it: a scan records both the SHA-256 of the bytes uploaded (the photo's identity) and
that of the bytes stored (the file's name). They join the bank's store only when a review
turns them into a case, so the bank holds reviewed photos only. The file is written before the
scan's transaction, so that no committed scan names a missing file; a scan that does not commit
(past its request's deadline, a failed audit) removes the file it wrote unless another scan keeps it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit import AuditLog
from hazardvision.data.base import utcnow
from hazardvision.data.image_store import ImageStore
from hazardvision.data.scans import NewFinding, NewScan, Scans, stored_sha256
from hazardvision.data.service_records import ScanRecord
from hazardvision.errors import (
    BankError,
    DuplicateIdempotencyKey,
    HazardVisionError,
    IdempotencyKeyReused,
    PlaceConflict,
    UnknownScan,
)
from hazardvision.home import Home
from hazardvision.images import DecodedImage
from hazardvision.photo_location import without_location
from hazardvision.results import ScanResult
from hazardvision.service.schemas.common import as_utc
from hazardvision.service.schemas.scans import ScanContext, ScanResponse

log = logging.getLogger("hazardvision.service")


@dataclass(frozen=True)
class StoredScan:
    """A recorded scan with where its photo is."""

    response: ScanResponse
    image_sha256: str
    image_format: str
    actor: str
    stored_sha256: str
    """The SHA-256 the photo's file is stored under (the upload's, or that of the upload without its location)."""


class ScanArchive:
    """Scans in the bank database (`data.scans`) and their photos in `HOME/scans/`."""

    def __init__(self, bank: SampleBank, audit: AuditLog, *, keep_location: bool = False) -> None:
        self.bank = bank
        self.audit = audit
        self.keep_location = keep_location
        self.records = Scans(bank.database)
        self.photos = ImageStore(Home(bank.home).scans)

    def check_place(self, context: ScanContext) -> None:
        """Refuse a site the bank already files under another enterprise (it could never become a case)."""
        if not (context.site and context.enterprise):
            return
        owner = self.bank.records.enterprise_of_site(site=context.site)
        if owner is not None and owner != context.enterprise:
            raise PlaceConflict(f"site {context.site!r} belongs to enterprise {owner!r} in the sample bank, not "
                                f"{context.enterprise!r}; correct the site or the enterprise")

    def replay(self, actor: str, idempotency_key: str, image_sha256: str) -> StoredScan | None:
        """The scan `actor` already sent with this Idempotency-Key, if any; refused if it was of another photo."""
        row = self.records.by_idempotency_key(actor=actor, key=idempotency_key)
        if row is None:
            return None
        if row.image_sha256 != image_sha256:
            raise IdempotencyKeyReused(f"Idempotency-Key {idempotency_key!r} already named scan {row.id} of another "
                                       "photo; send a new key with each new request, and the same key only when "
                                       "retrying the same photo")
        return stored(row)

    def record(self, scan_id: str, actor: str, context: ScanContext, *, image: DecodedImage, data: bytes,
               result: ScanResult, idempotency_key: str | None = None) -> StoredScan:
        """Keep the photo, the scan and its findings, and audit it; the scan exists only if all of that worked.

        With an `idempotency_key` that a concurrent retry stored first, that scan is returned instead."""
        kept = data if self.keep_location else without_location(data)
        kept_sha256 = image.sha256 if kept is data else hashlib.sha256(kept).hexdigest()
        if result.bank_case_id is None and kept_sha256 != image.sha256:
            # A photo reviewed earlier joined the bank as the bytes kept, without its location.
            result.bank_case_id = self.bank.records.case_of_photo(sha256=kept_sha256)
        versions = {model.pack: model.version for model in result.models}
        created_at = utcnow()
        scan = NewScan(id=scan_id, created_at=created_at, actor=actor, source=result.source, site=context.site,
                       enterprise=context.enterprise, camera=context.camera, note=context.note,
                       captured_at=context.captured_at, image_sha256=image.sha256, image_format=image.format,
                       result=result.model_dump(mode="json"), model_versions=versions,
                       idempotency_key=idempotency_key, stored_sha256=kept_sha256)
        findings = [NewFinding(id=f.id, class_name=f.class_name, box=(f.box.x1, f.box.y1, f.box.x2, f.box.y2),
                               confidence=f.confidence, pack=f.pack) for f in result.findings]
        new_photo = not self.photos.path(kept_sha256, image.format).exists()
        self._put(kept_sha256, image.format, kept)
        try:
            try:
                with self.records.record(scan=scan, findings=findings):
                    # Inside the transaction: a scan that cannot be audited is not recorded.
                    self.audit.append(actor, "scan", scan_id, input_sha256=image.sha256, model_versions=versions,
                                      details={"findings": [f.class_name for f in result.findings],
                                               "site": context.site, "enterprise": context.enterprise,
                                               "camera": context.camera, "stored_sha256": kept_sha256})
            except BaseException:
                if new_photo:
                    self._forget(kept_sha256, image.format)
                raise
        except DuplicateIdempotencyKey:
            assert idempotency_key is not None
            first = self.replay(actor, idempotency_key, image.sha256)
            if first is None:
                raise
            return first
        # A concurrent scan of the same photo that rolled back may have removed the file between the write above
        # and this commit: the committed scan writes it again.
        try:
            self.photos.put(kept_sha256, image.format, kept)
        except OSError as error:
            log.error("scan %s is recorded but its photo could not be written again to %s: %s", scan_id,
                      self.photos.root, error.strerror)
        response = ScanResponse(**result.model_dump(), scan_id=scan_id, stored_sha256=kept_sha256,
                                created_at=created_at, context=context)
        return StoredScan(response, image.sha256, image.format, actor, kept_sha256)

    def _put(self, sha256: str, image_format: str, data: bytes) -> None:
        try:
            self.photos.put(sha256, image_format, data)
        except OSError as error:
            raise BankError(f"cannot keep the scanned photo in {self.photos.root}: {error.strerror}") from error

    def _forget(self, sha256: str, image_format: str) -> None:
        """Remove the photo file a scan that did not commit wrote, unless a committed scan keeps it."""
        try:
            if not self.records.photo_in_use(sha256=sha256):
                self.photos.path(sha256, image_format).unlink(missing_ok=True)
        except (HazardVisionError, OSError) as error:  # the scan's own failure is what its caller hears of
            log.warning("the photo %s of a scan that was not recorded is left in %s: %s", sha256, self.photos.root,
                        error)

    def get(self, scan_id: str) -> StoredScan:
        row = self.records.get(scan_id=scan_id)
        if row is None:
            raise UnknownScan(f"no scan {scan_id!r}; scan ids are returned by POST /v1/scans")
        if row.deleted_at is not None:
            raise UnknownScan(f"scan {scan_id} was deleted at {row.deleted_at.isoformat()}; its photo and result "
                              "are gone")
        return stored(row)

    def photo(self, scan: StoredScan) -> bytes:
        try:
            return self.photos.path(scan.stored_sha256, scan.image_format).read_bytes()
        except OSError as error:
            raise BankError(f"the photo of scan {scan.response.scan_id} is missing from {self.photos.root}") \
                from error


def stored(row: ScanRecord) -> StoredScan:
    context = ScanContext(site=row.site, enterprise=row.enterprise, camera=row.camera, note=row.note,
                          captured_at=as_utc(row.captured_at))
    result = ScanResult.model_validate(row.result)
    created_at = as_utc(row.created_at) or dt.datetime.now(dt.UTC)
    response = ScanResponse(**result.model_dump(), scan_id=row.id, stored_sha256=stored_sha256(row),
                            created_at=created_at, context=context)
    return StoredScan(response, row.image_sha256, row.image_format, row.actor, stored_sha256(row))
