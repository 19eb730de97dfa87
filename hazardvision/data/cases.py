"""`Cases`: the bank's cases with their photos, sources, places and annotations.

`add` is the one way a case enters the bank (an import's batch, a reviewed scan), crash-safely:
(1) the photos about to be stored are journalled as pending and committed, (2) their files are
written to the store, (3) images, cases and annotations are inserted and the journal entries
deleted in one transaction. A crash at any point leaves either committed cases or pending
entries whose files `recover` (run when the bank opens) removes.
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from hazardvision.data.bank_records import Annotation, Case, Enterprise, Image, PendingImage, Site, Source
from hazardvision.data.database import Database
from hazardvision.data.image_store import ImageStore
from hazardvision.errors import BankError, UnknownCase

Box = tuple[float, float, float, float]
Q = TypeVar("Q", bound=Select[Any])


@dataclass(frozen=True)
class NewAnnotation:
    """A box to record on a case's photo, in pixels."""

    class_name: str
    box: Box
    origin: str
    source_class: str | None = None
    reviewer: str | None = None
    reviewed_at: dt.datetime | None = None
    note: str | None = None

    def record(self, case_id: int | None = None) -> Annotation:
        x1, y1, x2, y2 = self.box
        return Annotation(case_id=case_id, class_name=self.class_name, source_class=self.source_class,
                          x1=x1, y1=y1, x2=x2, y2=y2, origin=self.origin, reviewer=self.reviewer,
                          reviewed_at=self.reviewed_at, note=self.note)


@dataclass(frozen=True)
class NewPhoto:
    """A photo's bytes and what was learnt from its pixels (not the pixels, to bound memory)."""

    sha256: str
    data: bytes = field(repr=False)
    width: int
    height: int
    format: str
    dhash: int
    dhash_bilinear: int


@dataclass(frozen=True)
class NewCase:
    photo: NewPhoto
    source_file: str
    source_split: str | None = None
    captured_at: dt.datetime | None = None
    description: str | None = None
    location: str | None = None
    annotations: tuple[NewAnnotation, ...] = ()


@dataclass(frozen=True)
class Provenance:
    """Where new cases come from: ids of their source, site and enterprise."""

    source_id: int
    site_id: int | None
    enterprise_id: int | None


@dataclass(frozen=True)
class GroupedPhoto:
    """What leakage grouping needs to know of one photo."""

    sha256: str
    source: str
    file_name: str
    dhash: int
    dhash_bilinear: int


@dataclass(frozen=True)
class SourceCounts:
    name: str
    kind: str
    licence: str | None
    origin: str | None
    cases: dict[str, int]
    backgrounds: dict[str, int]
    boxes: dict[str, dict[str, int]]
    classes: dict[str, dict[str, int]]


@dataclass(frozen=True)
class BankCounts:
    schema_version: int
    cases: int
    images: int
    annotations: dict[str, int]
    groups: int
    sources: list[SourceCounts]


_LOADED = (selectinload(Case.annotations), selectinload(Case.image), selectinload(Case.source),
           selectinload(Case.site), selectinload(Case.enterprise))


