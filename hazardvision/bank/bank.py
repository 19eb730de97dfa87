"""`SampleBank`: the bank's cases and their photos under one home folder, on the data layer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from hazardvision.bank.groups import DEFAULT_DISTANCE, Member, assign_groups, dhash
from hazardvision.bank.views import AnnotationView, BankStats, CaseView
from hazardvision.data.bank_records import Case
from hazardvision.data.cases import Cases, NewPhoto
from hazardvision.data.database import Database, Engine
from hazardvision.data.image_store import ImageStore
from hazardvision.data.labels import CaseLabels
from hazardvision.errors import UnknownCase
from hazardvision.home import default_home_folder
from hazardvision.images import DecodedImage


def default_home() -> Path:
    """`HAZARDVISION_HOME`, else `~/.local/share/hazardvision`."""
    return default_home_folder()


def new_photo(decoded: DecodedImage, data: bytes) -> NewPhoto:
    """A photo ready to become a case: its bytes, size and the hashes that group it."""
    area_hash, bilinear_hash = dhash(decoded.pixels)
    return NewPhoto(sha256=decoded.sha256, data=data, width=decoded.width, height=decoded.height,
                    format=decoded.format, dhash=area_hash, dhash_bilinear=bilinear_hash)


class SampleBank:
    """Cases, their photos and annotations, in `home/bank.sqlite3` (or the database at `url`) and `home/images/`.

    Opening a bank migrates its schema and finishes what a crashed writer left: photos written
    but never committed to the database are removed.
    """

    def __init__(self, home: Path | None = None, *, url: str | None = None, create: bool = True) -> None:
        """With `create` false, a home that does not exist is an `UnknownHome` (see `Database.of_home`)."""
        self.database = Database.of_home(home, url=url, create=create)
        self.layout = self.database.home
        self.home = self.layout.root
        self.store = ImageStore(self.layout.images)
        self.records = Cases(self.database, self.store)
        """The cases' records (the data layer's methods)."""
        self.recover()

    @property
    def engine(self) -> Engine:
        """The database's engine, for tests and tools that dispose of it; the package goes through `database`."""
        return self.database.engine

    def close(self) -> None:
        self.database.dispose()

    @contextmanager
    def writer(self) -> Iterator[None]:
        """The right to add cases: one writer at a time, waiting for the one at work."""
        with self.database.writer():
            yield

    def recover(self) -> int:
        """Remove photos of writes that never committed; return how many were removed."""
        return self.records.recover()

    def regroup(self, distance: int = DEFAULT_DISTANCE) -> int:
        """Recompute every photo's leakage group; return the number of groups."""
        return self.records.regroup(assign=lambda photos: assign_groups(
            [Member(p.sha256, p.source, p.file_name, p.dhash, p.dhash_bilinear) for p in photos], distance))

    def delete_cases(self, case_ids: Sequence[int]) -> int:
        """Delete cases with their annotations and photos; return how many were deleted."""
        return self.records.delete(case_ids=case_ids)

    def case(self, case_id: int) -> CaseView:
        found = self.records.get(case_id=case_id)
        if found is None:
            raise UnknownCase(f"no case {case_id} in the bank at {self.home}; `hazardvision bank list` shows them")
        return self._view(found, CaseLabels(self.database).latest(case_ids=[case_id])[case_id])

    def cases(
        self, *, source: str | None = None, split: str | None = None, class_name: str | None = None,
        site: str | None = None, enterprise: str | None = None, limit: int = 50, offset: int = 0,
    ) -> list[CaseView]:
        """Cases, oldest first, filtered by source, source split, annotated class, site and enterprise."""
        found = self.records.list(source=source, split=split, class_name=class_name, site=site,
                                  enterprise=enterprise, limit=limit, offset=offset)
        versions = CaseLabels(self.database).latest(case_ids=[case.id for case in found])
        return [self._view(case, versions[case.id]) for case in found]

    def _view(self, case: Case, label_version: int) -> CaseView:
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
            label_version=label_version,
        )

    def stats(self) -> BankStats:
        return BankStats.model_validate({"home": str(self.home), **asdict(self.records.counts())})

    def verify(self) -> list[str]:
        """Problems that break the bank's invariants (empty when consistent)."""
        return self.records.verify()
