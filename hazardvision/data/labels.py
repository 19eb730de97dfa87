"""`CaseLabels`: the versions of each case's labels, and corrections that add a version.

A case's labels are its annotations of a labelled origin (imported, confirmed, corrected); the
annotations table holds the latest version, which snapshots, statistics and the similar-case index
read. A correction replaces them in one transaction with a new `label_versions` row, and the first
correction of a case also records version 1, the labels it replaces. A review that adds a box to a
case records a version the same way (`record_version`, in the review's transaction), so a snapshot
reproduced later takes the labels as they were before the review, and a new one those after it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from hazardvision.data.bank_records import LABELLED_ORIGINS, Annotation, Case, LabelVersion
from hazardvision.data.cases import Box, NewAnnotation
from hazardvision.data.database import Database
from hazardvision.errors import UnknownCase

FIRST_VIA = "recorded"
"""How version 1 came about: the labels as the case was first recorded (its import or review)."""
REVIEW_VIA = "review"
"""How a version came about when an inspector's review added a box to the case."""


@dataclass(frozen=True)
class Label:
    """One labelled box of a version."""

    class_name: str
    box: Box
    source_class: str | None = None
    origin: str | None = None


@dataclass(frozen=True)
class StoredLabels:
    """A photo's case and its current labels, to compare an import's labels with."""

    case_id: int
    width: int
    height: int
    version: int
    labels: tuple[Label, ...]


@dataclass(frozen=True)
class Version:
    """One version of a case's labels with its provenance."""

    version: int
    created_at: dt.datetime
    author: str
    via: str
    reason: str | None
    labels: tuple[Label, ...]


class CaseLabels:
    """The label versions of one bank's cases."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def of_photos(self, *, hashes: Iterable[str]) -> dict[str, StoredLabels]:
        """The current labels of the cases of these photos, by SHA-256 (photos the bank lacks are left out)."""
        query = (select(Case).where(Case.image_sha256.in_(list(hashes)))
                 .options(selectinload(Case.annotations), selectinload(Case.image)))
        with self.database.session() as session:
            cases = list(session.scalars(query))
            versions = _latest(session, [case.id for case in cases])
            return {case.image_sha256: StoredLabels(case.id, case.image.width, case.image.height,
                                                    versions.get(case.id, 1), _labels(case.annotations))
                    for case in cases}

    def latest(self, *, case_ids: Sequence[int]) -> dict[int, int]:
        """The latest label version of each case (1 for a case never corrected)."""
        with self.database.session() as session:
            found = _latest(session, list(case_ids))
        return {case_id: found.get(case_id, 1) for case_id in case_ids}

    def recorded(self, *, case_ids: Sequence[int]) -> dict[int, list[Version]]:
        """The recorded versions of these cases, oldest first (a case never corrected has none)."""
        found: dict[int, list[Version]] = {}
        with self.database.session() as session:
            for row in session.scalars(select(LabelVersion).where(LabelVersion.case_id.in_(list(case_ids)))
                                       .order_by(LabelVersion.case_id, LabelVersion.version)):
                found.setdefault(row.case_id, []).append(_version(row))
        return found

    def history(self, *, case_id: int) -> list[Version]:
        """Every version of a case's labels, oldest first; `UnknownCase` if there is no such case."""
        with self.database.session() as session:
            case = session.scalar(select(Case).where(Case.id == case_id).options(
                selectinload(Case.annotations), selectinload(Case.label_versions), selectinload(Case.source)))
            if case is None:
                raise UnknownCase(f"no case {case_id} in the bank at {self.database.home.root}; "
                                  "`hazardvision bank list` shows them")
            if not case.label_versions:
                return [_first_version(case)]
            return [_version(row) for row in case.label_versions]

    def correct(self, *, case_id: int, labels: Sequence[NewAnnotation], author: str, via: str,
                reason: str | None) -> int:
        """Make `labels` the case's labels, as a new version; return its number. Call it holding
        `database.writer()`. Detections and rejected findings on the photo stay as they are."""
        with self.database.session() as session:
            case = session.scalar(select(Case).where(Case.id == case_id).options(
                selectinload(Case.annotations), selectinload(Case.label_versions), selectinload(Case.source)))
            if case is None:
                raise UnknownCase(f"no case {case_id} in the bank at {self.database.home.root}; "
                                  "`hazardvision bank list` shows them")
            latest = _latest_recorded(session, case)
            for annotation in [a for a in case.annotations if a.origin in LABELLED_ORIGINS]:
                case.annotations.remove(annotation)  # delete-orphan: the row goes
            added = [label.record() for label in labels]
            case.annotations.extend(added)
            session.flush()
            session.add(LabelVersion(case_id=case.id, version=latest + 1, author=author, via=via, reason=reason,
                                     labels=[_dump(label) for label in _labels(added)]))
            return latest + 1


