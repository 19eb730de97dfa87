"""`SimilarCaseRecords`: what the similar-case indexes and their searches read from the bank."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import select

from hazardvision.data.bank_records import Annotation, Case, Enterprise, Image, Origin, Site, Source
from hazardvision.data.cases import at_place
from hazardvision.data.database import Database

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class IndexedAnnotation:
    id: int
    case_id: int
    class_name: str
    origin: str


@dataclass(frozen=True)
class IndexContents:
    """What an index of these classes should hold, read in one transaction."""

    annotations: list[IndexedAnnotation]
    case_ids: list[int]


@dataclass(frozen=True)
class CasePhoto:
    case_id: int
    sha256: str
    format: str


@dataclass(frozen=True)
class CaseBox:
    id: int
    case_id: int
    box: Box


@dataclass(frozen=True)
class CaseSummary:
    """What a similar case shows of its case."""

    id: int
    captured_at: dt.datetime | None
    description: str | None
    rectification: str | None
    source: str
    site: str | None
    enterprise: str | None


class SimilarCaseRecords:
    def __init__(self, database: Database) -> None:
        self.database = database

    def contents(self, *, classes: Sequence[str], case_ids: Collection[int] | None = None) -> IndexContents:
        """Every annotation of these classes, and every case id; only of `case_ids` (those still there) when given."""
        annotations = select(Annotation.id, Annotation.case_id, Annotation.class_name, Annotation.origin).where(
            Annotation.class_name.in_(classes))
        cases = select(Case.id)
        if case_ids is not None:
            annotations = annotations.where(Annotation.case_id.in_(case_ids))
            cases = cases.where(Case.id.in_(case_ids))
        with self.database.session() as session:
            return IndexContents([IndexedAnnotation(*row) for row in session.execute(annotations)],
                                 list(session.scalars(cases)))

    def photos(self, *, case_ids: Collection[int]) -> tuple[list[CasePhoto], list[CaseBox]]:
        """The photos of these cases and every box on them, read in one transaction."""
        with self.database.session() as session:
            photos = [CasePhoto(*row) for row in session.execute(
                select(Case.id, Image.sha256, Image.format).join(Image, Image.sha256 == Case.image_sha256)
                .where(Case.id.in_(case_ids)))]
            boxes = [CaseBox(i, case_id, (x1, y1, x2, y2)) for i, case_id, x1, y1, x2, y2 in session.execute(
                select(Annotation.id, Annotation.case_id, Annotation.x1, Annotation.y1, Annotation.x2, Annotation.y2)
                .where(Annotation.case_id.in_(case_ids)))]
        return photos, boxes

    def case_ids_at(self, *, site: str | None, enterprise: str | None) -> set[int]:
        """Ids of the cases at `site` and of `enterprise` (either may be None)."""
        with self.database.session() as session:
            return set(session.scalars(at_place(select(Case.id), site, enterprise)))

    def summaries(self, *, case_ids: Collection[int], annotation_ids: Collection[int] = ()
                  ) -> tuple[dict[int, CaseSummary], dict[int, Box]]:
        """What the bank knows of these cases, and the boxes of these annotations, in one transaction."""
        with self.database.session() as session:
            cases = {row.id: CaseSummary(*row) for row in session.execute(
                select(Case.id, Case.captured_at, Case.description, Case.rectification,
                       Source.name, Site.name, Enterprise.name)
                .join(Source, Source.id == Case.source_id)
                .outerjoin(Site, Site.id == Case.site_id).outerjoin(Enterprise, Enterprise.id == Case.enterprise_id)
                .where(Case.id.in_(case_ids))
            )}
            boxes = {} if not annotation_ids else {i: (x1, y1, x2, y2) for i, x1, y1, x2, y2 in session.execute(
                select(Annotation.id, Annotation.x1, Annotation.y1, Annotation.x2, Annotation.y2)
                .where(Annotation.id.in_(annotation_ids))
            )}
        return cases, boxes

    def relative_boxes(self, *, annotation_ids: Collection[int]) -> dict[int, Box]:
        """The boxes of these annotations as fractions of their photo's width and height (where in the frame)."""
        if not annotation_ids:
            return {}
        with self.database.session() as session:
            return {i: (x1 / width, y1 / height, x2 / width, y2 / height)
                    for i, x1, y1, x2, y2, width, height in session.execute(
                        select(Annotation.id, Annotation.x1, Annotation.y1, Annotation.x2, Annotation.y2,
                               Image.width, Image.height)
                        .join(Case, Case.id == Annotation.case_id).join(Image, Image.sha256 == Case.image_sha256)
                        .where(Annotation.id.in_(annotation_ids)))}

    def has_annotation(self, *, case_id: int, annotation_id: int) -> bool:
        """Whether the annotation exists, belongs to that case and is not a rejected finding (a known false alarm is
        named as such, but its picture is not served)."""
        with self.database.session() as session:
            annotation = session.get(Annotation, annotation_id)
            return (annotation is not None and annotation.case_id == case_id
                    and annotation.origin != Origin.REJECTED.value)
