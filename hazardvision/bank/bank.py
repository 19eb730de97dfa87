"""`SampleBank`: the database and image store under one home folder."""

from __future__ import annotations

import fcntl
import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session, selectinload

from hazardvision.bank.groups import DEFAULT_DISTANCE, Member, assign_groups
from hazardvision.bank.views import AnnotationView, BankStats, CaseView, SourceStats
from hazardvision.data.bank_records import Annotation, Case, Enterprise, Image, PendingImage, Site, Source
from hazardvision.data.image_store import ImageStore
from hazardvision.data.migrations import migrate, schema_version
from hazardvision.errors import BankError, UnknownCase
from hazardvision.home import Home, default_home_folder


def default_home() -> Path:
    """`HAZARDVISION_HOME`, else `~/.local/share/hazardvision`."""
    return default_home_folder()


@contextmanager
def _database_errors() -> Iterator[None]:
    """Database failures (locked, full disk, unreachable server) as a `BankError` a user can read."""
    try:
        yield
    except (OperationalError, DatabaseError) as error:
        raise BankError(f"the bank database failed: {getattr(error, 'orig', None) or error}") from error


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    # WAL lets readers work during an import; FULL sync makes each commit survive a crash.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class SampleBank:
    """Cases, their photos and annotations, in `home/bank.sqlite3` and `home/images/`.

    Opening a bank migrates its schema and finishes what a crashed writer left: photos written
    but never committed to the database are removed.
    """

    def __init__(self, home: Path | None = None, *, url: str | None = None) -> None:
        self.layout = Home.at(home)
        self.home = self.layout.root
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BankError(f"cannot create the bank folder {self.home}: {error.strerror}") from error
        self.store = ImageStore(self.layout.images)
        url = url or os.environ.get("HAZARDVISION_DATABASE_URL") or self.layout.sqlite_url
        self.engine: Engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        # Two processes opening a new bank at once must not both create its tables.
        with open(self.layout.schema_lock, "a+b") as handle, _database_errors():
            fcntl.flock(handle, fcntl.LOCK_EX)
            migrate(self.engine)
        self.recover()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with _database_errors(), Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def writer(self) -> Iterator[None]:
        """The right to add cases: one writer at a time, waiting for the one at work.

        The lock is an flock on `home/.writer.lock`, so the kernel releases it when a writer dies.
        """
        with open(self.layout.writer_lock, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def recover(self) -> int:
        """Remove photos of writes that never committed; return how many were removed.

        Skipped while a writer is at work: its pending photos are not orphans yet.
        """
        with open(self.layout.writer_lock, "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            try:
                removed = 0
                with self.session() as session:
                    for pending in session.scalars(select(PendingImage)).all():
                        if session.get(Image, pending.sha256) is None:
                            self.store.remove(pending.sha256)
                            removed += 1
                        session.delete(pending)
                self.store.clear_incoming()
                return removed
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def source(self, session: Session, name: str, *, kind: str, origin: str | None, licence: str | None) -> Source:
        found = session.scalar(select(Source).where(Source.name == name))
        if found is None:
            found = Source(name=name, kind=kind, origin=origin, licence=licence)
            session.add(found)
            session.flush()
        return found

    def place(self, session: Session, site: str | None, enterprise: str | None) -> tuple[int | None, int | None]:
        """Ids of a site and an enterprise by name, creating them on first use."""
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

    def known_images(self, session: Session, hashes: list[str]) -> set[str]:
        return set(session.scalars(select(Image.sha256).where(Image.sha256.in_(hashes))))

    def regroup(self, distance: int = DEFAULT_DISTANCE) -> int:
        """Recompute every photo's leakage group; return the number of groups."""
        with self.session() as session:
            rows = session.execute(
                select(Image.sha256, Source.name, Case.source_file, Image.dhash, Image.dhash_bilinear)
                .join(Case, Case.image_sha256 == Image.sha256)
                .join(Source, Source.id == Case.source_id)
            ).all()
            groups = assign_groups([Member(*row) for row in rows], distance)
            for image in session.scalars(select(Image)):
                image.group_id = groups.get(image.sha256)
            return len(set(groups.values()))

    def delete_cases(self, case_ids: list[int]) -> int:
        """Delete cases with their annotations and photos; return how many were deleted.

        The photos are journalled as pending in the same transaction, so a crash before their
        files are gone leaves work that the next opening of the bank finishes.
        """
        with self.writer():
            with self.session() as session:
                cases = session.scalars(select(Case).where(Case.id.in_(case_ids))).all()
                missing = sorted(set(case_ids) - {case.id for case in cases})
                if missing:
                    raise UnknownCase(f"no case {', '.join(map(str, missing))} in the bank at {self.home}; "
                                      "nothing was deleted")
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
            with self.session() as session:
                for sha in hashes:
                    pending = session.get(PendingImage, sha)
                    if pending is not None:
                        session.delete(pending)
        return len(cases)

    def case(self, case_id: int) -> CaseView:
        with self.session() as session:
            found = session.scalar(
                select(Case).where(Case.id == case_id).options(
                    selectinload(Case.annotations), selectinload(Case.image), selectinload(Case.source),
                    selectinload(Case.site), selectinload(Case.enterprise),
                )
            )
            if found is None:
                raise UnknownCase(f"no case {case_id} in the bank at {self.home}; `hazardvision bank list` shows them")
            return self._view(found)

    def cases(
        self, *, source: str | None = None, split: str | None = None, class_name: str | None = None,
        site: str | None = None, enterprise: str | None = None, limit: int = 50, offset: int = 0,
    ) -> list[CaseView]:
        """Cases, oldest first, filtered by source, source split, annotated class, site and enterprise."""
        query = select(Case).order_by(Case.id).limit(limit).offset(offset).options(
            selectinload(Case.annotations), selectinload(Case.image), selectinload(Case.source),
            selectinload(Case.site), selectinload(Case.enterprise),
        )
        if source:
            query = query.join(Source).where(Source.name == source)
        if split:
            query = query.where(Case.source_split == split)
        if class_name:
            query = query.where(Case.annotations.any(Annotation.class_name == class_name))
        if site:
            query = query.where(Case.site.has(Site.name == site))
        if enterprise:
            query = query.where(Case.enterprise.has(Enterprise.name == enterprise))
        with self.session() as session:
            return [self._view(c) for c in session.scalars(query)]

    def _view(self, case: Case) -> CaseView:
        return CaseView(
            id=case.id, image_sha256=case.image_sha256,
            image_path=str(self.store.path(case.image_sha256, case.image.format)),
            width=case.image.width, height=case.image.height, group_id=case.image.group_id,
            source=case.source.name, source_file=case.source_file, source_split=case.source_split,
            site=case.site.name if case.site else None,
            enterprise=case.enterprise.name if case.enterprise else None,
            inspector=case.inspector, location=case.location, captured_at=case.captured_at,
            description=case.description, rectification=case.rectification,
            annotations=[
                AnnotationView(id=a.id, class_name=a.class_name, source_class=a.source_class,
                               box=(a.x1, a.y1, a.x2, a.y2), origin=a.origin, reviewer=a.reviewer)
                for a in case.annotations
            ],
        )

    def stats(self) -> BankStats:
        with self.session() as session:
            per_class = dict(session.execute(
                select(Annotation.class_name, func.count()).group_by(Annotation.class_name)).all())
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
                sources.append(SourceStats(
                    name=src.name, licence=src.licence, origin=src.origin,
                    cases={(s or "none"): n for s, n in cases}, backgrounds={(s or "none"): n for s, n in backgrounds},
                    boxes=dict(boxes),
                ))
            with self.engine.connect() as connection:
                version = schema_version(connection)
            return BankStats(
                home=str(self.home), schema_version=version,
                cases=session.scalar(select(func.count()).select_from(Case)) or 0,
                images=session.scalar(select(func.count()).select_from(Image)) or 0,
                annotations=per_class,
                groups=session.scalar(select(func.count(func.distinct(Image.group_id)))) or 0,
                sources=sources,
            )

    def verify(self) -> list[str]:
        """Problems that break the bank's invariants (empty when consistent)."""
        problems: list[str] = []
        with self.session() as session:
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