class Cases:
    """The cases of one bank: records in `database`, photos in `store`."""

    def __init__(self, database: Database, store: ImageStore) -> None:
        self.database = database
        self.store = store

    # -- adding

    def provenance(self, *, source: str, kind: str, origin: str | None = None, licence: str | None = None,
                   site: str | None = None, enterprise: str | None = None) -> Provenance:
        """Ids of a source, site and enterprise by name, each created on first use.

        `BankError` if the site is filed under another enterprise.
        """
        with self.database.session() as session:
            source_row = session.scalar(select(Source).where(Source.name == source))
            if source_row is None:
                source_row = Source(name=source, kind=kind, origin=origin, licence=licence)
                session.add(source_row)
                session.flush()
            site_id, enterprise_id = _place(session, site, enterprise)
            return Provenance(source_row.id, site_id, enterprise_id)

    def known_photos(self, *, hashes: Iterable[str]) -> set[str]:
        """Those of `hashes` whose photo the bank already holds."""
        with self.database.session() as session:
            return _known(session, list(hashes))

    def add(self, *, cases: Sequence[NewCase], provenance: Provenance) -> dict[str, int]:
        """Add cases whose photo the bank lacks (see the module docstring for the order of the steps);
        return the new case id of each photo added, by SHA-256. Call it holding `database.writer()`."""
        fresh: dict[str, NewCase] = {}
        with self.database.session() as session:  # step 1: journal the files about to be written
            known = _known(session, [case.photo.sha256 for case in cases])
            for case in cases:
                if case.photo.sha256 not in known:
                    fresh.setdefault(case.photo.sha256, case)
            pending = set(session.scalars(select(PendingImage.sha256).where(PendingImage.sha256.in_(list(fresh)))))
            session.add_all(PendingImage(sha256=sha) for sha in fresh if sha not in pending)
        if not fresh:
            return {}
        try:
            for sha, case in fresh.items():  # step 2: write them
                self.store.put(sha, case.photo.format, case.photo.data)
        except OSError as error:  # the journal lets the next open remove what was written
            raise BankError(f"cannot write photos into {self.store.root}: {error.strerror or error}") from error
        with self.database.session() as session:  # step 3: the cases, atomically, and clear the journal
            rows = {}
            for sha, case in fresh.items():
                photo = case.photo
                session.add(Image(sha256=sha, width=photo.width, height=photo.height, format=photo.format,
                                  size_bytes=len(photo.data), dhash=photo.dhash, dhash_bilinear=photo.dhash_bilinear))
                rows[sha] = Case(
                    image_sha256=sha, source_id=provenance.source_id, source_file=case.source_file,
                    source_split=case.source_split, site_id=provenance.site_id,
                    enterprise_id=provenance.enterprise_id, captured_at=case.captured_at,
                    description=case.description, location=case.location,
                    annotations=[annotation.record() for annotation in case.annotations])
                session.add(rows[sha])
            session.flush()
            for pending_row in session.scalars(select(PendingImage).where(PendingImage.sha256.in_(list(fresh)))):
                session.delete(pending_row)
            return {sha: row.id for sha, row in rows.items()}

    def recover(self) -> int:
        """Remove photos of writes that never committed; return how many were removed.

        Skipped while a writer is at work: its pending photos are not orphans yet.
        """
        with self.database.writer(wait=False) as granted:
            if not granted:
                return 0
            removed = 0
            with self.database.session() as session:
                for pending in session.scalars(select(PendingImage)).all():
                    if session.get(Image, pending.sha256) is None:
                        self.store.remove(pending.sha256)
                        removed += 1
                    session.delete(pending)
            self.store.clear_incoming()
            return removed

    def delete(self, *, case_ids: Sequence[int]) -> int:
        """Delete cases with their annotations and photos; return how many were deleted.

        The photos are journalled as pending in the same transaction, so a crash before their
        files are gone leaves work that the next opening of the bank finishes.
        """
        with self.database.writer():
            with self.database.session() as session:
                cases = session.scalars(select(Case).where(Case.id.in_(case_ids))).all()
                missing = sorted(set(case_ids) - {case.id for case in cases})
                if missing:
                    raise UnknownCase(f"no case {', '.join(map(str, missing))} in the bank at "
                                      f"{self.database.home.root}; nothing was deleted")
                hashes = [case.image_sha256 for case in cases]
                for case in cases:
                    session.delete(case)
                session.flush()
                for sha in hashes:
                    image = session.get(Image, sha)
                    if image is not None:
                        session.delete(image)
                    session.add(PendingImage(sha256=sha))
            for sha in hashes:
                self.store.remove(sha)
            with self.database.session() as session:
                for sha in hashes:
                    pending = session.get(PendingImage, sha)
                    if pending is not None:
                        session.delete(pending)
        return len(cases)

    def regroup(self, *, assign: Callable[[builtins.list[GroupedPhoto]], Mapping[str, str]]) -> int:
        """Set every photo's leakage group to what `assign` gives it; return the number of groups."""
        with self.database.session() as session:
            rows = session.execute(
                select(Image.sha256, Source.name, Case.source_file, Image.dhash, Image.dhash_bilinear)
                .join(Case, Case.image_sha256 == Image.sha256)
                .join(Source, Source.id == Case.source_id)
            ).all()
            groups = assign([GroupedPhoto(*row) for row in rows])
            for image in session.scalars(select(Image)):
                image.group_id = groups.get(image.sha256)
            return len(set(groups.values()))

    # -- reading

    def get(self, *, case_id: int) -> Case | None:
        """The case with its photo, source, place and annotations loaded."""
        with self.database.session() as session:
            return session.scalar(select(Case).where(Case.id == case_id).options(*_LOADED))

    def case_of_photo(self, *, sha256: str) -> int | None:
        """Id of the case of a photo, if the bank holds it."""
        with self.database.session() as session:
            return session.scalar(select(Case.id).where(Case.image_sha256 == sha256))

    def list(
        self, *, source: str | None = None, split: str | None = None, class_name: str | None = None,
        site: str | None = None, enterprise: str | None = None, limit: int = 50, offset: int = 0,
    ) -> builtins.list[Case]:
        """Cases, oldest first, filtered by source, source split, annotated class, site and enterprise."""
        query = select(Case).order_by(Case.id).limit(limit).offset(offset).options(*_LOADED)
        if source:
            query = query.join(Source).where(Source.name == source)
        if split:
            query = query.where(Case.source_split == split)
        if class_name:
            query = query.where(Case.annotations.any(Annotation.class_name == class_name))
        query = at_place(query, site, enterprise)
        with self.database.session() as session:
            return builtins.list(session.scalars(query))

    def sources(self) -> builtins.list[Source]:
        with self.database.session() as session:
            return builtins.list(session.scalars(select(Source).order_by(Source.name)))

    def of_sources(self, *, names: Sequence[str]) -> builtins.list[Case]:
        """Every case of these sources, oldest first, with photo, source and annotations loaded."""
        query = (select(Case).join(Source).where(Source.name.in_(names)).order_by(Case.id)
                 .options(selectinload(Case.annotations), selectinload(Case.image), selectinload(Case.source)))
        with self.database.session() as session:
            return builtins.list(session.scalars(query))

    def enterprise_of_site(self, *, site: str) -> str | None:
        """Name of the enterprise the bank files a site under, if any."""
        with self.database.session() as session:
            return session.scalar(select(Enterprise.name).join(Site, Site.enterprise_id == Enterprise.id)
                                  .where(Site.name == site))

    def counts(self) -> BankCounts:
        """Cases, photos, annotations and groups, in all and per source."""
        with self.database.session() as session:
            per_class = {name: count for name, count in session.execute(
                select(Annotation.class_name, func.count()).group_by(Annotation.class_name)).all()}
            sources = []
            for src in session.scalars(select(Source).order_by(Source.name)):
                cases = session.execute(
                    select(Case.source_split, func.count()).where(Case.source_id == src.id).group_by(Case.source_split)
                ).all()
                backgrounds = session.execute(
                    select(Case.source_split, func.count()).where(Case.source_id == src.id, ~Case.annotations.any())
                    .group_by(Case.source_split)
                ).all()
                boxes: dict[str, dict[str, int]] = defaultdict(dict)
                for split, source_class, count in session.execute(
                    select(Case.source_split, Annotation.source_class, func.count())
                    .join(Annotation, Annotation.case_id == Case.id).where(Case.source_id == src.id)
                    .group_by(Case.source_split, Annotation.source_class)
                ):
                    boxes[split or "none"][source_class or "?"] = count
                classes: dict[str, dict[str, int]] = defaultdict(dict)
                for split, class_name, count in session.execute(
                    select(Case.source_split, Annotation.class_name, func.count())
                    .join(Annotation, Annotation.case_id == Case.id).where(Case.source_id == src.id)
                    .group_by(Case.source_split, Annotation.class_name)
                ):
                    classes[split or "none"][class_name] = count
                sources.append(SourceCounts(
                    name=src.name, kind=src.kind, licence=src.licence, origin=src.origin,
                    cases={(s or "none"): n for s, n in cases}, backgrounds={(s or "none"): n for s, n in backgrounds},
                    boxes=dict(boxes), classes=dict(classes),
                ))
            return BankCounts(
                schema_version=self.database.schema_version(),
                cases=session.scalar(select(func.count()).select_from(Case)) or 0,
                images=session.scalar(select(func.count()).select_from(Image)) or 0,
                annotations=per_class,
                groups=session.scalar(select(func.count(func.distinct(Image.group_id)))) or 0,
                sources=sources,
            )

    def verify(self) -> builtins.list[str]:
        """Problems that break the bank's invariants (empty when consistent)."""
        problems: builtins.list[str] = []
        with self.database.session() as session:
            images = {sha: fmt for sha, fmt in session.execute(select(Image.sha256, Image.format))}
            cased = set(session.scalars(select(Case.image_sha256)))
            for sha in sorted(set(images) - cased):
                problems.append(f"image {sha[:12]} has no case")
            for sha in sorted(cased - set(images)):
                problems.append(f"case of image {sha[:12]} has no image row")
            for sha, fmt in images.items():
                if not self.store.path(sha, fmt).is_file():
                    problems.append(f"image {sha[:12]} is missing from the store")
            for sha, path in self.store.files():
                if sha not in images:
                    problems.append(f"stored file {path.name} belongs to no case")
            bad_boxes = session.scalar(
                select(func.count()).select_from(Annotation).join(Case).join(Image).where(
                    (Annotation.x1 < 0) | (Annotation.y1 < 0) | (Annotation.x2 > Image.width)
                    | (Annotation.y2 > Image.height) | (Annotation.x2 < Annotation.x1)
                    | (Annotation.y2 < Annotation.y1)
                )
            )
            if bad_boxes:
                problems.append(f"{bad_boxes} annotation(s) lie outside their photo")
            pending = session.scalar(select(func.count()).select_from(PendingImage))
            if pending:
                problems.append(f"{pending} image write(s) pending; reopen the bank to recover")
        return problems


