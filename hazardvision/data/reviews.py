"""`Reviews`: inspectors' verdicts on findings, each with the annotation it put on the bank's case.

A confirmation that adds a box to its case changes the case's labels, so it records a new label
version (`data.labels`), with the reviewer and the review as provenance, in the same transaction.
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from hazardvision.boxes import box_iou
from hazardvision.data.bank_records import Annotation, Origin
from hazardvision.data.database import Database
from hazardvision.data.labels import REVIEW_VIA, record_version
from hazardvision.data.scans import Visibility
from hazardvision.data.service_records import FindingRecord, ReviewRecord, ReviewStatus, ScanRecord
from hazardvision.errors import ReviewConflict


class Reviews:
    def __init__(self, database: Database) -> None:
        self.database = database

    def finding(self, *, finding_id: str) -> FindingRecord | None:
        """The finding with its scan loaded."""
        with self.database.session() as session:
            return session.get(FindingRecord, finding_id, options=[selectinload(FindingRecord.scan)])

    @contextmanager
    def record(
        self, *, finding_id: str, scan_id: str, case_id: int, confirmed: bool, decision: str, reviewer: str,
        actor: str, note: str | None, class_name: str, box: tuple[float, float, float, float], corrected: bool,
        at: dt.datetime,
    ) -> Iterator[ReviewRecord]:
        """Record a verdict (the finding's status, the review, and a confirmed or rejected annotation on the
        case of its photo) and yield the review inside the transaction (what the caller does there, an audit
        entry, commits with it). `ReviewConflict` if the finding is not pending any more."""
        conflict = ReviewConflict(f"finding {finding_id} was reviewed meanwhile; a review is final")
        x1, y1, x2, y2 = box
        with self.database.session() as session:
            finding = session.get(FindingRecord, finding_id)
            if finding is None or finding.status != ReviewStatus.PENDING.value:
                raise conflict
            annotation = _same_object(session, case_id, class_name, box, confirmed)
            teaches = annotation is None
            if annotation is None:  # the case does not know this object yet: the review teaches it
                annotation = Annotation(
                    case_id=case_id, class_name=class_name, source_class=finding.class_name, x1=x1, y1=y1, x2=x2,
                    y2=y2, origin=(Origin.CONFIRMED if confirmed else Origin.REJECTED).value, reviewer=reviewer,
                    reviewed_at=at, note=note)
                session.add(annotation)
                session.flush()
            finding.status = (ReviewStatus.CONFIRMED if confirmed else ReviewStatus.REJECTED).value
            row = ReviewRecord(
                finding_id=finding_id, scan_id=scan_id, decision=decision, reviewer=reviewer, actor=actor, note=note,
                class_name=class_name, x1=x1, y1=y1, x2=x2, y2=y2, corrected=corrected, case_id=case_id,
                annotation_id=annotation.id, created_at=at)
            session.add(row)
            try:
                session.flush()
            except IntegrityError as error:  # another process reviewed it between our check and our write
                raise conflict from error
            if teaches and confirmed:  # a rejected finding is no label: the case's labels stay as they were
                record_version(session, case_id=case_id, author=reviewer, via=REVIEW_VIA, at=at,
                               added=[annotation.id], reason=f"review {row.id}: {class_name} confirmed (finding "
                               f"{finding_id} of scan {scan_id})")
            yield row

    def pending(self, *, site: str | None = None, enterprise: str | None = None,
                class_names: Sequence[str] | None = None, limit: int = 50, offset: int = 0,
                visibility: Visibility | None = None) -> builtins.list[FindingRecord]:
        """Findings not yet reviewed, newest scan first, with their scans loaded; of a site, an enterprise, some
        classes, among the scans `visibility` admits (None: every scan)."""
        query = (select(FindingRecord).join(ScanRecord, ScanRecord.id == FindingRecord.scan_id)
                 .where(FindingRecord.status == ReviewStatus.PENDING.value)
                 .options(selectinload(FindingRecord.scan))
                 .order_by(ScanRecord.created_at.desc(), FindingRecord.position).limit(limit).offset(offset))
        if site:
            query = query.where(ScanRecord.site == site)
        if enterprise:
            query = query.where(ScanRecord.enterprise == enterprise)
        if class_names is not None:
            query = query.where(FindingRecord.class_name.in_(class_names))
        if visibility is not None:
            query = query.where(visibility.clause())
        with self.database.session() as session:
            return builtins.list(session.scalars(query))

    def list(self, *, scan_id: str | None = None, site: str | None = None, enterprise: str | None = None,
             limit: int = 50, offset: int = 0, visibility: Visibility | None = None) -> builtins.list[ReviewRecord]:
        """Reviews, newest first, of one scan or of the scans at a site or of an enterprise, among the scans
        `visibility` admits (None: every scan)."""
        query = select(ReviewRecord).order_by(ReviewRecord.id.desc()).limit(limit).offset(offset)
        if scan_id:
            query = query.where(ReviewRecord.scan_id == scan_id)
        if site or enterprise or visibility is not None:
            query = query.join(ScanRecord, ScanRecord.id == ReviewRecord.scan_id)
            if visibility is not None:
                query = query.where(visibility.clause())
            if site:
                query = query.where(ScanRecord.site == site)
            if enterprise:
                query = query.where(ScanRecord.enterprise == enterprise)
        with self.database.session() as session:
            return builtins.list(session.scalars(query))


SAME_OBJECT_IOU = 0.5
"""A reviewed box overlapping a case's box of the same class at least this much is that box's object."""


def _same_object(session: Session, case_id: int, class_name: str, box: tuple[float, float, float, float],
                 confirmed: bool) -> Annotation | None:
    """The case's annotation of this object already (same class and verdict, IoU >= SAME_OBJECT_IOU), if any:
    confirming a finding on an imported photo whose labels have it adds no second box."""
    rejected = Origin.REJECTED.value
    rows = session.scalars(select(Annotation).where(
        Annotation.case_id == case_id, Annotation.class_name == class_name,
        (Annotation.origin != rejected) if confirmed else (Annotation.origin == rejected))).all()
    if not rows:
        return None
    overlaps = box_iou(np.array([box], np.float64), np.array([[r.x1, r.y1, r.x2, r.y2] for r in rows], np.float64))[0]
    best = int(np.argmax(overlaps))
    return rows[best] if overlaps[best] >= SAME_OBJECT_IOU else None