def record_version(session: Session, *, case_id: int, author: str, via: str, reason: str | None,
                   at: dt.datetime, added: Collection[int] = ()) -> int:
    """Record the case's labels as they are now in `session` (flushed, not committed) as a new version, in the
    caller's transaction; return its number. A case without versions first gets version 1: its labels without
    the annotations `added` (the ones the caller has just added)."""
    # The case's row is locked (PostgreSQL): two reviews of one case from two machines number their versions
    # one after the other. NO KEY UPDATE, since each has inserted an annotation (a KEY SHARE lock on the case)
    # and FOR UPDATE would deadlock them. SQLite's writers take turns anyway (the home's writer lock).
    case = session.scalar(select(Case).where(Case.id == case_id).with_for_update(key_share=True).options(
        selectinload(Case.annotations), selectinload(Case.label_versions), selectinload(Case.source)))
    if case is None:
        raise UnknownCase(f"no case {case_id} in the bank; `hazardvision bank list` shows them")
    latest = _latest_recorded(session, case, leave_out=set(added))
    session.add(LabelVersion(case_id=case.id, version=latest + 1, created_at=at, author=author, via=via,
                             reason=reason, labels=[_dump(label) for label in _labels(case.annotations)]))
    return latest + 1


def _latest_recorded(session: Session, case: Case, leave_out: Collection[int] = ()) -> int:
    """The case's latest recorded version, recording version 1 (its labels as first recorded, less the
    annotations `leave_out`) when it has none yet."""
    if case.label_versions:
        return case.label_versions[-1].version
    first = _first_version(case, leave_out)
    session.add(LabelVersion(case_id=case.id, version=1, created_at=first.created_at, author=first.author,
                             via=first.via, reason=first.reason, labels=[_dump(label) for label in first.labels]))
    return 1


def _latest(session: Session, case_ids: list[int]) -> dict[int, int]:
    if not case_ids:
        return {}
    rows = session.execute(select(LabelVersion.case_id, func.max(LabelVersion.version))
                           .where(LabelVersion.case_id.in_(case_ids)).group_by(LabelVersion.case_id)).all()
    return {case_id: int(version) for case_id, version in rows}


def _labels(annotations: Iterable[Annotation]) -> tuple[Label, ...]:
    return tuple(Label(a.class_name, (a.x1, a.y1, a.x2, a.y2), a.source_class, a.origin)
                 for a in annotations if a.origin in LABELLED_ORIGINS)


def _version(row: LabelVersion) -> Version:
    return Version(row.version, row.created_at, row.author, row.via, row.reason,
                   tuple(_label_of(item) for item in row.labels))


def _first_version(case: Case, leave_out: Collection[int] = ()) -> Version:
    return Version(1, case.created_at, f"{case.source.kind} {case.source.name}", FIRST_VIA,
                   "the labels as first recorded", _labels(a for a in case.annotations if a.id not in leave_out))


def _dump(label: Label) -> dict[str, object]:
    return {"class_name": label.class_name, "source_class": label.source_class, "box": list(label.box),
            "origin": label.origin}


def _label_of(item: dict[str, object]) -> Label:
    box = item["box"]
    assert isinstance(box, list)
    x1, y1, x2, y2 = (float(v) for v in box)
    source_class, origin = item.get("source_class"), item.get("origin")
    return Label(str(item["class_name"]), (x1, y1, x2, y2), None if source_class is None else str(source_class),
                 None if origin is None else str(origin))