def _known(session: Session, hashes: builtins.list[str]) -> set[str]:
    return set(session.scalars(select(Image.sha256).where(Image.sha256.in_(hashes))))


def at_place(query: Q, site: str | None, enterprise: str | None) -> Q:
    """`query` of cases narrowed to those at `site` and of `enterprise` (either may be None)."""
    if site:
        query = query.where(Case.site.has(Site.name == site))
    if enterprise:
        query = query.where(Case.enterprise.has(Enterprise.name == enterprise))
    return query


def _place(session: Session, site: str | None, enterprise: str | None) -> tuple[int | None, int | None]:
    enterprise_row = None
    if enterprise:
        enterprise_row = session.scalar(select(Enterprise).where(Enterprise.name == enterprise))
        if enterprise_row is None:
            enterprise_row = Enterprise(name=enterprise)
            session.add(enterprise_row)
            session.flush()
    site_row = None
    if site:
        site_row = session.scalar(select(Site).where(Site.name == site))
        if site_row is None:
            site_row = Site(name=site, enterprise_id=enterprise_row.id if enterprise_row else None)
            session.add(site_row)
            session.flush()
        elif enterprise_row and site_row.enterprise_id not in (None, enterprise_row.id):
            raise BankError(f"site {site!r} belongs to another enterprise than {enterprise!r}")
    return (site_row.id if site_row else None), (enterprise_row.id if enterprise_row else None)
