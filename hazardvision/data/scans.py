"""`Scans`: the photos the service scanned, with the result each got and its findings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from hazardvision.data.database import Database
from hazardvision.data.service_records import FindingRecord, ScanRecord
from hazardvision.errors import DuplicateIdempotencyKey


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
